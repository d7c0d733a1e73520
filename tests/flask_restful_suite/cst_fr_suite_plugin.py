"""pytest plugin: run flask-restful 0.3.10's own tests (as downloaded) against this project.

Loaded by tests/test_flask_restful_suite.py in a pytest subprocess (``-p cst_fr_suite_plugin``)
whose working directory is the unpacked sdist. It supplies what those 2014-era tests need on
Python 3.11 and Flask 3 (a stand-in ``nose``, nose-style ``yield`` tests,
``flask.signals.signals_available``), swaps ``flask_restful.Api`` for ``ChassisApi`` when
``CST_FR_SUITE_API=chassis``, and marks the expected failures of that mode (listed below, each
with its reason) as strict xfails: an unexpected pass fails the run too.

Two kinds of expected failure only: ``PLAIN`` fail with plain flask-restful too, on this
project's supported Python/Flask/Werkzeug (so they say nothing about cst-chassis); ``ENVELOPE``
fail with ``ChassisApi`` only because the error body is ``{"meta", "errors"}`` instead of
flask-restful's ``{"message": ...}`` (README, "Responses").
"""

from __future__ import annotations

import inspect
import os
import sys
import types
import unittest
from collections.abc import Callable, Iterator
from typing import Any

import flask.signals
import flask_restful
import pytest

MODE = os.environ.get("CST_FR_SUITE_API", "plain")

_BODY = 'envelope body: {"meta", "errors"} where flask-restful sends {"message"}'

PLAIN: dict[str, str] = {
    "test_api.py::APITestCase::test_exception_header_forwarded": (
        "Flask 2.3+/3 aborts through app.aborter, not werkzeug's _aborter the test patches: "
        "abort(304) raises LookupError"
    ),
    "test_api.py::APITestCase::test_media_types_method": (
        "Werkzeug >= 2.3 no longer parses the quality 'q=.5' (needs a leading 0)"
    ),
    "test_api.py::APITestCase::test_media_types_q": (
        "Werkzeug >= 2.3 no longer parses the quality 'q=.5' (needs a leading 0)"
    ),
    "test_api.py::APITestCase::test_redirect": (
        "Werkzeug >= 2.1 sends a relative Location ('/'), the test expects an absolute URL"
    ),
}

ENVELOPE: dict[str, str] = {
    "test_api.py::APITestCase::test_custom_error_message": (
        _BODY + "; errors= mapping applied (status 418), its 'status' key is not in the item"
    ),
    "test_api.py::APITestCase::test_handle_api_error": _BODY + " (no top-level 'message')",
    "test_api.py::APITestCase::test_handle_auth": _BODY + "; WWW-Authenticate still sent",
    "test_api.py::APITestCase::test_handle_error": _BODY,
    "test_api.py::APITestCase::test_handle_error_does_not_swallow_custom_exceptions": (
        _BODY + "; errors= mapping applied (status 409), its 'status' key is not in the item"
    ),
    "test_api.py::APITestCase::test_handle_error_does_not_swallow_exceptions": _BODY,
    "test_api.py::APITestCase::test_handle_error_with_code": (
        _BODY + "; a non-HTTP exception's .data is never sent (generic 500 message)"
    ),
    "test_api.py::APITestCase::test_handle_server_error": (
        _BODY + " ('Internal server error' in the item)"
    ),
}


def expected_failures(mode: str) -> dict[str, str]:
    """Test id (``file::Class::test``) -> reason, for ``plain`` or ``chassis`` mode."""
    return {**PLAIN, **ENVELOPE} if mode == "chassis" else dict(PLAIN)


def _install_nose() -> None:
    # nose 1.x does not import on Python 3.10+; the tests use four names from it.
    nose = types.ModuleType("nose")
    tools = types.ModuleType("nose.tools")
    case = unittest.TestCase()
    tools.assert_equal = case.assertEqual  # type: ignore[attr-defined]  # building a module
    tools.assert_equals = case.assertEqual  # type: ignore[attr-defined]  # building a module
    tools.assert_true = case.assertTrue  # type: ignore[attr-defined]  # building a module
    tools.assert_false = case.assertFalse  # type: ignore[attr-defined]  # building a module
    nose.tools = tools  # type: ignore[attr-defined]  # building a module
    nose.SkipTest = unittest.SkipTest  # type: ignore[attr-defined]  # building a module
    sys.modules["nose"] = nose
    sys.modules["nose.tools"] = tools


_install_nose()
# Flask 2.3+ always has blinker and dropped the flag; the tests still import it.
flask.signals.signals_available = True  # type: ignore[attr-defined, unused-ignore]  # gone in Flask 3

if MODE == "chassis":
    from cst_chassis import ChassisApi

    flask_restful.Api = ChassisApi  # type: ignore[misc]  # the swap under test


class _YieldedCall(pytest.Item):
    def __init__(self, *, call: Callable[..., Any], args: tuple[Any, ...], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._call = call
        self._args = args

    def runtest(self) -> None:
        self._call(*self._args)

    def reportinfo(self) -> tuple[Any, int | None, str]:
        return self.path, None, self.name


class _YieldTest(pytest.Collector):
    """A nose-style generator test: each ``yield func, *args`` is one test item."""

    def __init__(self, *, function: Callable[[], Iterator[tuple[Any, ...]]], **kwargs: Any):
        super().__init__(**kwargs)
        self._function = function

    def collect(self) -> Iterator[pytest.Item]:
        for index, (call, *args) in enumerate(self._function()):
            yield _YieldedCall.from_parent(self, name=f"[{index}]", call=call, args=tuple(args))


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(
    collector: pytest.Collector, name: str, obj: object
) -> pytest.Collector | None:
    if (
        isinstance(collector, pytest.Module)
        and name.startswith("test")
        and inspect.isgeneratorfunction(obj)
    ):
        return _YieldTest.from_parent(collector, name=name, function=obj)
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    expected = expected_failures(MODE)
    found = set()
    for item in items:
        key = item.nodeid.split("[")[0].split("/")[-1]
        reason = expected.get(key)
        if reason is not None:
            found.add(key)
            item.add_marker(pytest.mark.xfail(reason=reason, strict=True))
    missing = sorted(set(expected) - found)
    if missing:
        raise pytest.UsageError(f"expected failures not collected: {missing}")
