"""Celery integration: tasks carry the operation id and trace context of whoever sent them.

``init_celery(celery_app)`` connects three Celery signals (once per process; the signals are
process-wide, so every Celery app of the process gets the behaviour):

- ``before_task_publish``: a task sent while a request (or another task) is handled gets message
  headers ``cst_operation_id``, ``cst_traceparent`` (a child span of the sender's) and
  ``cst_tracestate``. Our own header names, so OpenTelemetry's Celery instrumentation, which uses
  ``traceparent``, is never overwritten.
- ``task_prerun`` / ``task_postrun``: in the worker, the task runs with that operation id and a
  trace context continuing the sender's, set in the same ContextVars a request uses, so
  ``get_operation_id()``, ``get_trace_context()``, log lines and tasks it sends carry them. A task
  sent outside any request gets a fresh operation id (and a new trace); a task run eagerly
  inside a request keeps the request's ids.
- ``setup_logging``: the worker logs through the chassis's console output (format and level from
  ``CST_LOG_FORMAT`` / ``CST_LOG_TEXT_FORMAT`` / ``CST_STREAM_LOG_LEVEL``, read from ``flask_app``
  when given, else from the environment) instead of Celery's own set-up, which would drop the
  operation id from the lines: the root logger's stdout/stderr handlers, when the app set some
  up, are adopted, else the chassis's stdout handler is added (as ``init_app`` does), so each
  record is one line.

Needs ``celery`` (``pip install cst-chassis[celery]``).
"""

from __future__ import annotations

from contextvars import Token
from typing import TYPE_CHECKING, Any

from celery.signals import before_task_publish, setup_logging, task_postrun, task_prerun

from cst_chassis.config import ChassisConfig, load_config
from cst_chassis.context import (
    new_operation_id,
    operation_id_var,
    outgoing_headers,
    valid_operation_id,
)
from cst_chassis.logging import install_logging
from cst_chassis.state import get_state
from cst_chassis.tracing import (
    TraceContext,
    continue_trace,
    new_trace_context,
    own_trace_context,
    parse_traceparent,
    trace_context_var,
)

if TYPE_CHECKING:
    from celery import Celery, Task
    from flask import Flask

__all__ = [
    "OPERATION_ID_HEADER",
    "TRACEPARENT_HEADER",
    "TRACESTATE_HEADER",
    "init_celery",
]

OPERATION_ID_HEADER = "cst_operation_id"
"""Celery message header carrying the operation id of the request that sent the task."""
TRACEPARENT_HEADER = "cst_traceparent"
"""Celery message header carrying the W3C ``traceparent`` of the sending request."""
TRACESTATE_HEADER = "cst_tracestate"
"""Celery message header carrying the sending request's ``tracestate``."""

# The tokens of each running task, by task id: reset in task_postrun, in the same thread.
_tokens: dict[str, tuple[Token[str | None], Token[TraceContext | str | None]]] = {}
_logging_config: list[ChassisConfig] = []


def init_celery(celery_app: Celery, flask_app: Flask | None = None) -> None:
    """Carry the operation id and trace context into Celery tasks (see the module docstring).

    Call it where the Celery app is created, in the web process and in the worker. ``flask_app``
    (optional, already initialised with the chassis) supplies the log settings of the worker.
    Idempotent.
    """
    del celery_app  # the signals are process-wide; the argument documents the call site
    if flask_app is not None:
        _logging_config[:] = [get_state(flask_app).config]
    before_task_publish.connect(_on_publish, weak=False, dispatch_uid="cst_chassis.publish")
    task_prerun.connect(_on_prerun, weak=False, dispatch_uid="cst_chassis.prerun")
    task_postrun.connect(_on_postrun, weak=False, dispatch_uid="cst_chassis.postrun")
    setup_logging.connect(_on_setup_logging, weak=False, dispatch_uid="cst_chassis.logging")


def _on_publish(headers: dict[str, Any] | None = None, **_kwargs: Any) -> None:
    if headers is None:
        return
    operation_id = operation_id_var.get()
    if operation_id is not None:
        headers.setdefault(OPERATION_ID_HEADER, operation_id)
    outgoing = outgoing_headers()
    if "traceparent" in outgoing:
        headers.setdefault(TRACEPARENT_HEADER, outgoing["traceparent"])
        if "tracestate" in outgoing:
            headers.setdefault(TRACESTATE_HEADER, outgoing["tracestate"])


def _on_prerun(task_id: str, task: Task[Any, Any], **_kwargs: Any) -> None:
    request = task.request
    incoming = request.get(OPERATION_ID_HEADER)
    traceparent = request.get(TRACEPARENT_HEADER)
    trace = None
    if traceparent is not None:
        trace = continue_trace(traceparent, request.get(TRACESTATE_HEADER))
    if valid_operation_id(incoming):
        operation_id = incoming
    else:
        # Run eagerly inside a request: keep its id. Sent from outside any request: a fresh one.
        operation_id = operation_id_var.get() or new_operation_id()
    if trace is None:
        current = own_trace_context()
        trace = current.child() if current is not None else new_trace_context(_hex(operation_id))
    _tokens[task_id] = (operation_id_var.set(operation_id), trace_context_var.set(trace))


def _hex(operation_id: str) -> str:
    # A uuid's digits are the new trace id, as for a request; any other id gets a new one.
    digits = operation_id.replace("-", "")
    if parse_traceparent(f"00-{digits}-{'1' * 16}-01") is None:
        digits = new_operation_id().replace("-", "")
    return digits


def _on_postrun(task_id: str, **_kwargs: Any) -> None:
    tokens = _tokens.pop(task_id, None)
    if tokens is not None:
        operation_token, trace_token = tokens
        trace_context_var.reset(trace_token)
        operation_id_var.reset(operation_token)


def _on_setup_logging(**_kwargs: Any) -> None:
    config = _logging_config[0] if _logging_config else load_config("celery", {})
    install_logging(config.stream_log_level, config.log_format, config.log_text_format)
