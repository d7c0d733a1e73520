"""Charts of the documentation site, drawn by matplotlib from the benches' JSON (``--json PATH``).

Reads the JSON in ``bench/results/`` that ``bench/overhead.py``, ``bench/keyset.py``,
``bench/serve.py`` and ``bench/sweep.py`` write with ``--json`` (``overhead-not-pinned.json`` and
``overhead-flask23.json``, more runs of the overhead bench, are drawn beside ``overhead.json``; a
file whose ``source`` is ``"transcribed"`` would hold figures copied from the documentation, and
its chart would say so) and draws:

- ``overhead.svg``: µs per request of every variant, and the ratios with their targets;
- ``keyset.svg``: a keyset page at depth 0 and 900,000 against an ``OFFSET`` page at that depth;
- ``serve.svg``: req/s and p99 of each server and service against FastAPI on uvicorn, one
  PostgreSQL lookup per request (``serve.json``);
- ``serve-fanout.svg``: the same for the fan-out to a slow upstream, at each connection count
  (``bench/serve.py --workload fanout``, ``serve-fanout.json``);
- ``serve-sweep.svg``: the deployment sweep of servers x workers x threads and the command line
  chosen per workload (``bench/sweep.py``, ``serve-sweep.json``);
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


SYNC = "#8ab4f8"  # chassis sync views: a lighter blue than the async ones


def _colour(app: str) -> str:
    if app == "fastapi":
        return BASELINE
    if app == "chassis-sync":
        return SYNC
    return CHASSIS if app.startswith("chassis") else OTHER


def serve(document: dict[str, Any]) -> bytes:
    """Requests/s and p99 of every server and service against FastAPI on uvicorn, a row of two
    panels per connection count (``bench/serve.py``: the lookup, or the fan-out)."""
    results = document["results"]
    medians = results["medians"]
    counts = list(dict.fromkeys(m.get("connections") for m in medians))
    most = max(sum(1 for m in medians if m.get("connections") == c) for c in counts)
    fig, axes = plt.subplots(
        len(counts), 2, figsize=(11, len(counts) * (0.32 * most + 1.3) + 0.3), squeeze=False
    )
    fanout = results.get("workload") == "fanout"
    what = (
        f"{results.get('calls_per_request', 3)} concurrent calls to an upstream answering after "
        f"{1000 * results.get('upstream_delay_s', 0.2):.0f} ms"
        if fanout
        else "One PostgreSQL lookup per request"
    )
    for (rps, p99), count in zip(axes, counts, strict=True):
        rows = [m for m in medians if m.get("connections") == count]
        names = [f"{m['app']} on {m['server']}" for m in rows]
        colours = [_colour(m["app"]) for m in rows]
        ys = list(range(len(rows)))
        rps.barh(ys, [m["requests_per_second"] for m in rows], color=colours)
        for y, row in zip(ys, rows, strict=True):
            if row.get("vs_fastapi"):
                label = f" {row['vs_fastapi']:.2f}x"
                rps.text(row["requests_per_second"], y, label, va="center", size=7)
        rps.set_xlim(0, max(m["requests_per_second"] for m in rows) * 1.12)
        rps.set_yticks(ys, names, size=8)
        rps.invert_yaxis()
        p99.barh(ys, [m["p99_ms"] for m in rows], color=colours)
        p99.set_yticks(ys, [""] * len(ys))
        p99.invert_yaxis()
        for ax in (rps, p99):
            ax.grid(axis="x", alpha=0.3)
        suffix = f", {count} connections" if count else ""
        rps.set_title(f"{what}{suffix}", size=9)
        p99.set_title("p99 latency, ms (lower is better)", size=9)
    axes[-1][0].set_xlabel("requests/s, median of rounds (x: / FastAPI on uvicorn)")
    axes[-1][1].set_xlabel("orange: FastAPI; blue: chassis async; light blue: chassis sync")
    _caption(fig, document)
    return _svg(fig)


def sweep(document: dict[str, Any]) -> bytes:
    """Requests/s of each server x workers x threads (``bench/sweep.py``), the choice marked."""
    results = document["results"]
    workloads = [w for w in ("sync", "async") if w in results]
    fig, axes = plt.subplots(1, len(workloads), figsize=(11, 4.8), squeeze=False)
    titles = {
        "sync": "mostly sync: chassis sync lookup",
        "async": "async calling slow upstreams: chassis fan-out",
    }
    for ax, workload in zip(axes[0], workloads, strict=True):
        part = results[workload]
        top = max(part["connections"])
        rows = sorted(
            (r for r in part["runs"] if r["connections"] == top),
            key=lambda r: -r["requests_per_second"],
        )
        colours = [
            BASELINE
            if r["name"] == part["chosen"]
            else SYNC
            if r["app"] == "chassis-sync"
            else CHASSIS
            for r in rows
        ]
        ys = list(range(len(rows)))
        ax.barh(ys, [r["requests_per_second"] for r in rows], color=colours)
        for y, row in zip(ys, rows, strict=True):
            label = f" p99 {row['p99_ms']:.0f} ms" + (
                f", {row['errors']} errors" if row["errors"] else ""
            )
            ax.text(row["requests_per_second"], y, label, va="center", size=7)
        ax.set_yticks(ys, [r["name"] for r in rows], size=8)
        ax.invert_yaxis()
        ax.set_xlim(0, max(r["requests_per_second"] for r in rows) * 1.35)
        ax.grid(axis="x", alpha=0.3)
        ax.set_title(f"{titles[workload]}, {top} connections", size=9)
        ax.set_xlabel("requests/s (orange: the recommended command line)")
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
    "serve-fanout.svg": ("serve-fanout.json", serve),
    "serve-sweep.svg": ("serve-sweep.json", sweep),
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
        if not (results / source).exists():
            continue  # not measured yet: tests/test_docs.py names the charts the site must have
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
