"""Audit app: the append-only, hash-chained log of who did what to which patient, from where."""
