"""Forward the operation id and trace context on every call made with a ``requests`` session.

``requests`` has no hook that runs before a request is sent, so the chassis provides a transport
adapter: mounted on a session, it adds :func:`~cst_chassis.context.outgoing_headers` to each
request just before it goes out (redirects included), in whatever request or task context the
call is made::

    session = chassis_session()            # or: session.mount("http://", ChassisAdapter())
    session.get("http://payments/charge")  # carries X-Operation-ID, traceparent, tracestate

Needs ``requests`` (not a dependency of the chassis).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from cst_chassis.context import add_outgoing_headers

__all__ = ["ChassisAdapter", "chassis_session"]


class ChassisAdapter(HTTPAdapter):
    """An ``HTTPAdapter`` that adds the operation id and trace headers to every request.

    Headers already on the request (set by the caller or by OpenTelemetry's ``requests``
    instrumentation) are kept. Accepts ``HTTPAdapter``'s arguments (pool sizes, retries).
    """

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float, float] | tuple[float, None] | None = None,
        verify: bool | str = True,
        cert: bytes | str | tuple[bytes | str, bytes | str] | None = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        add_outgoing_headers(request.headers)
        return super().send(request, stream, timeout, verify, cert, proxies)


def chassis_session(**adapter_args: Any) -> requests.Session:
    """Return a ``requests.Session`` with :class:`ChassisAdapter` mounted for http and https.

    ``adapter_args`` go to the adapter (``pool_maxsize``, ``max_retries``...). Share one session
    per process: the adapter reads the current request's ids at send time.
    """
    session = requests.Session()
    adapter = ChassisAdapter(**adapter_args)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
