"""Instructions per request under valgrind's callgrind: the one harness of the instruction benches.

Timings on a shared 2-CPU machine move by 2x from one run to the next; instruction counts repeat
to a fraction of a percent. A bench that counts instructions (``bench/overhead.py --callgrind``,
``bench/metrics_cost.py``, ``bench/tracing_cost.py``) runs a child process twice under
``valgrind --tool=callgrind``: the same script with its own hidden arguments, serving ``low`` and
then ``high`` WSGI requests after the same warm-up. ``(I(high) - I(low)) / (high - low)`` is the
cost of one request with interpreter start-up, imports and warm-up cancelled out; every thread of
the child counts (for an async view, the request thread and the chassis loop thread). What
instructions do not show is the time a thread waits to be woken.

The child is the calling script, run as ``python *child --calls N``. Its side is :func:`serve`:
warm up, then answer ``calls`` requests (a non-200 answer is a broken bench, not a figure, and
raises). ``PYTHONHASHSEED=0`` makes both runs hash alike.
"""

from __future__ import annotations

import gc
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
    if not status.startswith("200"):
        raise RuntimeError(f"bench request failed: {status}")


def call(app: WSGIApp, environ: dict[str, Any], calls: int) -> None:
    """Answer ``calls`` requests with ``app``: a fresh copy of ``environ``, the body consumed."""
    for _ in range(calls):
        body = app(environ.copy(), _start_response)
        for _chunk in body:
            pass
        close = getattr(body, "close", None)
        if close is not None:
            close()


def serve(
    app: WSGIApp, environ: dict[str, Any], calls: int, *, warmup: int = 50, quiet_gc: bool = False
) -> None:
    """The child's work: ``warmup`` requests (first-request work, lazy imports), then ``calls``.

    ``quiet_gc`` collects, freezes and disables the garbage collector before the measured calls:
    when a collection happens, and what it costs, depends on the whole process's heap, not on the
    request (it moved some benches by several thousand instructions per request).
    """
    call(app, environ, warmup)
    if quiet_gc:
        gc.collect()
        gc.freeze()
        gc.disable()
    call(app, environ, calls)


def require_valgrind() -> None:
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed: apt-get install -y valgrind")


def instructions(child: list[str], env: Mapping[str, str] | None = None) -> int:
    """Instructions executed by ``python *child`` under callgrind (all threads)."""
    with tempfile.TemporaryDirectory() as directory:
        out = Path(directory) / "callgrind.out"
        result = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, *child],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": "0", **(env or {})},
        )
        if result.returncode != 0:
            raise RuntimeError(f"the bench child failed:\n{result.stderr[-3000:]}")
        match = re.search(r"^(?:summary|totals): (\d+)", out.read_text(), re.MULTILINE)
    if match is None:
        raise RuntimeError("callgrind wrote no totals")
    return int(match[1])


def per_request(
    child: list[str], low: int, high: int, env: Mapping[str, str] | None = None
) -> float:
    """Instructions of one request: ``python *child --calls N`` run with N = ``low``, ``high``."""
    counts = [instructions([*child, "--calls", str(calls)], env) for calls in (low, high)]
    return (counts[1] - counts[0]) / (high - low)
