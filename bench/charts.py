"""Charts of the documentation site, drawn by matplotlib from the benches' JSON (``--json PATH``).

Reads the JSON in ``bench/results/`` that ``bench/overhead.py``, ``bench/keyset.py`` and
``bench/serve.py`` write with ``--json`` (``overhead-not-pinned.json`` and
``overhead-flask23.json``, more runs of the overhead bench, are drawn beside ``overhead.json``; a
file whose ``source`` is ``"transcribed"`` would hold figures copied from the documentation, and
its chart would say so) and draws:

- ``overhead.svg``: µs per request of every variant, and the ratios with their targets;
- ``keyset.svg``: a keyset page at depth 0 and 900,000 against an ``OFFSET`` page at that depth;
- ``serve.svg``: req/s and p99 of each server and service against FastAPI on uvicorn;
- ``instructions.svg``: callgrind instructions per request (``bench/overhead.py --callgrind``).

``docs/hooks.py`` calls :func:`render` at every ``make docs``; by hand:

    .venv/bin/python bench/charts.py --out /tmp/charts      # writes the SVG files there
"""

from __future__ import annotations

import argparse
import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display on a build machine
matplotlib.rcParams["svg.hashsalt"] = "cst-chassis"  # stable ids: the same JSON, the same file
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
CHASSIS, BASELINE, OTHER = "#1a73e8", "#e8710a", "#9aa0a6"


def _svg(fig: Figure) -> bytes:
    out = io.BytesIO()
    # No date in the metadata: the same JSON draws the same file.
    fig.savefig(out, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    return out.getvalue()


def _caption(fig: Figure, document: dict[str, Any]) -> None:
    origin = "figures transcribed from the docs" if document["source"] != "measured" else "measured"
    fig.tight_layout()  # axis labels inside the figure, so the caption goes below them
    # Below the figure (va="top" at its bottom edge), clear of the axis labels.
    fig.text(0.0, -0.01, f"{origin}: {document['command']}", size=7, color="#5f6368", va="top")


def _mid(value: float | list[float]) -> tuple[float, float, float]:
    """A figure or a [low, high] range of runs: (middle, minus, plus) for an error bar."""
    if isinstance(value, list):
        low, high = value
        return (low + high) / 2, (high - low) / 2, (high - low) / 2
    return value, 0.0, 0.0


def _runs(results: dict[str, Any]) -> list[dict[str, Any]]:
    # One measured run writes its figures at the top; a transcribed file lists several runs.
    if "runs" in results:
        return list(results["runs"])
    label = "pinned to one CPU" if results.get("pinned", True) else "not pinned"
    return [{"label": label, **results}]


def overhead(document: dict[str, Any]) -> bytes:
    """µs per request of each variant, and the ratios (against their targets), per run."""
    runs = _runs(document["results"])
    targets: dict[str, float] = document["results"].get(
        "targets", {"chassis sync / bare Flask-RESTful": 1.10, "chassis async / chassis sync": 2.0}
    )
    variants = list(runs[0]["median_us"])
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.6), width_ratios=[3, 2])
    height = 0.8 / len(runs)
    for index, run in enumerate(runs):
        ys = [v + index * height for v in range(len(variants))]
        left.barh(ys, [run["median_us"][v] for v in variants], height, label=run["label"])
    left.set_yticks([v + height * (len(runs) - 1) / 2 for v in range(len(variants))], variants)
    left.invert_yaxis()
    left.set_xlabel("µs per request (median of rounds; lower is better)")
    left.legend(fontsize=8)
    left.set_title("Cost per request, in one process (no server)", size=10)

    labels = list(runs[0]["ratios"])
    for index, run in enumerate(runs):
        ys = [v + index * height for v in range(len(labels))]
        mids = [_mid(run["ratios"][label]) for label in labels]
        right.barh(
            ys,
            [m[0] for m in mids],
            height,
            xerr=[[m[1] for m in mids], [m[2] for m in mids]],
            label=run["label"],
        )
    for position, label in enumerate(labels):
        if label in targets:
            right.plot(
                [targets[label]] * 2,
                [position - 0.1, position + 0.9],
                color="#d93025",
                linestyle="--",
            )
    right.set_yticks([v + height * (len(runs) - 1) / 2 for v in range(len(labels))], labels)
    right.yaxis.tick_right()
    right.invert_yaxis()
    right.set_xscale("log")
    right.set_xlabel("ratio (log scale; red dashes: the target)")
    right.set_title("Ratios in the same run", size=10)
    _caption(fig, document)
    return _svg(fig)


