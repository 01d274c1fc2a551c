"""point: the loyalty-point ledger of lots (earn, hold, spend, refund, expire)."""
