"""W3C trace context: strict parsing, one context per request, ids in logs and outgoing headers."""

from __future__ import annotations

import asyncio
import logging
import re
import subprocess
import sys
from collections.abc import Iterator

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cst_chassis import ChassisConfigError, get_operation_id, outgoing_headers
from cst_chassis.logging import EDGE_TEXT_FORMAT, TRACE_TEXT_FORMAT
from cst_chassis.tracing import (
    MAX_TRACESTATE_LENGTH,
    TraceContext,
    get_trace_context,
    parse_traceparent,
    parse_tracestate,
    trace_context_var,
)
from tests.conftest import AppFactory
from tests.tracing_support import json_lines

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE}-{PARENT}-01"
HEX16 = re.compile(r"[0-9a-f]{16}")
UUID_FORM = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@pytest.fixture(autouse=True)
def _no_leaked_trace_context() -> Iterator[None]:
    assert trace_context_var.get() is None
    yield
    assert trace_context_var.get() is None, "this test left a trace context set"


@pytest.fixture(autouse=True)
def _restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _probe_app(app: Flask) -> Flask:
    @app.get("/probe")
    def probe() -> dict[str, object]:
        trace = get_trace_context()
        assert trace is not None
        logging.getLogger("probe").info("probing")
        return {
            "operation_id": get_operation_id(),
            "trace": trace._asdict(),
            "outgoing": outgoing_headers(),
        }

    return app


# -- parsing ---------------------------------------------------------------------------------


def test_a_valid_traceparent_is_parsed() -> None:
    assert parse_traceparent(TRACEPARENT) == (TRACE, PARENT, True)
    assert parse_traceparent(f"00-{TRACE}-{PARENT}-00") == (TRACE, PARENT, False)
    # Unknown flag bits are tolerated; only the sampled bit is read.
    assert parse_traceparent(f"00-{TRACE}-{PARENT}-03") == (TRACE, PARENT, True)


def test_a_future_version_may_carry_more_fields() -> None:
    assert parse_traceparent(f"01-{TRACE}-{PARENT}-01-extra") == (TRACE, PARENT, True)
    assert parse_traceparent(f"01-{TRACE}-{PARENT}-01") == (TRACE, PARENT, True)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "garbage",
        f"ff-{TRACE}-{PARENT}-01",  # version ff is forbidden
        f"00-{'0' * 32}-{PARENT}-01",  # all-zero trace id
        f"00-{TRACE}-{'0' * 16}-01",  # all-zero parent id
        f"00-{TRACE.upper()}-{PARENT}-01",  # uppercase hex
        f"00-{TRACE}-{PARENT}-01-extra",  # version 00 has exactly four fields
        f"00-{TRACE}-{PARENT}-1",
        f"00-{TRACE[:-1]}-{PARENT}-01",
        f"00-{TRACE}-{PARENT}-0g",
        f"0-{TRACE}-{PARENT}-01",
        f"00_{TRACE}_{PARENT}_01",
        f"01-{TRACE}-{PARENT}-01extra",  # later fields need a separator
        f" 00-{TRACE}-{PARENT}-01",
        f"00-{TRACE}-{PARENT}-01\n",
        None,
    ],
)
def test_an_invalid_traceparent_is_refused(value: str | None) -> None:
    assert parse_traceparent(value) is None


def test_tracestate_is_kept_when_valid_and_bounded() -> None:
    assert parse_tracestate("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE") == (
        "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"
    )
    assert parse_tracestate("a=1 , ,b@vendor=2") == "a=1,b@vendor=2"
    too_long = ",".join(f"k{i}={'v' * 20}" for i in range(30))
    assert len(too_long) > MAX_TRACESTATE_LENGTH
    assert parse_tracestate(too_long) is None
    assert parse_tracestate(",".join(f"k{i}=v" for i in range(33))) is None  # > 32 members
    assert parse_tracestate("a=1,a=2") is None  # duplicate key
    assert parse_tracestate("A=1") is None  # keys are lowercase
    assert parse_tracestate("a=1\r\nSet-Cookie: x=y") is None
    assert parse_tracestate("") is None


# -- per request -----------------------------------------------------------------------------


