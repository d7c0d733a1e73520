"""Prometheus metrics: requests, async bridge, connection pools, health, pagination, build info.

Enabled when ``CST_METRICS_ENDPOINT`` is set (e.g. ``/metrics``; off by default), which needs
``prometheus_client`` (``pip install 'cst-chassis[metrics]'``). Everything is measured where it
costs least, without a Flask request hook (each has a visible price per request):

- requests: a WSGI wrapper (:class:`MetricsMiddleware`) times the app and reads the matched rule
  from the request Werkzeug keeps in the environ, so the ``route`` label is the *template*
  (``/products/<int:id>``), and every unmatched path is one value, :data:`UNMATCHED`;
- unhandled exceptions: Flask's ``got_request_exception`` signal notes the exception in the
  environ (it is sent only on an exception), and the WSGI wrapper counts it when the answer is a
  500: flask-restful and the chassis send the signal for *every* exception a view raises, the
  404s and 400s they answer included (``NotFound``, a rejected page or cursor), which an alert on
  "unhandled exceptions" must not see;
- the async bridge: a wrapper around ``app.async_to_sync`` (coroutines in flight, timeouts) and a
  task on the chassis loop that measures how late its own timer fires (loop lag);
- pools: SQLAlchemy pool events on the engines given to ``init_app``
  (:mod:`cst_chassis._pool_metrics`);
- pagination: the 400 responses whose error ``path`` is ``offset``, ``limit`` or ``cursor``;
- health: each check's last result and duration, reported by the health and liveness views.

Under a pre-fork server (gunicorn, granian) set ``PROMETHEUS_MULTIPROC_DIR`` before the server
starts: every worker then writes its values to files there and a scrape of any worker reports the
exact totals of the whole service. The files of workers that exited are folded into an archive
at each worker start and each scrape (:mod:`cst_chassis._multiprocess`), so the directory stays
bounded under worker recycling, with or without :mod:`cst_chassis.gunicorn_hooks`.
"""

from __future__ import annotations

import asyncio
import functools
import glob
import itertools
import json
import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, request
from flask.signals import got_request_exception
from werkzeug.exceptions import HTTPException

from cst_chassis import async_bridge
from cst_chassis._multiprocess import fold_dead_workers, reading
from cst_chassis.errors import AsyncBridgeTimeout, ChassisConfigError, ChassisError

try:
    import prometheus_client
    from prometheus_client import multiprocess
except ImportError:  # the optional extra is not installed: metrics stay off
    prometheus_client = None  # type: ignore[assignment]  # checked before any use

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
    from prometheus_client.metrics_core import Metric

    from cst_chassis.state import ChassisState

__all__ = ["BUCKETS", "METRIC_NAMES", "ChassisMetrics"]

# Request latency buckets (seconds): a web service's range, from a cache hit to a slow report.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Request latency histogram buckets, in seconds."""
# The route label of every request that matched no URL rule (404s, probing scanners).
UNMATCHED = "<unmatched>"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Where Werkzeug keeps the request object in the WSGI environ.
_REQUEST_KEY = "werkzeug.request"
# Where the exception a request raised is noted until its status is known.
_EXCEPTION_KEY = "cst_chassis.metrics.exception"
# Methods kept as they are in the method label; anything else is "other" (bounded cardinality).
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_PAGINATION_PATHS = frozenset({"offset", "limit", "cursor"})
# A pagination error's reason label, from its message (the chassis writes them).
_REASONS = (
    ("at most once", "repeated"),
    ("not one this service issued", "signature"),
    ("ordering", "ordering"),
    ("too long", "too_long"),
    ("cursor", "malformed"),
)
# The largest 400 body read to find pagination errors (an envelope is a few hundred bytes).
_MAX_ERROR_BODY = 65536
# How often the loop-lag task schedules its timer (seconds).
LOOP_LAG_INTERVAL = 0.5
# A multiprocess values file starts with its used length, a 4-byte integer padded to 8 bytes.
_MMAP_HEADER = 8

