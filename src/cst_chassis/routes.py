"""Route collisions between the chassis's endpoints and the app's routes: never silent.

Werkzeug answers a request with the *first* rule registered for a path and method, so a chassis
endpoint (``/status``, ``/livez``, ``/readyz``, ``/metrics``, ``/openapi.json``, ``/docs``) and an
app route on the same path would silently shadow one another, depending only on which was
registered first. :func:`guard_routes` makes each such pair a start-up error instead,
:class:`~cst_chassis.errors.RouteCollisionError`, naming both endpoints, the path, the methods
and the ``CST_*`` key that moves the chassis's endpoint:

- rules the app registered *before* ``init_app`` are met when the chassis adds its own;
- rules registered *after* it (``add_url_rule``, ``@app.route``, a blueprint, a flask-restful
  ``Api``/``ChassisApi`` resource) are checked as they are added: every one of them reaches
  ``app.url_map.add``, which is wrapped on this app's map only.

So the error comes from the line that registers the second route, at import or in the app
factory, before the server takes any request. Only identical rule strings collide (Werkzeug
prefers a static path over a converter, so an app's ``/<name>`` never hides ``/status``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cst_chassis.errors import RouteCollisionError

if TYPE_CHECKING:
    from collections.abc import Callable

    from flask import Flask
    from werkzeug.routing import Rule, RuleFactory

__all__ = ["CHASSIS_ENDPOINTS", "guard_routes"]

CHASSIS_ENDPOINTS: dict[str, str] = {
    "cst_chassis_health": "CST_HEALTH_CHECK_ENDPOINT",
    "cst_chassis_liveness": "CST_LIVENESS_ENDPOINT",
    "cst_chassis_readiness": "CST_READINESS_ENDPOINT",
    "cst_chassis_metrics": "CST_METRICS_ENDPOINT",
    "cst_openapi_document": "CST_OPENAPI_PATH",
    "cst_openapi_docs": "CST_OPENAPI_DOCS_PATH",
    "cst_openapi_docs_asset": "CST_OPENAPI_DOCS_PATH",
}
"""Each chassis endpoint name -> the ``CST_*`` key that sets (or turns off) its path."""

# Every rule answers OPTIONS automatically: sharing it is not a collision.
_IMPLICIT = frozenset({"OPTIONS"})
_Key = tuple[str, str, str]


def guard_routes(app: Flask) -> None:
    """Refuse, from now on, any chassis endpoint and app route that share a path and method.

    ``init_app`` calls it before it registers its own endpoints. Raises
    :class:`~cst_chassis.errors.RouteCollisionError` at the registration that collides.
    """
    url_map = app.url_map
    # The chassis's rules by path: an app rule added later is checked against these only.
    chassis: dict[_Key, list[Rule]] = {}
    add: Callable[[RuleFactory], None] = url_map.add

    def checked_add(rulefactory: RuleFactory) -> None:
        for rule in rulefactory.get_rules(url_map):
            if rule.endpoint in CHASSIS_ENDPOINTS:
                for other in url_map.iter_rules():
                    if other.endpoint not in CHASSIS_ENDPOINTS:
                        _refuse_overlap(app_rule=other, chassis_rule=rule)
                chassis.setdefault(_key(rule), []).append(rule)
            else:
                for other in chassis.get(_key(rule), ()):
                    _refuse_overlap(app_rule=rule, chassis_rule=other)
        add(rulefactory)

    url_map.add = checked_add  # type: ignore[method-assign]  # wrapped on this app's map only


def _key(rule: Rule) -> _Key:
    return (rule.subdomain or "", rule.host or "", rule.rule)


def _methods(rule: Rule) -> frozenset[str] | None:
    return None if rule.methods is None else frozenset(rule.methods) - _IMPLICIT


def _refuse_overlap(app_rule: Rule, chassis_rule: Rule) -> None:
    if _key(app_rule) != _key(chassis_rule):
        return
    mine, theirs = _methods(chassis_rule), _methods(app_rule)
    if mine is None or theirs is None:
        shared = mine if theirs is None else theirs
    else:
        shared = mine & theirs
    if shared is not None and not shared:
        return
    methods = "every method" if shared is None else ", ".join(sorted(shared))
    key = CHASSIS_ENDPOINTS[str(chassis_rule.endpoint)]
    example = "" if "<" in chassis_rule.rule else f" (e.g. {key}=/chassis{chassis_rule.rule})"
    raise RouteCollisionError(
        f"route collision on {chassis_rule.rule} ({methods}): the app's endpoint "
        f"{app_rule.endpoint!r} and the chassis's endpoint {chassis_rule.endpoint!r} both claim "
        f"it, and only the one registered first would ever answer. Move the chassis's endpoint "
        f"with {key}{example}, or move the app's route"
    )
