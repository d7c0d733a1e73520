"""The cst-chassis demo service: a small product catalogue.

Run it with ``make demo`` (or ``python -m examples.demo``); see docs/demo.md for what it shows.
"""
