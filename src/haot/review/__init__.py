"""Reviews from real stays: only the guest of a completed reservation, once, within a window."""
