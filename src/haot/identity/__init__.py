"""identity: accounts, credentials, tokens and roles."""
