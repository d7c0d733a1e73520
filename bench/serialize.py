"""Cost of writing a 100-item Page of pydantic models: the chassis's typed path against by hand.

The chassis path is what an ``ApiResource`` method annotated ``-> Page[Item]`` runs per request:
the serializer built at registration validates the page's items against ``list[Item]`` and
pydantic-core writes the whole envelope to bytes. The reference is what a Flask-RESTful user
writes today, ``json.dumps([m.model_dump(mode="json") for m in items])`` (the envelope around it
included, as the chassis would send it). A second pair times whole WSGI requests of the two
resources. Each round times every variant in turn; ratios are medians of per-round ratios.

    .venv/bin/python bench/serialize.py                  # 9 rounds, pinned to CPU 0
    .venv/bin/python bench/serialize.py --no-pin --json bench/results/serialize.json

Target (issue 24 item 6): chassis path <= 0.7x the json.dumps reference.
"""

from __future__ import annotations

import argparse
import enum
import gc
import json
import logging
import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from typing import Any

import bench_json
from flask import Flask
from pydantic import BaseModel
from werkzeug.test import EnvironBuilder

from cst_chassis import ChassisApi, CstMicroChassis
from cst_chassis._serialize import serializers_for
from cst_chassis.envelope import success_envelope
from cst_chassis.pagination import Page
from cst_chassis.resources import ApiResource

ITEMS = 100
TARGET = 0.7


class Status(enum.Enum):
    ACTIVE = "active"
    RETIRED = "retired"


class Item(BaseModel):
    id: int
    name: str
    price_cents: int
    created: datetime
    status: Status
    tags: list[str]


def make_page() -> Page[Item]:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    items = [
        Item(
            id=i,
            name=f"product number {i}",
            price_cents=100 + i,
            created=start + timedelta(minutes=i),
            status=Status.ACTIVE if i % 3 else Status.RETIRED,
            tags=["catalogue", f"t{i % 7}"],
        )
        for i in range(ITEMS)
    ]
    return Page(items=items, offset=0, limit=ITEMS, has_next=True, has_prev=False)


PAGE = make_page()


class Typed(ApiResource):
    def get(self) -> Page[Item]:
        return PAGE


class ByHand(ApiResource):
    def get(self) -> list[dict[str, Any]]:
        return [m.model_dump(mode="json") for m in PAGE]


def chassis_path() -> Callable[[], bytes]:
    serializer = serializers_for(Typed, ["get"])["get"]

    def run() -> bytes:
        data = serializer.validate(PAGE)
        return serializer.envelope_json(success_envelope(data), None)

    return run


def reference() -> Callable[[], bytes]:
    def run() -> bytes:
        data = [m.model_dump(mode="json") for m in PAGE.items]
        return (json.dumps(success_envelope(data)) + "\n").encode()

    return run


def wsgi(resource: type[ApiResource]) -> Callable[[], bytes]:
    app = Flask(f"bench_serialize_{resource.__name__}")
    CstMicroChassis(app)
    ChassisApi(app).add_resource(resource, "/items")
    environ = EnvironBuilder(path="/items", method="GET").get_environ()

    def run() -> bytes:
        chunks = app(dict(environ), _start_response)
        return b"".join(chunks)

    return run


VARIANTS: dict[str, Callable[[], Callable[[], bytes]]] = {
    "chassis typed path (validate + dump_json)": chassis_path,
    "json.dumps of model_dump(mode='json')": reference,
    "request: -> Page[Item]": lambda: wsgi(Typed),
    "request: model_dump by hand": lambda: wsgi(ByHand),
}
RATIOS = [
    (
        "chassis path / json.dumps reference",
        "chassis typed path (validate + dump_json)",
        "json.dumps of model_dump(mode='json')",
        TARGET,
    ),
    (
        "typed request / by-hand request",
        "request: -> Page[Item]",
        "request: model_dump by hand",
        None,
    ),
]


def _start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
    if not status.startswith("200"):
        raise RuntimeError(f"bench request failed: {status}")
    return None


def time_calls(run: Callable[[], bytes], calls: int) -> float:
    """Mean µs per call over ``calls`` calls."""
    start = time.perf_counter()
    for _ in range(calls):
        run()
    return (time.perf_counter() - start) / calls * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--cpu", type=int, default=0, help="CPU to pin the process to")
    parser.add_argument("--no-pin", action="store_true", help="do not pin to one CPU")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH")
    args = parser.parse_args()
    if not args.no_pin:
        os.sched_setaffinity(0, {args.cpu})
    logging.disable(logging.WARNING)

    runs = {name: factory() for name, factory in VARIANTS.items()}
    # Same data both ways: the bodies parse to the same JSON.
    assert json.loads(runs[RATIOS[0][1]]())["data"] == json.loads(runs[RATIOS[0][2]]())["data"]
    for run in runs.values():
        time_calls(run, 20)
    samples: dict[str, list[float]] = {name: [] for name in runs}
    gc.collect()
    for _ in range(args.rounds):
        for name, run in runs.items():
            samples[name].append(time_calls(run, args.calls))

    pinned = "not pinned" if args.no_pin else f"pinned to CPU {args.cpu}"
    print(
        f"Python {sys.version.split()[0]}, pydantic {version('pydantic')}; {ITEMS} items, "
        f"{args.rounds} rounds x {args.calls} calls, {pinned}, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    for name, values in samples.items():
        print(f"{name:44} {statistics.median(values):9.1f} µs median")
    ratios = {}
    missed = False
    for label, num, den, target in RATIOS:
        ratio = statistics.median(a / b for a, b in zip(samples[num], samples[den], strict=True))
        ratios[label] = ratio
        verdict = ""
        if target is not None:
            missed = missed or ratio > target
            verdict = f"  (target <= {target:.2f}: {'ok' if ratio <= target else 'MISSED'})"
        print(f"{label:44} {ratio:6.2f}x{verdict}")
    if args.json:
        results = {
            "items": ITEMS,
            "pinned": not args.no_pin,
            "median_us": {name: statistics.median(values) for name, values in samples.items()},
            "ratios": ratios,
        }
        bench_json.write(args.json, "serialize", results)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
