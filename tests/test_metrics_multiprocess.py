"""Folding dead workers' files into the archive: real prometheus_client files, real processes.

Each "worker" is a Python process run with ``PROMETHEUS_MULTIPROC_DIR`` set, as under a pre-fork
server; it writes its values and exits. Folding must keep every total a scrape reports (counters,
histograms, summed and extreme gauges), drop what prometheus_client drops for a dead process
(``live*`` gauges) and leave a directory bounded by the live processes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from prometheus_client import multiprocess

from cst_chassis._multiprocess import ARCHIVE, LOCK_FILE, fold_dead_workers
from tests.reliability.support import REPO

WORKER = """
import os, sys
from prometheus_client import Counter, Gauge, Histogram, Summary
n = int(sys.argv[1])
jobs = Counter("jobs", "d", ["kind"])
jobs.labels("a").inc(n)
jobs.labels(f"only{n}").inc()
Histogram("latency", "d", buckets=(1, 5)).observe(n)
Summary("size", "d").observe(n * 10)
for mode in ("livesum", "sum", "max", "min", "mostrecent", "all", "livemax"):
    Gauge(f"g_{mode}", "d", multiprocess_mode=mode).set(n)
"""


def run_worker(directory: Path, n: int) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory), "PYTHONPATH": str(REPO)}
    subprocess.run([sys.executable, "-c", WORKER, str(n)], env=env, check=True, timeout=60)


Scrape = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(directory: Path) -> Scrape:
    files = [str(path) for path in directory.glob("*.db")]
    samples: Scrape = {}
    for metric in multiprocess.MultiProcessCollector.merge(files, accumulate=True):  # type: ignore[no-untyped-call]  # prometheus_client leaves it unannotated
        for sample in metric.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def without(samples: Scrape, *names: str) -> Scrape:
    return {key: value for key, value in samples.items() if not key[0].startswith(names)}


def test_folding_dead_workers_keeps_every_total_and_leaves_only_the_archive(
    tmp_path: Path,
) -> None:
    for n in (1, 2, 3):
        run_worker(tmp_path, n)
    before = scrape(tmp_path)
    assert len(list(tmp_path.glob("*.db"))) == 3 * 10  # one file per type and mode, per process

    assert fold_dead_workers(str(tmp_path)) == 3 * 10
    names = sorted(path.name for path in tmp_path.iterdir())
    assert names == sorted(
        [
            f"counter_{ARCHIVE}.db",
            f"histogram_{ARCHIVE}.db",
            f"summary_{ARCHIVE}.db",
            f"gauge_sum_{ARCHIVE}.db",
            f"gauge_max_{ARCHIVE}.db",
            f"gauge_min_{ARCHIVE}.db",
            f"gauge_mostrecent_{ARCHIVE}.db",
            LOCK_FILE,
        ]
    )
    after = scrape(tmp_path)
    # Totals exact; live gauges and per-pid ("all") gauges of dead processes dropped.
    assert after == without(before, "g_livesum", "g_livemax", "g_all")
    values = after
    assert values[("jobs_total", frozenset({("kind", "a")}))] == 6
    assert values[("latency_count", frozenset())] == 3
    assert values[("latency_bucket", frozenset({("le", "1.0")}))] == 1
    assert values[("size_sum", frozenset())] == 60
    assert values[("g_sum", frozenset())] == 6
    assert values[("g_max", frozenset())] == 3
    assert values[("g_min", frozenset())] == 1
    assert values[("g_mostrecent", frozenset())] == 3

    # More workers come and go: the archive grows by nothing, the totals go on.
    for n in (4, 5):
        run_worker(tmp_path, n)
    fold_dead_workers(str(tmp_path))
    assert sorted(path.name for path in tmp_path.iterdir()) == names
    values = scrape(tmp_path)
    assert values[("jobs_total", frozenset({("kind", "a")}))] == 15
    assert values[("jobs_total", frozenset({("kind", "only5")}))] == 1
    assert values[("latency_count", frozenset())] == 5
    assert values[("g_min", frozenset())] == 1 and values[("g_max", frozenset())] == 5


def test_files_of_live_processes_are_left_alone(tmp_path: Path) -> None:
    own = tmp_path / f"counter_{os.getpid()}.db"
    parent = tmp_path / f"histogram_{os.getppid()}.db"
    for path in (own, parent):
        path.write_bytes(b"")
    assert fold_dead_workers(str(tmp_path)) == 0
    assert own.exists() and parent.exists()


def test_other_files_in_the_directory_are_left_alone(tmp_path: Path) -> None:
    others = [tmp_path / "notes.txt", tmp_path / "counter_x.db", tmp_path / "backup_1.db"]
    for path in others:
        path.write_text("keep")
    assert fold_dead_workers(str(tmp_path)) == 0
    assert all(path.read_text() == "keep" for path in others)