# Every metric the chassis exports, with its type and labels (the README's table lists them).
METRIC_NAMES: dict[str, tuple[str, tuple[str, ...]]] = {
    "cst_http_request_duration_seconds": ("histogram", ("method", "route", "status")),
    "cst_http_requests_in_flight": ("gauge", ()),
    "cst_http_exceptions_total": ("counter", ("method", "route", "exception")),
    "cst_async_coroutines_in_flight": ("gauge", ()),
    "cst_async_timeouts_total": ("counter", ()),
    "cst_async_loop_lag_seconds": ("gauge", ()),
    "cst_db_pool_size": ("gauge", ("database",)),
    "cst_db_pool_checked_out": ("gauge", ("database",)),
    "cst_db_pool_overflow": ("gauge", ("database",)),
    "cst_db_connect_failures_total": ("counter", ("database",)),
    "cst_health_check_up": ("gauge", ("check",)),
    "cst_health_check_duration_seconds": ("gauge", ("check",)),
    "cst_pagination_rejections_total": ("counter", ("parameter", "reason")),
    "cst_build_info": ("gauge", ("name", "version")),
}
"""Every metric the chassis exports: name -> (type, label names)."""


def metrics_available() -> bool:
    """Whether ``prometheus_client`` (the ``metrics`` extra) is installed."""
    return prometheus_client is not None


def multiprocess_directory() -> str | None:
    """``PROMETHEUS_MULTIPROC_DIR`` when set (prometheus_client's multiprocess mode)."""
    return os.environ.get(MULTIPROC_ENV) or None


