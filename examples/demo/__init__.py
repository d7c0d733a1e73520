"""The cst-chassis demo service: a small product catalogue.

Run it with ``make demo`` (or ``python -m examples.demo``); the README's "The demo service"
says what it shows.
"""
