"""The WSGI wrapper that sets the operation id for each request and echoes it in a header.

A wrapper around ``app.wsgi_app`` instead of Flask request hooks: it is cheaper (Flask checks
every hook for ``async`` on each request), and it also covers error handlers, the health endpoint
and whatever a streamed response body logs while it is produced.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Iterator
from typing import TYPE_CHECKING

from cst_chassis.context import (
    header_name_var,
    new_operation_id,
    operation_id_var,
    valid_operation_id,
)

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["OperationIdMiddleware"]


class OperationIdMiddleware:
    """Wrap a WSGI app: pick the operation id, keep it in the ContextVar, add the header.

    The incoming header is reused when it is a safe token (see
    :func:`~cst_chassis.context.valid_operation_id`); otherwise a fresh uuid4 is used and the
    rejected value goes nowhere (not into logs, not into the response).
    """

    def __init__(self, wsgi_app: WSGIApplication, header_name: str) -> None:
        self.wsgi_app = wsgi_app
        self.header_name = header_name
        self._environ_key = "HTTP_" + header_name.upper().replace("-", "_")

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        incoming = environ.get(self._environ_key)
        operation_id = incoming if valid_operation_id(incoming) else new_operation_id()
        header = (self.header_name, operation_id)

        def start_with_id(
            status: str, headers: list[tuple[str, str]], exc_info: object = None
        ) -> object:
            headers.append(header)
            return start_response(status, headers, exc_info)  # type: ignore[arg-type]  # exc_info is passed through untouched

        token = operation_id_var.set(operation_id)
        name_token = header_name_var.set(self.header_name)
        try:
            app_iter = self.wsgi_app(environ, start_with_id)  # type: ignore[arg-type]  # same protocol, narrower annotation
        finally:
            header_name_var.reset(name_token)
            operation_id_var.reset(token)
        if type(app_iter) is environ.get("wsgi.file_wrapper"):
            return app_iter  # keep the server's sendfile fast path
        return _ResponseBody(app_iter, operation_id)


class _ResponseBody:
    """The response iterable, with the operation id set again while the body is produced."""

    __slots__ = ("_app_iter", "_operation_id", "_running")

    def __init__(self, app_iter: Iterable[bytes], operation_id: str) -> None:
        self._app_iter = app_iter
        self._operation_id = operation_id
        self._running: Generator[bytes, None, None] | None = None

    def __iter__(self) -> Iterator[bytes]:
        self._running = self._send()
        return self._running

    def _send(self) -> Generator[bytes, None, None]:
        # The id is set while the app produces each chunk (a streamed body's log lines carry
        # it) and reset before the chunk is handed over: a server or test client that stops
        # iterating midway must not be left with this request's id.
        iterator = iter(self._app_iter)
        while True:
            token = operation_id_var.set(self._operation_id)
            try:
                chunk = next(iterator)
            except StopIteration:
                return
            finally:
                operation_id_var.reset(token)
            yield chunk

    def close(self) -> None:
        if self._running is not None:
            self._running.close()
        close = getattr(self._app_iter, "close", None)
        if close is not None:
            close()
