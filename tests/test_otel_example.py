"""The runnable OpenTelemetry set-up of the tracing guide, end to end, as a user runs it.

The ```python block under "A runnable set-up" in docs/guides/tracing.md runs as a script in a
fresh interpreter (two services on loopback, the SDK, the OTLP/HTTP exporter, the Flask
instrumentation: what ``cst-chassis[otel-sdk]`` installs), with ``OTEL_EXPORTER_OTLP_ENDPOINT``
pointing at an OTLP/HTTP collector served here. The spans the collector receives make one trace
across both services, the callee's server span a child of the caller's, with the operation id
as the ``cst.operation_id`` attribute on each.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import KeyValue

REPO = Path(__file__).resolve().parent.parent
GUIDE = REPO / "docs" / "guides" / "tracing.md"
HEADING = "### A runnable set-up"

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class ReceivedSpan:
    service: str
    name: str
    trace_id: str
    span_id: str
    parent_id: str
    attributes: dict[str, str]


def _attributes(pairs: list[KeyValue]) -> dict[str, str]:
    return {pair.key: pair.value.string_value for pair in pairs}


class Collector(ThreadingHTTPServer):
    """An OTLP/HTTP trace receiver (``POST /v1/traces``, protobuf) on 127.0.0.1."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Receiver)
        self.spans: list[ReceivedSpan] = []
        self.lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Receiver(BaseHTTPRequestHandler):
    server: Collector

    def do_POST(self) -> None:  # http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.path != "/v1/traces" or self.headers["Content-Type"] != "application/x-protobuf":
            self.send_error(404)
            return
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        for resource_spans in request.resource_spans:
            service = _attributes(list(resource_spans.resource.attributes))["service.name"]
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    received = ReceivedSpan(
                        service,
                        span.name,
                        span.trace_id.hex(),
                        span.span_id.hex(),
                        span.parent_span_id.hex(),
                        _attributes(list(span.attributes)),
                    )
                    with self.server.lock:
                        self.server.spans.append(received)
        answer = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: object) -> None:  # the base's name
        pass


@pytest.fixture
def collector() -> Iterator[Collector]:
    server = Collector()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def documented_example() -> str:
    text = GUIDE.read_text(encoding="utf-8")
    start = text.index("```python\n", text.index(HEADING)) + len("```python\n")
    return text[start : text.index("```\n", start)]


def test_the_documented_set_up_exports_one_trace_across_two_services(
    collector: Collector, tmp_path: Path
) -> None:
    script = tmp_path / "otel_example.py"
    script.write_text(documented_example(), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CST_", "OTEL_"))}
    env["OTEL_EXPORTER_OTLP_ENDPOINT"] = collector.endpoint
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    operation_id, trace_id = answer["orders"]["operation_id"], answer["orders"]["trace_id"]

    spans = {span.service: span for span in collector.spans}
    assert sorted(span.service for span in collector.spans) == ["orders", "payments"]
    orders, payments = spans["orders"], spans["payments"]
    assert (orders.name, payments.name) == ("POST /checkout", "POST /charge")
    assert orders.trace_id == payments.trace_id == trace_id  # one trace, the ids the apps saw
    assert orders.parent_id == ""  # the root: the client sent no traceparent
    assert payments.parent_id == orders.span_id  # the callee's span is the caller's child
    for span in (orders, payments):
        assert span.attributes["cst.operation_id"] == operation_id
