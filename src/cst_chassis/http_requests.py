"""Forward the operation id and trace context on every call made with a ``requests`` session.

``requests`` has no hook that runs before a request is sent, so the chassis provides a transport
adapter: mounted on a session, it adds :func:`~cst_chassis.context.outgoing_headers` to each
request just before it goes out (redirects included), in whatever request or task context the
call is made::

    session = chassis_session()            # or: session.mount("http://", ChassisAdapter())
    session.get("http://payments/charge")  # carries X-Operation-ID, traceparent, tracestate
    session.get("https://api.stripe.com")  # carries none of them

Only hosts on ``CST_PROPAGATE_TO`` (default: loopback and cluster-local names, see
:mod:`cst_chassis.propagation`) get the headers; a redirect to another host loses them.

Needs ``requests`` (not a dependency of the chassis).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from cst_chassis.context import add_outgoing_headers

__all__ = ["ChassisAdapter", "chassis_session"]


class ChassisAdapter(HTTPAdapter):
    """An ``HTTPAdapter`` that adds the operation id and trace headers to requests.

    Only to hosts on ``CST_PROPAGATE_TO``; headers already on the request (set by the caller or
    by OpenTelemetry's ``requests`` instrumentation) are kept. Accepts ``HTTPAdapter``'s
    arguments (pool sizes, retries).
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
        add_outgoing_headers(request.headers, _host(request.url))
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


def _host(url: str | None) -> str | None:
    try:
        return None if url is None else urlsplit(url).hostname
    except ValueError:  # an invalid IPv6 literal: no host the ids may go to
        return None
