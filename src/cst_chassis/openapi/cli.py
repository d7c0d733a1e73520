"""Build-time export: ``python -m cst_chassis.openapi module:factory -o openapi.json``."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import secrets
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from flask import Flask

from cst_chassis.openapi.document import build_document

__all__ = ["load_app", "main"]

_SECRET_KEY = "CST_CURSOR_SECRET"


def load_app(target: str) -> Flask:
    """``module:name``: ``name`` is a Flask app, or a factory called without arguments."""
    module_name, _, attribute = target.partition(":")
    attribute = attribute.removesuffix("()") or "app"
    found = getattr(importlib.import_module(module_name), attribute)
    app = found if isinstance(found, Flask) else found()
    if not isinstance(app, Flask):
        raise TypeError(f"{target} is neither a Flask app nor a factory returning one")
    return app


@contextlib.contextmanager
def _throwaway_cursor_secret() -> Iterator[None]:
    # Exporting signs nothing, yet init_app refuses an app with a keyset resource and no cursor
    # secret (the right call for a server): a random one, for this export only, lets CI export
    # without the production secret. The environment wins over app.config, and is put back.
    previous = os.environ.get(_SECRET_KEY)
    os.environ[_SECRET_KEY] = secrets.token_urlsafe(32)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(_SECRET_KEY, None)
        else:
            os.environ[_SECRET_KEY] = previous


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m cst_chassis.openapi module:factory [-o FILE]``: write the document.

    No cursor secret is needed: the app is loaded with a random ``CST_CURSOR_SECRET`` for the
    export (the document holds no secret and exporting signs nothing).
    """
    parser = argparse.ArgumentParser(
        prog="python -m cst_chassis.openapi",
        description="Write the OpenAPI document of a cst-chassis app (for CI to diff).",
    )
    parser.add_argument(
        "app", help="module:app or module:factory, e.g. examples.demo.app:create_app"
    )
    parser.add_argument("-o", "--output", help="file to write (default: standard output)")
    args = parser.parse_args(argv)
    with _throwaway_cursor_secret():
        document = build_document(load_app(args.app))
    text = json.dumps(document, indent=2) + "\n"
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0
