"""The same service on the real cst-micro-chassis 0.1.0 and on cst-chassis, request by request.

tests/differential/service.py runs once in a venv with the seed from the package registry
(its own Flask 1.1) and once here. Status, JSON body (operation ids aside) and the headers a
client reads must be equal, except where the README's migration guide lists the change: each
allowance below names its guide row (checked to exist) and states what cst-chassis answers
instead, so an undocumented difference, or a documented one that drifted, fails.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.differential.service import MARK, REQUESTS
from tests.third_party import ROOT, seed_python

# Servers, subprocesses or brokers: left out of `make check` (the Makefile).
pytestmark = pytest.mark.slow

Answer = dict[str, Any]
Check = Callable[[Answer, Answer], None]

GUIDE = ROOT / "docs" / "guides" / "migrating.md"


def _run(python: Path, package: str, tmp_path: Path) -> dict[str, Answer]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CST_", "PYTHON"))}
    env.update(
        DIFF_PACKAGE=package,
        DIFF_DATABASE=f"sqlite:///{tmp_path / (package + '.db')}",
        PYTHONPATH=str(ROOT),
    )
    result = subprocess.run(
        [str(python), str(ROOT / "tests" / "differential" / "service.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    answers = [
        json.loads(line[len(MARK) :])
        for line in result.stdout.splitlines()
        if line.startswith(MARK)
    ]
    return {answer["name"]: answer for answer in answers}


@pytest.fixture(scope="module")
def answers(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[dict[str, Answer], dict[str, Answer]]:
    tmp_path = tmp_path_factory.mktemp("differential")
    seed = _run(seed_python(), "cst_micro_chassis", tmp_path)
    ours = _run(Path(sys.executable), "cst_chassis", tmp_path)
    return seed, ours


_UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def _normalised(answer: Answer) -> Answer:
    body = answer["body"]
    meta = body.get("meta") if isinstance(body, dict) else None
    if isinstance(meta, dict) and _UUID4.fullmatch(str(meta.get("operation_id"))):
        # A fresh id per request on both sides; an id taken from the client is compared.
        body = {**body, "meta": {**meta, "operation_id": "<fresh uuid4>"}}
    headers = dict(answer["headers"])
    headers.pop("X-Operation-ID", None)  # guide: "response header"
    if "Allow" in headers:  # Werkzeug versions order it differently
        headers["Allow"] = sorted(part.strip() for part in headers["Allow"].split(","))
    return {"status": answer["status"], "body": body, "headers": headers}


def _errors(answer: Answer) -> list[dict[str, Any]]:
    body = answer["body"]
    assert set(body) == {"meta", "errors"}, body
    assert answer["headers"]["Content-Type"] == "application/json"
    errors: list[dict[str, Any]] = body["errors"]
    return errors


# -- the documented differences -----------------------------------------------------------------


def _list_is_data(seed: Answer, ours: Answer) -> None:
    assert seed["body"]["data"] == "a"  # the seed unpacked ["a", "b"] as (data, status)
    assert (ours["status"], ours["body"]["data"]) == (200, ["a", "b"])


def _errors_never_2xx(seed: Answer, ours: Answer) -> None:
    assert seed["status"] == 201
    assert ours["status"] == 400 and _errors(ours) == seed["body"]["errors"]


def _incoming_id_reused(seed: Answer, ours: Answer) -> None:
    assert seed["body"]["meta"]["operation_id"] != "client-op-1"
    assert ours["body"]["meta"]["operation_id"] == "client-op-1"
    assert ours["body"]["data"] == seed["body"]["data"]


def _abort_enveloped(seed: Answer, ours: Answer) -> None:
    assert ours["status"] == seed["status"]
    assert _errors(ours) == [seed["body"]]  # message and abort()'s extra keys, in one item


def _reqparse_items(seed: Answer, ours: Answer) -> None:
    assert ours["status"] == seed["status"] == 400
    assert _errors(ours) == [
        {"message": message, "path": name} for name, message in seed["body"]["message"].items()
    ]


def _generic_500(seed: Answer, ours: Answer) -> None:
    assert seed["status"] == ours["status"] == 500
    assert _errors(ours) == [{"message": "Internal server error"}]


def _app_error_enveloped(seed: Answer, ours: Answer) -> None:
    assert seed["headers"]["Content-Type"].startswith("text/html")
    assert ours["status"] == seed["status"]
    assert len(_errors(ours)) == 1
    assert _normalised(ours)["headers"].get("Allow") == _normalised(seed)["headers"].get("Allow")


def _status_body_grew(seed: Answer, ours: Answer) -> None:
    assert ours["status"] == seed["status"] == 200
    assert ours["body"] == {**seed["body"], "database": "ok"}


def _limit_zero_refused(seed: Answer, ours: Answer) -> None:
    assert seed["status"] == 200 and len(seed["body"]["data"]) == 10
    assert ours["status"] == 400 and _errors(ours)[0]["path"] == "limit"


def _bad_page_parameter(seed: Answer, ours: Answer) -> None:
    assert seed["status"] == ours["status"] == 400
    (seed_error,) = seed["body"]["errors"]
    (error,) = _errors(ours)
    assert seed_error["message"].startswith("Invalid parameter '")  # the raw input echoed
    assert error["path"] in seed_error["message"] and "=" not in error["message"]


def _links_encoded(seed: Answer, ours: Answer) -> None:
    assert seed["body"]["data"] == ours["body"]["data"]
    assert seed["body"]["meta"]["pagination"]["next"].startswith("http://localhost/products?q=a b")
    assert ours["body"]["meta"]["pagination"]["next"] == (
        "http://localhost/products?q=a+b&offset=3&limit=3"
    )


def _invalid_json_named(seed: Answer, ours: Answer) -> None:
    assert seed["status"] == ours["status"] == 400
    assert _errors(ours) == [{"message": "The request body is not valid JSON", "path": "body"}]


def _body_limited(seed: Answer, ours: Answer) -> None:
    assert seed["status"] == 200
    assert ours["status"] == 413 and len(_errors(ours)) == 1


# request name -> (the guide row's first cell, what cst-chassis answers instead)
ALLOWED: dict[str, tuple[str, Check]] = {
    "list_without_status": ("`return [a, b]` (a list)", _list_is_data),
    "add_error_with_success_status": ("`add_error(...)` then `return x, 201`", _errors_never_2xx),
    "operation_id_header_sent": ("incoming `X-Operation-ID`", _incoming_id_reused),
    "abort_with_message": ("`abort(404)` / any `HTTPException`", _abort_enveloped),
    "abort_with_extra": ("`abort(404)` / any `HTTPException`", _abort_enveloped),
    "reqparse_missing_argument": ("reqparse errors", _reqparse_items),
    "unhandled_exception": ("unhandled exception", _generic_500),
    "unknown_path": ("HTTP errors outside resources", _app_error_enveloped),
    "converter_mismatch": ("HTTP errors outside resources", _app_error_enveloped),
    "status_wrong_method": ("HTTP errors outside resources", _app_error_enveloped),
    "status": ("body", _status_body_grew),
    "page_limit_zero": ("`limit=0`", _limit_zero_refused),
    "page_bad_offset": ("bad `offset`/`limit`", _bad_page_parameter),
    "page_limit_too_big": ("bad `offset`/`limit`", _bad_page_parameter),
    "page_keeps_filters": ("filters kept in links", _links_encoded),
    "invalid_json_body": ("request body that is not JSON", _invalid_json_named),
    "body_over_one_mebibyte": ("request body size", _body_limited),
}


def _guide_rows() -> set[str]:
    section = GUIDE.read_text(encoding="utf-8")
    return {m.group(1).strip() for m in re.finditer(r"^\| ([^|]+?) \|", section, re.M)}


def test_every_allowance_cites_a_row_of_the_migration_guide() -> None:
    rows = _guide_rows()
    assert {row for row, _ in ALLOWED.values()} | {"response header"} <= rows


@pytest.mark.parametrize("name", [request[0] for request in REQUESTS])
def test_same_answer_as_the_seed_or_a_documented_difference(
    answers: tuple[dict[str, Answer], dict[str, Answer]], name: str
) -> None:
    seed, ours = answers[0][name], answers[1][name]
    # Guide row "response header": the id is echoed on every response, the one in meta.
    meta = ours["body"].get("meta") if isinstance(ours["body"], dict) else None
    if meta is not None:
        assert ours["headers"]["X-Operation-ID"] == meta["operation_id"]
    if name in ALLOWED:
        assert _normalised(seed) != _normalised(ours), f"{name}: no longer differs; drop it"
        ALLOWED[name][1](seed, ours)
    else:
        assert _normalised(ours) == _normalised(seed)
