"""Refuse requests for a host the app does not serve (``CST_TRUSTED_HOSTS``).

Paginated responses put absolute URLs into ``Link`` and ``meta.pagination``, built from the
request's ``Host`` (or, behind ``ProxyFix``, ``X-Forwarded-Host``): whoever can choose that
header chooses the host of the links. With trusted hosts set, a request naming another host is
a 400 envelope (``path: "Host"``) before the view runs, so no link is ever built from it.

Flask 3.1 has a ``TRUSTED_HOSTS`` setting of its own, Flask 2.3 has none; the chassis reads
``CST_TRUSTED_HOSTS``, else ``TRUSTED_HOSTS`` (set it before ``init_app``), and checks them
itself on both. Nothing is
installed when neither is set: the check then costs nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from flask import request
from werkzeug.exceptions import SecurityError
from werkzeug.sansio.utils import host_is_trusted

if TYPE_CHECKING:
    from flask import Flask

__all__ = ["UNTRUSTED_HOST_MESSAGE", "install_host_check"]

# The chassis's probe and metrics endpoints answer any host: kubelet probes and Prometheus
# scrapes name the pod's IP address in Host, and these bodies hold no link.
_ANY_HOST_ENDPOINTS = frozenset(
    {"cst_chassis_health", "cst_chassis_liveness", "cst_chassis_readiness", "cst_chassis_metrics"}
)

UNTRUSTED_HOST_MESSAGE = "The Host header names a host this service does not serve"
"""The 400 envelope's message for an untrusted ``Host`` (the host itself is never echoed)."""


class UntrustedHostError(SecurityError):
    """A request's ``Host`` is not in the trusted hosts: a 400 envelope with ``path: "Host"``."""

    def __init__(self) -> None:
        super().__init__(UNTRUSTED_HOST_MESSAGE)
        # flask-restful's error data, which the envelope is built from.
        self.data: dict[str, str] = {"message": UNTRUSTED_HOST_MESSAGE, "path": "Host"}


def install_host_check(app: Flask, trusted_hosts: Sequence[str] | None) -> None:
    """Answer a request whose host is not in ``trusted_hosts`` with a 400 (``None``: no check).

    Entries are host names (the port is ignored); one starting with ``.`` also accepts every
    subdomain, as in Werkzeug's ``host_is_trusted``. The chassis's health, liveness, readiness
    and metrics endpoints are not checked: probes and scrapers address the pod by IP.
    """
    if not trusted_hosts:
        return
    hosts = list(trusted_hosts)
    # Flask 3.1 checks its TRUSTED_HOSTS while matching the URL, and flask-restful 0.3.10's error
    # router matches it again while handling that very error: the SecurityError then escapes
    # the error handlers (a 500 and a traceback). The chassis checks the same list itself, as
    # the first before_request hook, so Flask's own check is turned off.
    if app.config.get("TRUSTED_HOSTS") is not None:
        app.config["TRUSTED_HOSTS"] = None

    def check_host() -> None:
        if request.endpoint in _ANY_HOST_ENDPOINTS:
            return
        # The raw header (request.host may already be the empty string for an invalid one).
        if not host_is_trusted(request.environ.get("HTTP_HOST") or request.host, hosts):
            raise UntrustedHostError()

    # First, before the app's own hooks: nothing about the request is trusted yet.
    app.before_request_funcs.setdefault(None, []).insert(0, check_host)
