"""Small programs the async bridge tests run in subprocesses (gunicorn, fork, exit)."""
