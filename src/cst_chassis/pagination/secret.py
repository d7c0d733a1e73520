"""The key that signs keyset cursors, and the start-up checks that refuse a missing or weak one.

Anyone who knows the key can forge cursors, and a key of a few characters is recovered offline
from a single cursor by trying candidates against its HMAC (measured: ``"zq"`` in 0.01 s). So an
app with a keyset resource must have one of at least :data:`MIN_SECRET_BYTES` bytes, and learns
it when it starts, not on its first keyset request.

Two moments cover every order of set-up: ``init_app`` checks the resources already registered,
and :func:`guard_view_functions` (installed by ``init_app``) checks each view registered later,
as Flask stores it. The checks only look for a ``view_class`` with ``pagination_mode ==
"keyset"``, so this module needs neither Flask nor the resource classes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from cst_chassis.errors import ChassisConfigError

__all__ = ["MIN_SECRET_BYTES", "CursorSecretError", "cursor_secrets"]

MIN_SECRET_BYTES = 16
"""Shortest cursor secret accepted at start-up, in bytes."""


class CursorSecretError(ChassisConfigError):
    """The cursor secret is missing or too short: raised at start-up, naming the key.

    A :class:`~cst_chassis.errors.ChassisConfigError` whose message never holds the secret.
    """

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        self.value: object = None  # a secret, even a bad one, stays out of messages and logs
        ValueError.__init__(self, message)


def cursor_secret(configured: str | None, secret_key: str | bytes | None) -> bytes:
    """The key that signs cursors: ``CST_CURSOR_SECRET`` (``configured``), else ``SECRET_KEY``.

    Raises :class:`CursorSecretError` naming the key when neither is set or the one in use is
    shorter than ``MIN_SECRET_BYTES`` (its value is never repeated).
    """
    key, secret = ("CST_CURSOR_SECRET", configured) if configured else ("SECRET_KEY", secret_key)
    if not secret:
        raise CursorSecretError(
            key,
            "keyset pagination signs its cursors: set CST_CURSOR_SECRET (environment or "
            "app.config) or the app's SECRET_KEY, e.g. to secrets.token_urlsafe(32)",
        )
    raw = secret.encode() if isinstance(secret, str) else bytes(secret)
    if len(raw) < MIN_SECRET_BYTES:
        raise CursorSecretError(
            key,
            f"{key} is {len(raw)} bytes, too short to sign keyset cursors (one cursor is "
            f"enough to guess it offline): use at least {MIN_SECRET_BYTES} random bytes, "
            "e.g. secrets.token_urlsafe(32)",
        )
    return raw


def cursor_secrets(
    configured: str | None,
    fallbacks: Sequence[str],
    secret_key: str | bytes | None,
    secret_key_fallbacks: object = None,
) -> tuple[bytes, ...]:
    """The secret that signs cursors, then the older ones that still verify (a rotation).

    The first is :func:`cursor_secret`'s. The fallbacks are ``CST_CURSOR_SECRET_FALLBACKS``
    (``fallbacks``); when that is empty and cursors are signed with ``SECRET_KEY``, Flask's
    ``SECRET_KEY_FALLBACKS`` (``secret_key_fallbacks``, Flask 3.1). Each must be at least
    :data:`MIN_SECRET_BYTES` long too: raises :class:`CursorSecretError` naming the key and the
    position, never the value.
    """
    primary = cursor_secret(configured, secret_key)
    key, older = "CST_CURSOR_SECRET_FALLBACKS", list(fallbacks)
    if not older and not configured and isinstance(secret_key_fallbacks, list | tuple):
        key, older = "SECRET_KEY_FALLBACKS", list(secret_key_fallbacks)
    keys = [primary]
    for position, secret in enumerate(older):
        raw = secret.encode() if isinstance(secret, str) else bytes(secret)
        if len(raw) < MIN_SECRET_BYTES:
            raise CursorSecretError(
                key,
                f"{key}[{position}] is {len(raw)} bytes, too short to verify keyset cursors: "
                f"use at least {MIN_SECRET_BYTES} random bytes",
            )
        if raw not in keys:
            keys.append(raw)
    return tuple(keys)


def _pages_by_keyset(view: object) -> bool:
    return getattr(getattr(view, "view_class", None), "pagination_mode", None) == "keyset"


def check_keyset_views(views: Iterable[object], check: Callable[[], object]) -> None:
    """When any of ``views`` (an app's view functions) pages by keyset, run ``check``."""
    if any(_pages_by_keyset(view) for view in views):
        check()


class _GuardedViews(dict[str, Any]):
    """An app's ``view_functions`` that checks the cursor secret when a keyset view is added.

    Flask registers every route by storing its view here, whatever registered it
    (``add_url_rule``, a blueprint, flask-restful's ``Api.add_resource``), so this is the one
    place that sees them all.
    """

    def __init__(self, views: dict[str, Any], check: Callable[[], object]) -> None:
        super().__init__(views)
        self._check = check

    def __setitem__(self, endpoint: str, view: Any) -> None:
        if _pages_by_keyset(view):
            self._check()
        super().__setitem__(endpoint, view)


def guard_view_functions(app: Any, configured: str | None, fallbacks: Sequence[str] = ()) -> None:
    """Check the resources on ``app`` (a Flask app) now, and each keyset view added later.

    Checks the signing secret and its fallbacks (:func:`cursor_secrets`). Raises
    :class:`CursorSecretError` (now, or from the registration of a keyset resource).
    """

    def check() -> None:
        cursor_secrets(
            configured, fallbacks, app.secret_key, app.config.get("SECRET_KEY_FALLBACKS")
        )

    check_keyset_views(app.view_functions.values(), check)
    app.view_functions = _GuardedViews(app.view_functions, check)
