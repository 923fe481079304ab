"""Data: embedded and shipped data sets, splits, and the checks at the public boundary."""
