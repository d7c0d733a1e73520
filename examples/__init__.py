"""Runnable examples for cst-chassis (not part of the installed package)."""