def test_without_headers_a_new_trace_starts_and_the_operation_id_is_its_trace_id(
    app: Flask,
) -> None:
    body = _probe_app(app).test_client().get("/probe").get_json()
    trace = body["trace"]
    assert body["operation_id"].replace("-", "") == trace["trace_id"]
    assert HEX16.fullmatch(trace["span_id"])
    assert trace["parent_id"] is None
    # Nothing records the chassis's own spans: the next service is not asked to record either
    # (issue 26; before, every new trace went out flagged sampled).
    assert trace["sampled"] is False
    assert body["outgoing"]["traceparent"].endswith("-00")


def test_an_incoming_traceparent_is_continued(app: Flask) -> None:
    response = (
        _probe_app(app)
        .test_client()
        .get("/probe", headers={"traceparent": f"00-{TRACE}-{PARENT}-00", "tracestate": "a=1"})
    )
    body = response.get_json()
    trace = body["trace"]
    assert trace["trace_id"] == TRACE
    assert trace["parent_id"] == PARENT
    assert trace["span_id"] != PARENT
    assert trace["sampled"] is False
    assert trace["tracestate"] == "a=1"
    # No X-Operation-ID came in: the operation id is the trace id, in uuid form.
    assert body["operation_id"] == "4bf92f35-77b3-4da6-a3ce-929d0e0e4736"
    assert response.headers["X-Operation-ID"] == body["operation_id"]


def test_an_incoming_operation_id_is_kept_next_to_the_trace(app: Flask) -> None:
    body = (
        _probe_app(app)
        .test_client()
        .get("/probe", headers={"traceparent": TRACEPARENT, "X-Operation-ID": "order-42"})
        .get_json()
    )
    assert body["operation_id"] == "order-42"
    assert body["trace"]["trace_id"] == TRACE


def test_an_invalid_traceparent_starts_a_new_trace_and_drops_its_tracestate(app: Flask) -> None:
    body = (
        _probe_app(app)
        .test_client()
        .get("/probe", headers={"traceparent": f"00-{'0' * 32}-{PARENT}-01", "tracestate": "a=1"})
        .get_json()
    )
    assert body["trace"]["trace_id"] != "0" * 32
    assert body["trace"]["parent_id"] is None
    assert body["trace"]["tracestate"] is None
    assert "tracestate" not in body["outgoing"]


def test_outgoing_headers_name_a_child_span_of_the_same_trace(app: Flask) -> None:
    body = (
        _probe_app(app)
        .test_client()
        .get("/probe", headers={"traceparent": TRACEPARENT, "tracestate": "rojo=1"})
        .get_json()
    )
    outgoing = body["outgoing"]
    version, trace_id, span_id, flags = outgoing["traceparent"].split("-")
    assert (version, trace_id, flags) == ("00", TRACE, "01")
    assert span_id not in (PARENT, body["trace"]["span_id"])
    assert outgoing["tracestate"] == "rojo=1"
    assert outgoing["X-Operation-ID"] == body["operation_id"]


def test_every_request_gets_its_own_trace(app: Flask) -> None:
    client = _probe_app(app).test_client()
    traces = {client.get("/probe").get_json()["trace"]["trace_id"] for _ in range(50)}
    assert len(traces) == 50


def test_async_views_see_the_trace_context(app: Flask) -> None:
    @app.get("/async")
    async def view() -> dict[str, object]:
        await asyncio.sleep(0)
        trace = await asyncio.to_thread(get_trace_context)
        assert trace is not None
        return {"trace_id": trace.trace_id}

    response = app.test_client().get("/async", headers={"traceparent": TRACEPARENT})
    assert response.get_json() == {"trace_id": TRACE}


def test_outside_a_request_there_is_no_trace_context() -> None:
    assert get_trace_context() is None
    assert "traceparent" not in outgoing_headers()


def test_child_keeps_trace_and_flags() -> None:
    parent = TraceContext(TRACE, PARENT, None, False, "a=1")
    child = parent.child()
    assert (child.trace_id, child.parent_id, child.sampled, child.tracestate) == (
        TRACE,
        PARENT,
        False,
        "a=1",
    )
    assert child.traceparent == f"00-{TRACE}-{child.span_id}-00"


