"""``PROMETHEUS_MULTIPROC_DIR`` kept bounded by the live workers, on any pre-fork server.

prometheus_client's multiprocess mode writes one file per metric type and *process*
(``counter_<pid>.db``, ``histogram_<pid>.db``, ``gauge_livesum_<pid>.db``, ...), and keeps them:
a scrape must still count what a worker that exited had counted. Under worker recycling
(gunicorn ``--max-requests``, granian ``--workers-lifetime`` or ``SIGHUP``) the directory grew by
a counter and a histogram file per dead worker (39 recycled workers: 7 files / 0.46 MB became
82 files / 5.8 MB), in a memory-backed volume that counts against the pod's memory limit.

:func:`fold_dead_workers` folds the files of processes that no longer exist into a few
*archive* files (``counter_archive.db``, ``histogram_archive.db``, ...) and removes them:

- counters, histograms and summaries are summed, value by value: the totals stay exact;
- gauges follow their ``multiprocess_mode``: ``live*`` gauges of a dead process are dropped (as
  prometheus_client's ``mark_process_dead`` does), ``sum`` is added, ``max``/``min`` keep the
  extreme, ``mostrecent`` the latest; ``all`` (one series per pid) is dropped with its process,
  since keeping it would keep one series per dead worker.

It needs no server hook: the chassis calls it when a worker installs its metrics and at each
scrape, and :mod:`cst_chassis.gunicorn_hooks` when gunicorn reaps a worker, so gunicorn, granian
and any other pre-fork server get it. Folding takes an exclusive ``flock`` on a lock file in the
directory and scrapes read the files under a shared one, so a scrape never sees a value both in
its dead worker's file and in the archive. A process that is still alive (or a pid reused by a
live process) is left alone; a zombie (exited, not reaped yet) counts as alive until reaped.
Pids are only meaningful in one pid namespace: the directory must belong to one container.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["ARCHIVE", "LOCK_FILE", "METRICS_FILE", "fold_dead_workers", "reading"]

# The pid part of an archive file's name (prometheus_client reads the type and mode before it).
ARCHIVE = "archive"
"""The name part that stands for the pid in the archive files (``counter_archive.db``)."""
LOCK_FILE = "cst-chassis-metrics.lock"
"""The lock file the folding and the scrapes share, in ``PROMETHEUS_MULTIPROC_DIR``."""
# prometheus_client's files: the type (and a gauge's mode), then the pid or "archive".
METRICS_FILE = re.compile(
    r"(?P<kind>counter|histogram|summary|gauge_(?P<mode>[a-z]+))_(?P<pid>[0-9]+|archive)\.db"
)
"""The files of prometheus_client's multiprocess mode, and the archive files."""
# A values file starts with its used length (4 bytes, padded to 8): smaller is not sized yet.
_HEADER = 8
_SUMMED = frozenset({"counter", "histogram", "summary", "gauge_sum"})


@dataclass(frozen=True)
class _DeadFile:
    path: str
    kind: str
    mode: str | None


def fold_dead_workers(directory: str) -> int:
    """Fold the files of processes that no longer exist into the archive; return how many.

    Cheap when there is nothing to fold (a directory listing and one ``kill(pid, 0)`` per pid),
    so it can run at every scrape.
    """
    if not _dead_files(directory):
        return 0
    with _locked(directory, fcntl.LOCK_EX):
        dead = _dead_files(directory)  # again: another process may have folded them meanwhile
        for found in dead:
            _fold(directory, found)
    return len(dead)


@contextlib.contextmanager
def reading(directory: str) -> Iterator[None]:
    """Hold the shared lock while a scrape reads the files (no fold runs meanwhile)."""
    with _locked(directory, fcntl.LOCK_SH):
        yield


@contextlib.contextmanager
def _locked(directory: str, operation: int) -> Iterator[None]:
    descriptor = os.open(os.path.join(directory, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, operation)
        yield
    finally:
        os.close(descriptor)  # closing releases the lock


def _dead_files(directory: str) -> list[_DeadFile]:
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    alive: dict[int, bool] = {}
    dead: list[_DeadFile] = []
    for name in names:
        match = METRICS_FILE.fullmatch(name)
        if match is None or match["pid"] == ARCHIVE:
            continue
        pid = int(match["pid"])
        if pid not in alive:
            alive[pid] = _alive(pid)
        if not alive[pid]:
            dead.append(_DeadFile(os.path.join(directory, name), match["kind"], match["mode"]))
    return dead


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _fold(directory: str, found: _DeadFile) -> None:
    from prometheus_client.mmap_dict import MmapedDict  # the metrics extra: imported when used

    mode = found.mode
    keep = not (mode is not None and (mode.startswith("live") or mode == "all"))
    if keep and _sized(found.path):
        values = MmapedDict.read_all_values_from_file(found.path)  # type: ignore[no-untyped-call]  # prometheus_client leaves it unannotated
        if values:
            _merge_into(os.path.join(directory, f"{found.kind}_{ARCHIVE}.db"), found.kind, values)
    with contextlib.suppress(FileNotFoundError):
        os.remove(found.path)


def _merge_into(archive: str, kind: str, values: list[tuple[str, float, float, int]]) -> None:
    from prometheus_client.mmap_dict import MmapedDict

    existing: dict[str, tuple[float, float]] = {}
    if _sized(archive):
        existing = {
            key: (value, timestamp)
            for key, value, timestamp, _ in MmapedDict.read_all_values_from_file(archive)  # type: ignore[no-untyped-call]  # prometheus_client leaves it unannotated
        }
    target = MmapedDict(archive)  # type: ignore[no-untyped-call]  # prometheus_client leaves it unannotated
    try:
        for key, value, timestamp, _ in values:
            if key not in existing:
                merged = (value, timestamp)
            else:
                merged = _combine(kind, existing[key], (value, timestamp))
            existing[key] = merged
            target.write_value(key, *merged)  # type: ignore[no-untyped-call]  # prometheus_client leaves it unannotated
    finally:
        target.close()  # type: ignore[no-untyped-call]  # prometheus_client leaves it unannotated


def _combine(kind: str, old: tuple[float, float], new: tuple[float, float]) -> tuple[float, float]:
    if kind in _SUMMED:
        return old[0] + new[0], max(old[1], new[1])
    if kind == "gauge_max":
        return max(old, new, key=lambda pair: pair[0])
    if kind == "gauge_min":
        return min(old, new, key=lambda pair: pair[0])
    return max(old, new, key=lambda pair: pair[1])  # gauge_mostrecent: the latest write wins


def _sized(path: str) -> bool:
    try:
        return os.path.getsize(path) >= _HEADER
    except FileNotFoundError:
        return False
