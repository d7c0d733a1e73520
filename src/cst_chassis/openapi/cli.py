"""Build-time export: ``python -m cst_chassis.openapi module:factory -o openapi.json``."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from flask import Flask

from cst_chassis.openapi.document import build_document

__all__ = ["load_app", "main"]


def load_app(target: str) -> Flask:
    """``module:name``: ``name`` is a Flask app, or a factory called without arguments."""
    module_name, _, attribute = target.partition(":")
    attribute = attribute.removesuffix("()") or "app"
    found = getattr(importlib.import_module(module_name), attribute)
    app = found if isinstance(found, Flask) else found()
    if not isinstance(app, Flask):
        raise TypeError(f"{target} is neither a Flask app nor a factory returning one")
    return app


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m cst_chassis.openapi module:factory [-o FILE]``: write the document."""
    parser = argparse.ArgumentParser(
        prog="python -m cst_chassis.openapi",
        description="Write the OpenAPI document of a cst-chassis app (for CI to diff).",
    )
    parser.add_argument(
        "app", help="module:app or module:factory, e.g. examples.demo.app:create_app"
    )
    parser.add_argument("-o", "--output", help="file to write (default: standard output)")
    args = parser.parse_args(argv)
    text = json.dumps(build_document(load_app(args.app)), indent=2) + "\n"
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0
