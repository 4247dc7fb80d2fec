"""Episodes: reminder policy, the delivery engine and their storage."""