class ChassisMetrics:
    """The chassis's metrics of one app, in a registry of their own.

    Gauges carry the multiprocess mode that makes a multi-worker scrape exact: sums for what
    adds up across workers (in flight, pools), the most recent value for health, the maximum
    for loop lag; ``live*`` modes drop the values of workers that exited.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        assert prometheus_client is not None
        pc = prometheus_client
        self.registry = registry
        self.requests: Histogram = pc.Histogram(
            "cst_http_request_duration_seconds",
            "Time to answer an HTTP request, by method, route template and status.",
            ["method", "route", "status"],
            buckets=BUCKETS,
            registry=registry,
        )
        self.in_flight: Gauge = pc.Gauge(
            "cst_http_requests_in_flight",
            "HTTP requests being answered.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        # Entering and leaving a request, picked once. In one process, two atomic counters read
        # at scrape time (a Gauge's inc and dec take a lock each, twice per request); under
        # multiprocess mode the gauge itself, since only its files reach the other workers.
        self.enter_request: Callable[[], object]
        self.leave_request: Callable[[], object]
        if multiprocess_directory() is None:
            started, finished = itertools.count(), itertools.count()
            self.enter_request = functools.partial(next, started)
            self.leave_request = functools.partial(next, finished)
            self.in_flight.set_function(lambda: _count_of(started) - _count_of(finished))
        else:
            self.enter_request, self.leave_request = self.in_flight.inc, self.in_flight.dec
        self.exceptions: Counter = pc.Counter(
            "cst_http_exceptions",
            "Unhandled exceptions raised while answering a request (answered 500).",
            ["method", "route", "exception"],
            registry=registry,
        )
        self.async_in_flight: Gauge = pc.Gauge(
            "cst_async_coroutines_in_flight",
            "Coroutines of async views running on the chassis event loop.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.async_timeouts: Counter = pc.Counter(
            "cst_async_timeouts",
            "Coroutines cancelled after CST_ASYNC_TIMEOUT (answered 504).",
            registry=registry,
        )
        self.loop_lag: Gauge = pc.Gauge(
            "cst_async_loop_lag_seconds",
            "How late the chassis event loop ran its last timer (a blocked loop shows here).",
            registry=registry,
            multiprocess_mode="livemax",
        )
        self.pool_size: Gauge = pc.Gauge(
            "cst_db_pool_size",
            "Connections the pool keeps (its pool_size).",
            ["database"],
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.pool_checked_out: Gauge = pc.Gauge(
            "cst_db_pool_checked_out",
            "Connections checked out of the pool.",
            ["database"],
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.pool_overflow: Gauge = pc.Gauge(
            "cst_db_pool_overflow",
            "Connections open beyond pool_size (max_overflow bounds them).",
            ["database"],
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.connect_failures: Counter = pc.Counter(
            "cst_db_connect_failures",
            "Failed attempts to open a database connection.",
            ["database"],
            registry=registry,
        )
        self.health_up: Gauge = pc.Gauge(
            "cst_health_check_up",
            "Last result of each health check: 1 passing, 0 failing.",
            ["check"],
            registry=registry,
            multiprocess_mode="livemostrecent",
        )
        self.health_duration: Gauge = pc.Gauge(
            "cst_health_check_duration_seconds",
            "Duration of each health check's last run (so far, for a run still going).",
            ["check"],
            registry=registry,
            multiprocess_mode="livemostrecent",
        )
        self.pagination_rejections: Counter = pc.Counter(
            "cst_pagination_rejections",
            "Rejected pagination parameters and cursors (answered 400), by parameter and reason.",
            ["parameter", "reason"],
            registry=registry,
        )
        self.build_info: Gauge = pc.Gauge(
            "cst_build_info",
            "The service's name and version (CST_PROJECT_NAME, CST_PROJECT_VERSION); always 1.",
            ["name", "version"],
            registry=registry,
            multiprocess_mode="livemax",
        )
        self._lag_pid: int | None = None
        self._lag_lock = threading.Lock()

    def observe_health(self, check: str, ok: bool, duration: float) -> None:
        """Record what a health poll found for ``check`` (the health views call it)."""
        self.health_up.labels(check).set(1 if ok else 0)
        self.health_duration.labels(check).set(duration)

    def note_exception(self, sender: Flask, exception: BaseException, **_: object) -> None:
        """``got_request_exception`` receiver: note the exception for :class:`MetricsMiddleware`.

        It is counted once the status is known, and only if it is a 500: the signal is also sent
        for the exceptions that are answered 4xx (``NotFound``, pagination and cursor errors).
        """
        request.environ[_EXCEPTION_KEY] = exception

    def count_exception(self, method: str, route: str, exception: BaseException) -> None:
        """Count an unhandled exception answered 500, by route and type."""
        if isinstance(exception, HTTPException):  # abort(500): an answer, not an accident
            return
        kind = type(exception)
        self.exceptions.labels(method, route, f"{kind.__module__}.{kind.__qualname__}").inc()

    def watch_loop_lag(self) -> None:
        """Start the loop-lag task on this process's chassis loop, once per process."""
        pid = os.getpid()
        if self._lag_pid == pid:
            return
        with self._lag_lock:
            if self._lag_pid == pid:
                return
            self._lag_pid = pid
            loop = async_bridge.get_loop()
            loop.call_soon_threadsafe(loop.create_task, _watch_lag(self.loop_lag))

    def exposition(self) -> bytes:
        """The text exposition: this process's registry, or every worker's in multiprocess mode."""
        assert prometheus_client is not None
        registry = self.registry
        directory = multiprocess_directory()
        if directory is not None:
            registry = prometheus_client.CollectorRegistry()
            registry.register(_WorkerFilesCollector(directory))
        data: bytes = prometheus_client.generate_latest(registry)
        return data


