"""Alembic migrations of the demo (a package only so that type checkers name modules uniquely)."""
