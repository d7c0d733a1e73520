"""schemathesis hooks for tests/test_schemathesis.py (loaded through ``SCHEMATHESIS_HOOKS``).

One check replaces schemathesis's ``positive_data_acceptance``: the same check, except for the
one refusal no schema can prevent. A keyset cursor is an opaque, HMAC-signed token: the document
can only say "a non-empty string", so schemathesis rightly generates strings the server must
refuse (400, ``path: "cursor"``). Exactly that answer is let through, on a request that sent a
``cursor``, when every error names ``cursor``; any other refusal of valid data still fails.
"""

from __future__ import annotations

import json
import os
from typing import Any

import schemathesis
from schemathesis.openapi.checks import RejectedPositiveData
from schemathesis.specs.openapi.checks import positive_data_acceptance


def _is_a_cursor_refusal(response: Any, case: Any) -> bool:
    if response.status_code != 400 or "cursor" not in (case.query or {}):
        return False
    try:
        errors = json.loads(response.content)["errors"]
    except (ValueError, KeyError, TypeError):
        return False
    return bool(errors) and all(error.get("path") == "cursor" for error in errors)


@schemathesis.check
def positive_data_acceptance_but_opaque_cursors(ctx: Any, response: Any, case: Any) -> Any:
    """``positive_data_acceptance``, except a signed cursor's refusal (see the module)."""
    try:
        result = positive_data_acceptance(ctx, response, case)
    except RejectedPositiveData:
        if not _is_a_cursor_refusal(response, case):
            raise
        _note("cursor refused")
        return None
    _note("checked")
    return result


def _note(event: str) -> None:
    # The test reads this file: proof that this check ran, and how often it let a cursor pass.
    if path := os.environ.get("CST_SCHEMATHESIS_HOOK_LOG"):
        with open(path, "a", encoding="utf-8") as log:
            log.write(event + "\n")
