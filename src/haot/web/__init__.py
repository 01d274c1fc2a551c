"""Pages for guests, hosts and admins: a server-side client of the public API (ADR 0017)."""