class _WorkerFilesCollector:
    """prometheus_client's multiprocess collector, minus the files a worker has not sized yet.

    A worker creates its ``.db`` file empty and then grows it to its initial size; a scrape
    that globs the directory in between would fail to read the empty file's header
    (``struct.error``: a 500 for the whole scrape, seen while gunicorn workers boot). Such a file
    holds no value yet, so it is skipped. Once sized, a file never shrinks.

    Each scrape first folds the files of dead workers into the archive
    (:mod:`cst_chassis._multiprocess`), so the directory stays bounded by the live workers.
    """

    def __init__(self, directory: str) -> None:
        self._directory = directory
        self._pattern = os.path.join(directory, "*.db")

    def collect(self) -> Iterable[Metric]:
        fold_dead_workers(self._directory)  # dead workers' files into the archive, removed
        with reading(self._directory):  # no fold meanwhile: no value counted twice
            files = [path for path in glob.glob(self._pattern) if _sized(path)]
            merged: Iterable[Metric] = multiprocess.MultiProcessCollector.merge(
                files, accumulate=True
            )  # type: ignore[no-untyped-call]  # prometheus_client leaves it unannotated
        return merged


def _sized(path: str) -> bool:
    try:
        return os.path.getsize(path) >= _MMAP_HEADER
    except FileNotFoundError:  # a live gauge file removed when its worker exited
        return False


async def _watch_lag(gauge: Gauge) -> None:
    loop = asyncio.get_running_loop()
    while True:
        before = loop.time()
        await asyncio.sleep(LOOP_LAG_INTERVAL)
        gauge.set(max(0.0, loop.time() - before - LOOP_LAG_INTERVAL))


def _count_of(counter: itertools.count[int]) -> int:
    # How many values next() took from it: repr is "count(N)" (no other read-only accessor).
    return int(repr(counter)[6:-1])


class MetricsMiddleware:
    """Wrap a WSGI app: count requests in flight, time each one, label it by route template.

    The time is taken until the app returns its response iterable; a streamed body's
    production afterwards is not included.
    """

    def __init__(self, wsgi_app: WSGIApplication, metrics: ChassisMetrics) -> None:
        self.wsgi_app = wsgi_app
        self.metrics = metrics
        self._enter, self._leave = metrics.enter_request, metrics.leave_request
        # One histogram child per (method, route, status): labels() per request costs more.
        self._children: dict[tuple[str, str, str], Any] = {}
        # Run once, at the first request (e.g. discovering Flask-SQLAlchemy's engines).
        self.on_first_request: Callable[[], bool] | None = None

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if self.on_first_request is not None and self.on_first_request():
            self.on_first_request = None
        # The status, and the request, noted in start_response: Flask calls it while the request
        # is still in the environ (it takes it out when the request context is popped).
        noted: list[Any] = []

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            noted.append(status)
            noted.append(environ.get(_REQUEST_KEY))
            return start_response(status, headers, exc_info)

        self._enter()
        started = time.perf_counter()
        try:
            app_iter = self.wsgi_app(environ, start)
        except BaseException as exc:  # the server answers 500 (PROPAGATE_EXCEPTIONS, e.g. testing)
            noted.extend(("500", environ.get(_REQUEST_KEY)))
            environ.setdefault(_EXCEPTION_KEY, exc)
            raise
        finally:
            elapsed = time.perf_counter() - started
            self._leave()
            method = environ["REQUEST_METHOD"]
            if method not in _METHODS:
                method = "other"
            if noted:
                rule = getattr(noted[-1], "url_rule", None)
                key = (method, UNMATCHED if rule is None else rule.rule, noted[-2][:3])
            else:
                key = (method, UNMATCHED, "500")
            child = self._children.get(key)
            if child is None:
                child = self._children[key] = self.metrics.requests.labels(*key)
            child.observe(elapsed)
            if key[2] == "500" and _EXCEPTION_KEY in environ:
                self.metrics.count_exception(key[0], key[1], environ.pop(_EXCEPTION_KEY))
        if key[2] == "400":
            return self._count_pagination_errors(app_iter)
        return app_iter

    def _count_pagination_errors(self, app_iter: Iterable[bytes]) -> Iterable[bytes]:
        # A 400 envelope is small: read it, count its pagination errors, hand the bytes on.
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in app_iter:
                chunks.append(chunk)
                size += len(chunk)
        finally:
            close = getattr(app_iter, "close", None)
            if close is not None:
                close()
        if size <= _MAX_ERROR_BODY:
            for parameter, reason in _pagination_errors(b"".join(chunks)):
                self.metrics.pagination_rejections.labels(parameter, reason).inc()
        return chunks