def keyset(document: dict[str, Any]) -> bytes:
    """First and deep keyset pages against the OFFSET page at the same depth, per database."""
    results = document["results"]
    databases = [k for k, v in results.items() if isinstance(v, dict)]
    fig, axes = plt.subplots(1, len(databases), figsize=(5.2 * len(databases), 3.8), squeeze=False)
    bars = [
        ("first_ms", "keyset, first page", CHASSIS),
        ("deep_ms", f"keyset, {results['depth']:,} rows deep", "#174ea6"),
        ("offset_ms", f"OFFSET {results['depth']:,}", BASELINE),
    ]
    for ax, database in zip(axes[0], databases, strict=True):
        shapes = list(results[database])
        width = 0.8 / len(bars)
        for index, (key, label, colour) in enumerate(bars):
            xs = [s + index * width for s in range(len(shapes))]
            ax.bar(
                xs, [results[database][s][key] for s in shapes], width, label=label, color=colour
            )
        ax.set_xticks([s + width for s in range(len(shapes))], shapes, size=8)
        ax.set_yscale("log")
        ax.set_ylabel("ms per 25-row page (log scale)")
        ax.set_title(f"{database}, {results['rows']:,} rows", size=10)
    axes[0][0].legend(fontsize=7, loc="upper left")
    _caption(fig, document)
    return _svg(fig)


def serve(document: dict[str, Any]) -> bytes:
    """Requests/s and p99 of every server and service, FastAPI on uvicorn as the baseline."""
    medians = document["results"]["medians"]
    names = [f"{m['app']} on {m['server']}" for m in medians]
    colours = [
        BASELINE if m["app"] == "fastapi" else CHASSIS if m["app"].startswith("chassis") else OTHER
        for m in medians
    ]
    fig, (rps, p99) = plt.subplots(1, 2, figsize=(11, 0.32 * len(medians) + 1.6), sharey=True)
    ys = range(len(medians))
    rps.barh(ys, [m["requests_per_second"] for m in medians], color=colours)
    rps.set_yticks(list(ys), names, size=8)
    rps.invert_yaxis()
    rps.set_xlabel("requests/s (median of rounds; higher is better)")
    p99.barh(ys, [m["p99_ms"] for m in medians], color=colours)
    p99.set_xlabel("p99 latency, ms (lower is better)")
    for ax in (rps, p99):
        ax.grid(axis="x", alpha=0.3)
    rps.set_title("One PostgreSQL lookup per request", size=10)
    p99.set_title("orange: FastAPI; blue: chassis; grey: bare Flask-RESTful", size=9)
    _caption(fig, document)
    return _svg(fig)


def instructions(document: dict[str, Any]) -> bytes:
    """Instructions per request of each variant, as counted by callgrind, and the ratio."""
    counts: dict[str, float] = document["results"]["instructions_per_request"]
    base = counts["bare Flask-RESTful sync"]
    names = list(counts)
    colours = [OTHER if n.startswith("bare") else CHASSIS for n in names]
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(names) + 1.2))
    ax.barh(range(len(names)), [counts[n] / 1000 for n in names], color=colours)
    for y, name in enumerate(names):
        ax.text(counts[name] / 1000, y, f"  {counts[name] / base:.3f}x", va="center", size=8)
    ax.set_yticks(range(len(names)), names, size=8)
    ax.invert_yaxis()
    ax.set_xlabel("thousand instructions per request (valgrind callgrind; x: / bare Flask-RESTful)")
    ax.set_xlim(0, max(counts.values()) / 1000 * 1.2)
    _caption(fig, document)
    return _svg(fig)


CHARTS: dict[str, tuple[str, Callable[[dict[str, Any]], bytes]]] = {
    "overhead.svg": ("overhead.json", overhead),
    "keyset.svg": ("keyset.json", keyset),
    "serve.svg": ("serve.json", serve),
    "instructions.svg": ("overhead-callgrind.json", instructions),
}


# More runs of bench/overhead.py drawn beside overhead.json's when their files exist: the same
# bench not pinned to a CPU, and on the oldest supported Flask.
OVERHEAD_RUNS = ("overhead-not-pinned.json", "overhead-flask23.json")


def _with_more_runs(document: dict[str, Any], more: list[dict[str, Any]]) -> dict[str, Any]:
    """One overhead document whose ``runs`` are those of ``document`` and ``more``, labelled."""
    if not more:
        return document
    runs = [
        {**run, "label": f"Flask {each['versions']['flask']}, {run['label']}"}
        for each in (document, *more)
        for run in _runs(each["results"])
    ]
    command = f"{document['command']} (and {len(more)} more runs: {', '.join(OVERHEAD_RUNS)})"
    return {**document, "command": command, "results": {**document["results"], "runs": runs}}


def render(results: Path = RESULTS) -> Iterator[tuple[str, bytes]]:
    """Draw every chart from the JSON in ``results``: ``(file name, SVG bytes)`` pairs."""
    for name, (source, draw) in CHARTS.items():
        document = json.loads((results / source).read_text(encoding="utf-8"))
        if draw is overhead:
            more = [
                json.loads((results / extra).read_text(encoding="utf-8"))
                for extra in OVERHEAD_RUNS
                if (results / extra).exists()
            ]
            document = _with_more_runs(document, more)
        yield name, draw(document)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder of the bench JSON")
    parser.add_argument("--out", type=Path, required=True, help="folder to write the SVG files")
    parser.add_argument("--format", default="svg", choices=["svg"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, svg in render(args.results):
        (args.out / name).write_bytes(svg)
        print(f"wrote {args.out / name}")


if __name__ == "__main__":
    main()
