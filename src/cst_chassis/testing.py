"""A test kit for services built on the chassis: typed envelope reading and a conformance check.

- :class:`Envelope` reads a success response of Flask's test client into a typed value:
  ``Envelope.read(response, Order).data`` is an ``Order`` (pydantic validates the JSON into it,
  so dates are ``datetime`` again), and mypy and pyright see ``Envelope[Order]``.
  :func:`read_errors` reads an error response's items.
- :func:`check_conformance` holds a whole app to its own OpenAPI document: schemathesis generates
  requests from the document, calls the app in-process (WSGI, no server) and checks every
  response's status, content type, headers and body against what the document promises.

Needs the ``testing`` extra (``pip install 'cst-chassis[testing]'``: pydantic and schemathesis).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import ValidationError

from cst_chassis.errors import ChassisError
from cst_chassis.openapi.document import build_document
from cst_chassis.openapi.schemas import type_adapter

if TYPE_CHECKING:
    from collections.abc import Sequence

    from flask import Flask
    from werkzeug.datastructures import Headers
    from werkzeug.test import TestResponse

    from cst_chassis.envelope import ErrorItem, Meta

__all__ = [
    "DEFAULT_CHECKS",
    "ConformanceError",
    "Envelope",
    "EnvelopeError",
    "check_conformance",
    "read_errors",
]

T = TypeVar("T")
# read()'s own: a classmethod of an unparameterized Envelope would see T as unknown (pyright).
D = TypeVar("D")

DEFAULT_CHECKS: tuple[str, ...] = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
)
"""schemathesis checks :func:`check_conformance` runs unless told otherwise."""

# Longest part of a response body quoted in an error message.
_QUOTED = 500


class EnvelopeError(ChassisError, AssertionError):
    """A response is not the envelope (status, shape or data type) the test expected.

    An ``AssertionError``, so pytest reports it as a failed assertion; the message quotes the
    start of the body.
    """


class ConformanceError(ChassisError, AssertionError):
    """The app answered something its OpenAPI document does not allow (see the message)."""


@dataclass(frozen=True, slots=True)
class Envelope(Generic[T]):
    """A success envelope read from a test client response, ``data`` typed as ``T``."""

    status: int
    meta: Meta
    data: T
    headers: Headers

    @property
    def operation_id(self) -> str:
        """``meta.operation_id``: the request's operation id."""
        return self.meta["operation_id"]

    @classmethod
    def read(cls, response: TestResponse, data_type: type[D], status: int = 200) -> Envelope[D]:
        """Read ``response`` as ``{"meta", "data"}`` with ``status``, ``data`` as ``data_type``.

        ``data_type`` is anything pydantic validates (a model, dataclass, ``TypedDict``,
        ``list[Model]``, ``int``...). Raises :class:`EnvelopeError` when the status differs,
        the body is not a success envelope, or ``data`` does not fit ``data_type``.
        """
        body = _json_body(response)
        if response.status_code != status:
            raise EnvelopeError(
                f"expected status {status}, got {response.status_code}: {_quote(response)}"
            )
        if not isinstance(body, dict) or "data" not in body or "meta" not in body:
            raise EnvelopeError(f"not a success envelope: {_quote(response)}")
        try:
            data = type_adapter(data_type).validate_python(body["data"])
        except ValidationError as exc:
            raise EnvelopeError(f"data does not fit {data_type!r}: {exc}") from None
        return Envelope(
            status=response.status_code, meta=body["meta"], data=data, headers=response.headers
        )


def read_errors(response: TestResponse, status: int | None = None) -> list[ErrorItem]:
    """The ``errors`` of an error envelope (checking ``status`` when given).

    Raises :class:`EnvelopeError` when the body is not an error envelope.
    """
    body = _json_body(response)
    if status is not None and response.status_code != status:
        raise EnvelopeError(
            f"expected status {status}, got {response.status_code}: {_quote(response)}"
        )
    if not isinstance(body, dict) or not isinstance(body.get("errors"), list):
        raise EnvelopeError(f"not an error envelope: {_quote(response)}")
    errors: list[ErrorItem] = body["errors"]
    return errors


def _json_body(response: TestResponse) -> Any:
    try:
        return json.loads(response.get_data())
    except ValueError:
        raise EnvelopeError(f"the body is not JSON: {_quote(response)}") from None


def _quote(response: TestResponse) -> str:
    text = response.get_data(as_text=True)
    return text if len(text) <= _QUOTED else text[:_QUOTED] + "..."


def check_conformance(
    app: Flask,
    *,
    max_examples: int = 25,
    checks: Sequence[str] = DEFAULT_CHECKS,
    seed: int | None = None,
) -> None:
    """Run schemathesis in-process against ``app``'s own OpenAPI document; raise on any failure.

    The document is :func:`~cst_chassis.openapi.build_document` of ``app`` (it need not be
    served). For each operation, up to ``max_examples`` requests are generated from its
    parameters and request body and sent to the app through WSGI; each response is checked
    with ``checks`` (schemathesis check names, :data:`DEFAULT_CHECKS` by default: no 5xx, a
    documented status, content type and headers, a body that fits the documented schema).
    ``seed`` makes a run repeatable.

    Raises :class:`ConformanceError` listing, per failing operation, schemathesis's report
    (the check, what was expected, and a ``curl`` line that reproduces it).
    """
    # Imported here: schemathesis is a test-time dependency (the testing extra), and importing
    # it registers hypothesis strategies an app never needs.
    import hypothesis
    import schemathesis
    from schemathesis.checks import CHECKS
    from schemathesis.core.result import Ok

    document = build_document(app)
    schema = schemathesis.openapi.from_dict(document)
    schema.app = app
    check_functions = CHECKS.get_by_names(list(checks))
    settings = hypothesis.settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        derandomize=seed is None,
        suppress_health_check=list(hypothesis.HealthCheck),
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate, hypothesis.Phase.target],
        print_blob=False,
    )
    failures: list[str] = []
    tested = 0
    for result in schema.get_all_operations():
        tested += 1
        if not isinstance(result, Ok):  # the document itself is invalid here
            failures.append(f"(an operation the document does not describe right): {result.err()}")
            continue
        operation = result.ok()

        @settings
        @hypothesis.given(case=operation.as_strategy())
        def run(case: Any) -> None:
            case.call_and_validate(checks=check_functions)

        if seed is not None:
            run = hypothesis.seed(seed)(run)
        try:
            run()
        # schemathesis's FailureGroup is a BaseExceptionGroup; a check may raise on its own.
        except (Exception, BaseExceptionGroup) as exc:
            failures.append(f"{operation.label}:\n{_indent(_describe(exc))}")
    if failures:
        raise ConformanceError(
            f"{len(failures)} of {tested} operations do not conform to the document:\n\n"
            + "\n\n".join(failures)
        )


def _describe(exc: BaseException) -> str:
    # schemathesis's report already says what failed and how to reproduce it; an exception of
    # the app (the WSGI transport re-raises what the view raised, after the chassis answered
    # 500) is named with its class, and hypothesis's note gives the request.
    text = (
        str(exc)
        if isinstance(exc, BaseExceptionGroup)
        else f"Server error: the app raised {type(exc).__name__}: {exc}"
    )
    notes = [
        note
        for note in getattr(exc, "__notes__", ())
        if isinstance(note, str) and not note.startswith(("Failing test case", "Falsifying"))
    ]
    return "\n".join([text, *notes])


def _indent(text: str) -> str:
    return "\n".join(f"    {line}" if line else "" for line in text.splitlines())
