"""gunicorn server hooks: exact metrics across workers, and readiness 503 on SIGTERM.

Use this module as gunicorn's config (``gunicorn -c python:cst_chassis.gunicorn_hooks ...``), or
import the hooks into your own ``gunicorn.conf.py``::

    from cst_chassis.gunicorn_hooks import child_exit, on_starting, post_worker_init

- :func:`on_starting` (master, once): removes prometheus_client's files from
  ``PROMETHEUS_MULTIPROC_DIR`` (creating it if needed), so counters start from zero and no dead
  process's files linger from a previous run;
- :func:`child_exit` (master, per exited worker): tells prometheus_client the worker is gone, so
  its ``live*`` gauges (in flight, pools, health) stop counting, and folds its counters and
  histograms into the archive files (:mod:`cst_chassis._multiprocess`), so the directory stays
  bounded under ``--max-requests`` (the workers and scrapes fold too: the hook makes it prompt);
- :func:`post_worker_init` (each worker): wraps the worker's SIGTERM handler so that readiness
  answers 503 at once while gunicorn lets the requests in flight finish
  (:mod:`cst_chassis.shutdown`).

Set ``PROMETHEUS_MULTIPROC_DIR`` in the environment *before* gunicorn starts (prometheus_client
reads it at import): the hooks only clean it.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

from cst_chassis._multiprocess import METRICS_FILE, fold_dead_workers
from cst_chassis.metrics import MULTIPROC_ENV, metrics_available
from cst_chassis.shutdown import begin_shutdown

__all__ = ["child_exit", "on_starting", "post_worker_init"]


def on_starting(server: Any) -> None:
    """Remove prometheus_client's files from ``PROMETHEUS_MULTIPROC_DIR`` (creating it if needed).

    Only its own files (``counter_<pid>.db``, ``gauge_livesum_<pid>.db``, ...) and the chassis's
    archive files (``counter_archive.db``, ...) are removed: a directory set by mistake to a
    shared one (``/tmp``) loses nothing else.
    """
    directory = os.environ.get(MULTIPROC_ENV)
    if not directory:
        return
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    for entry in path.iterdir():
        if METRICS_FILE.fullmatch(entry.name) and entry.is_file():
            entry.unlink()


def child_exit(server: Any, worker: Any) -> None:
    """Drop the exited worker's ``live*`` gauges and fold its other files into the archive."""
    directory = os.environ.get(MULTIPROC_ENV)
    if directory and metrics_available():
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]  # prometheus_client leaves it unannotated
        fold_dead_workers(directory)


def post_worker_init(worker: Any) -> None:
    """Make SIGTERM turn readiness to 503 before gunicorn's own graceful stop begins."""
    previous = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum: int, frame: Any) -> None:
        begin_shutdown()
        if callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGTERM, on_sigterm)