def _pagination_errors(body: bytes) -> list[tuple[str, str]]:
    try:
        document = json.loads(body)
    except ValueError:
        return []
    errors = document.get("errors") if isinstance(document, dict) else None
    found: list[tuple[str, str]] = []
    for error in errors if isinstance(errors, list) else []:
        if not isinstance(error, dict) or error.get("path") not in _PAGINATION_PATHS:
            continue
        message = str(error.get("message", ""))
        reason = next((label for text, label in _REASONS if text in message), "invalid")
        if reason == "malformed" and error["path"] != "cursor":
            reason = "invalid"
        found.append((str(error["path"]), reason))
    return found


def _instrument_async(app: Flask, metrics: ChassisMetrics) -> None:
    original = app.async_to_sync

    def async_to_sync(func: Callable[..., Any]) -> Callable[..., Any]:
        sync = original(func)

        @functools.wraps(sync)
        def run(*args: Any, **kwargs: Any) -> Any:
            metrics.watch_loop_lag()
            metrics.async_in_flight.inc()
            try:
                return sync(*args, **kwargs)
            except AsyncBridgeTimeout:
                metrics.async_timeouts.inc()
                raise
            finally:
                metrics.async_in_flight.dec()

        return run

    app.async_to_sync = async_to_sync  # type: ignore[method-assign]  # Flask documents overriding async_to_sync


def install_metrics(app: Flask, state: ChassisState) -> None:
    """Wire the metrics into ``app`` (``init_app`` calls it after the other chassis parts).

    Does nothing unless ``CST_METRICS_ENDPOINT`` is set (off by default: metrics never switch
    on because ``prometheus_client`` happens to be importable). Raises
    :class:`~cst_chassis.errors.ChassisError` when the key is set but the ``metrics`` extra is
    not installed, and :class:`~cst_chassis.errors.ChassisConfigError` when
    ``PROMETHEUS_MULTIPROC_DIR`` is set to something that is not a directory.
    """
    endpoint = state.config.metrics_endpoint
    if endpoint is None:
        return
    if prometheus_client is None:
        raise ChassisError(
            f"CST_METRICS_ENDPOINT={endpoint!r} is set but prometheus_client is not installed: "
            "pip install 'cst-chassis[metrics]', or unset CST_METRICS_ENDPOINT"
        )
    directory = multiprocess_directory()
    if directory is not None and not os.path.isdir(directory):
        raise ChassisConfigError(MULTIPROC_ENV, directory, "an existing directory")
    if directory is not None:  # a worker starting: fold the files its predecessors left
        fold_dead_workers(directory)

    from cst_chassis._pool_metrics import watch_databases  # needs prometheus_client too

    metrics = ChassisMetrics(prometheus_client.CollectorRegistry(auto_describe=True))
    config = state.config
    metrics.build_info.labels(config.project_name, config.project_version).set(1)
    state.health_observer = metrics.observe_health
    state.metrics = metrics

    access = state.management
    assert access is not None, "init_app sets the management access before the metrics"

    def view() -> Response:
        assert prometheus_client is not None
        access.require_listener()
        access.require_authorised()
        return Response(
            metrics.exposition(),
            headers={
                "Content-Type": prometheus_client.CONTENT_TYPE_LATEST,
                "Cache-Control": "no-store",
            },
        )

    app.add_url_rule(endpoint, "cst_chassis_metrics", view)
    got_request_exception.connect(metrics.note_exception, app, weak=False)
    if config.async_bridge:  # with CST_ASYNC_BRIDGE off, Flask's own bridge is left untouched
        _instrument_async(app, metrics)
    middleware = MetricsMiddleware(app.wsgi_app, metrics)
    middleware.on_first_request = watch_databases(app, state.db, metrics)
    app.wsgi_app = middleware  # type: ignore[method-assign]  # Flask documents wrapping wsgi_app
