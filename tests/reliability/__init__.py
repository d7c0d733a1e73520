"""Reliability suite: load, faults and hostile input against real servers (issue 7)."""
