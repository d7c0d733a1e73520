"""Who may reach the management endpoints (health, probes, metrics) and who sees details.

Three controls, each off until configured (docs/guides/health.md, "Exposure"):

- ``CST_MANAGEMENT_PORT``: the server listens on a second port (gunicorn ``--bind`` twice, a
  second Werkzeug or uvicorn socket; see the Deployment page), and the management endpoints
  answer only on requests that came in on that port: 404 on every other one, like a path that
  does not exist. The port is read from the WSGI environ's ``SERVER_PORT``, which servers set
  from the listening socket (never from the ``Host`` header on a TCP listener); behind
  Werkzeug's ``ProxyFix`` the socket's own port is used, not ``X-Forwarded-Port``.
- authorisation: a request is *authorised* when it came in on the management port, when it
  carries ``Authorization: Bearer <CST_MANAGEMENT_TOKEN>``, or when a hook registered with
  ``@chassis.management_auth`` returns ``True``. With a token or a hook configured, the metrics
  endpoint answers 401 to everyone else.
- ``CST_HEALTH_DETAILS``: ``never``, ``authorised`` (default) or ``always``: whether ``/status``,
  readiness and liveness show their details (database, migrations, each check) or only
  ``name`` and ``version``. The status code is the same either way.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from flask import abort, request

if TYPE_CHECKING:
    from cst_chassis.config import ChassisConfig
    from cst_chassis.health import HealthBody

__all__ = ["ManagementAccess", "ManagementAuth", "request_port"]

ManagementAuth = Callable[[], bool]
"""A hook that says whether the current request may see management details (``True``)."""

logger: logging.Logger = logging.getLogger("cst_chassis.management")

# Where Werkzeug's ProxyFix keeps the environ values it replaced.
_PROXY_FIX_ORIGINAL = "werkzeug.proxy_fix.orig"


def request_port(environ: Mapping[str, object]) -> int | None:
    """The port of the listener a WSGI request came in on, or ``None`` when it is not known."""
    original = environ.get(_PROXY_FIX_ORIGINAL)
    value = original.get("SERVER_PORT") if isinstance(original, dict) else None
    if value is None:
        value = environ.get("SERVER_PORT")
    try:
        return int(str(value))
    except ValueError:
        return None


class ManagementAccess:
    """The exposure rules of one app's management endpoints, from its config and hooks."""

    def __init__(self, config: ChassisConfig, hooks: list[ManagementAuth]) -> None:
        self._port = config.management_port
        self._details = config.health_details
        token = config.management_token
        self._bearer = None if token is None else f"Bearer {token}".encode()
        # The extension's list: a hook registered after init_app counts too.
        self._hooks = hooks

    def require_listener(self) -> None:
        """404 unless the request came in on ``CST_MANAGEMENT_PORT`` (when it is set)."""
        if self._port is not None and request_port(request.environ) != self._port:
            abort(404)

    def require_authorised(self) -> None:
        """401 when a token or hook is configured and the request is not authorised."""
        if (self._bearer is not None or self._hooks) and not self.authorised():
            abort(401)

    def authorised(self) -> bool:
        """Whether the current request may see management details (see the module docs)."""
        if self._port is not None and request_port(request.environ) == self._port:
            return True
        if self._bearer is not None:
            sent = request.headers.get("Authorization", "").encode("latin-1", "replace")
            if hmac.compare_digest(sent, self._bearer):
                return True
        for hook in list(self._hooks):
            try:
                if hook() is True:
                    return True
            except Exception:
                # Fail closed, and keep the probe answering: a broken hook hides details only.
                logger.exception("management_auth hook %r raised: request not authorised", hook)
        return False

    def show_details(self) -> bool:
        """Whether this request's health answer carries its details (``CST_HEALTH_DETAILS``)."""
        if self._details == "always":
            return True
        return self._details == "authorised" and self.authorised()

    def visible(self, body: HealthBody) -> HealthBody:
        """``body`` as this request may see it: whole, or only ``name`` and ``version``."""
        if self.show_details():
            return body
        return {"name": body["name"], "version": body["version"]}