# -- logs ------------------------------------------------------------------------------------


def test_json_log_lines_carry_trace_and_span_ids(
    make_app: AppFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    app = _probe_app(make_app(CST_LOG_FORMAT="json"))
    capsys.readouterr()
    body = app.test_client().get("/probe", headers={"traceparent": TRACEPARENT}).get_json()
    logging.getLogger("probe").info("outside")
    inside, outside = json_lines(capsys)
    assert inside["trace_id"] == TRACE
    assert inside["span_id"] == body["trace"]["span_id"]
    assert inside["operation_id"] == body["operation_id"]
    assert (outside["trace_id"], outside["span_id"], outside["operation_id"]) == (None, None, None)


def test_text_format_default_is_unchanged_and_the_trace_format_adds_the_ids(
    make_app: AppFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    app = _probe_app(make_app())
    capsys.readouterr()
    app.test_client().get("/probe", headers={"traceparent": TRACEPARENT, "X-Operation-ID": "op"})
    assert "[INFO][op] probe: probing" in capsys.readouterr().out

    app = _probe_app(make_app("traced", CST_LOG_TEXT_FORMAT=TRACE_TEXT_FORMAT))
    body = (
        app.test_client()
        .get("/probe", headers={"traceparent": TRACEPARENT, "X-Operation-ID": "op"})
        .get_json()
    )
    span_id = body["trace"]["span_id"]
    assert f"[INFO][op][{TRACE} {span_id}] probe: probing" in capsys.readouterr().out
    logging.getLogger("probe").warning("outside")
    assert "[WARNING][No operation_id][- -] probe: outside" in capsys.readouterr().out


# -- hostile input ---------------------------------------------------------------------------

_header_text = st.text(
    alphabet=st.characters(min_codepoint=0, max_codepoint=0x10FFFF, codec="utf-8"),
    max_size=700,
)
_near_valid = st.builds(
    lambda version, trace, span, flags, tail: f"{version}-{trace}-{span}-{flags}{tail}",
    st.sampled_from(["00", "01", "ff", "0", "zz", "FF"]),
    st.text(alphabet="0123456789abcdefABCDEF-\x00 ", min_size=30, max_size=34),
    st.text(alphabet="0123456789abcdef\r\n", min_size=14, max_size=18),
    st.sampled_from(["00", "01", "ff", "1", "0x"]),
    st.sampled_from(["", "-", "-x", "\r\nSet-Cookie: a=b", "\x00", " "]),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    traceparent=st.one_of(_header_text, _near_valid),
    tracestate=_header_text,
)
def test_hostile_trace_headers_never_fail_and_are_never_echoed(
    traceparent: str, tracestate: str
) -> None:
    app = _hostile_app()
    # Werkzeug's test client refuses some values; the environ takes anything a server could pass.
    encoded = {
        "HTTP_TRACEPARENT": traceparent.encode("utf-8", "surrogateescape").decode("latin-1"),
        "HTTP_TRACESTATE": tracestate.encode("utf-8", "surrogateescape").decode("latin-1"),
    }
    response = app.test_client().get("/probe", environ_overrides=encoded)
    assert response.status_code == 200
    body = response.get_json()
    parsed = parse_traceparent(encoded["HTTP_TRACEPARENT"])
    if parsed is None:
        assert body["trace"]["parent_id"] is None
        assert body["trace"]["tracestate"] is None
    else:
        assert body["trace"]["trace_id"] == parsed[0]
    state = body["trace"]["tracestate"]
    assert state is None or len(state) <= MAX_TRACESTATE_LENGTH
    # Nothing of the request comes back but hex ids: the operation id is the trace id in uuid form.
    assert sorted(name for name, _ in response.headers.items()) == [
        "Content-Length",
        "Content-Type",
        "X-Operation-ID",
    ]
    assert UUID_FORM.fullmatch(response.headers["X-Operation-ID"])


_hostile_apps: list[Flask] = []


def _hostile_app() -> Flask:
    # One app for all the examples (hypothesis runs them inside one test call).
    if not _hostile_apps:
        from cst_chassis import CstMicroChassis

        app = Flask("hostile")
        CstMicroChassis().init_app(app)
        _hostile_apps.append(_probe_app(app))
    return _hostile_apps[0]


def test_hostile_trace_headers_are_never_logged(
    app: Flask, capsys: pytest.CaptureFixture[str]
) -> None:
    _probe_app(app)
    capsys.readouterr()
    hostile = "00-evil\r\n" + "x" * 40
    app.test_client().get(
        "/probe",
        environ_overrides={"HTTP_TRACEPARENT": hostile, "HTTP_TRACESTATE": "evil-state\x1b[31m"},
    )
    out = capsys.readouterr().out
    assert "probing" in out
    assert "evil" not in out


# -- nothing imported ------------------------------------------------------------------------


@pytest.mark.slow
def test_the_chassis_imports_no_optional_package() -> None:
    code = """
import sys
from flask import Flask
from cst_chassis import CstMicroChassis, outgoing_headers
import cst_chassis.http_httpx
app = Flask("x")
CstMicroChassis().init_app(app)
@app.get("/")
def view():
    return outgoing_headers()
assert app.test_client().get("/", headers={"traceparent": TRACEPARENT}).status_code == 200
optional = {"opentelemetry", "celery", "httpx", "requests"}
loaded = sorted(m for m in sys.modules if m.split(".")[0] in optional)
assert loaded == [], loaded
""".replace("TRACEPARENT", repr(TRACEPARENT))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# -- the edge policy (issue 26, item 2) ----------------------------------------------------------


def test_restarted_ids_are_kept_in_the_json_log_line(
    make_app: AppFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    app = _probe_app(
        make_app(
            CST_LOG_FORMAT="json",
            CST_INCOMING_OPERATION_ID="restart",
            CST_INCOMING_TRACE_CONTEXT="restart",
        )
    )
    capsys.readouterr()
    response = app.test_client().get(
        "/probe",
        headers={"X-Operation-ID": "client-op", "traceparent": TRACEPARENT, "tracestate": "a=1"},
    )
    body = response.get_json()
    assert body["operation_id"] != "client-op"
    assert response.headers["X-Operation-ID"] == body["operation_id"]
    assert body["trace"]["trace_id"] != TRACE
    # Nothing of the client's trace goes on: new trace, not sampled, no tracestate.
    assert body["outgoing"]["traceparent"].endswith("-00")
    assert "tracestate" not in body["outgoing"]
    [line] = [line for line in json_lines(capsys) if line["logger"] == "probe"]
    assert line["operation_id"] == body["operation_id"]
    assert line["incoming_operation_id"] == "client-op"
    assert line["incoming_trace_id"] == TRACE


def test_restarted_ids_can_be_shown_in_the_text_line(
    make_app: AppFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    app = _probe_app(
        make_app(CST_INCOMING_OPERATION_ID="restart", CST_LOG_TEXT_FORMAT=EDGE_TEXT_FORMAT)
    )
    capsys.readouterr()
    body = app.test_client().get("/probe", headers={"X-Operation-ID": "client-op"}).get_json()
    [line] = [line for line in capsys.readouterr().out.splitlines() if "probing" in line]
    assert f"[{body['operation_id']}][" in line
    assert "[incoming client-op -] probe: probing" in line


def test_trusted_ids_add_nothing_to_the_json_log_line(
    make_app: AppFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    app = _probe_app(make_app(CST_LOG_FORMAT="json"))
    capsys.readouterr()
    app.test_client().get("/probe", headers={"X-Operation-ID": "client-op"})
    [line] = [line for line in json_lines(capsys) if line["logger"] == "probe"]
    assert line["operation_id"] == "client-op"
    assert "incoming_operation_id" not in line


@pytest.mark.parametrize("key", ["CST_INCOMING_OPERATION_ID", "CST_INCOMING_TRACE_CONTEXT"])
def test_an_unknown_edge_policy_is_refused_at_start_up(make_app: AppFactory, key: str) -> None:
    with pytest.raises(ChassisConfigError, match=f"^{key}='keep' is invalid: expected 'trust'"):
        make_app(**{key: "keep"})
