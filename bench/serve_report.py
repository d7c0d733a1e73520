"""The Performance page's serving tables, printed as Markdown from the JSON of the serving benches.

Reads ``serve.json`` (``bench/serve.py``, the lookup), ``serve-fanout.json`` (``bench/serve.py
--workload fanout``) and ``serve-sweep.json`` (``bench/sweep.py``) in ``bench/results/`` and
prints each run's table, then issue 23's targets against those figures: met, or missed by how
much. Nothing is measured here; the figures are the JSON's.

    .venv/bin/python bench/serve_report.py
    .venv/bin/python bench/serve_report.py --results /tmp/results
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def _load(results: Path, name: str) -> dict[str, Any] | None:
    path = results / name
    if not path.exists():
        return None
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


def _x(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def serve_table(document: dict[str, Any]) -> str:
    """The medians of one ``bench/serve.py`` run, one table per connection count."""
    results = document["results"]
    ratios = {
        (r["server"], r["app"], r["connections"]): r for r in results.get("per_round_ratios", [])
    }
    out = [
        f"`{document['command']}`, {document['measured_at']}; load average before the run "
        f"{' / '.join(str(x) for x in results['load_average_before'])} (1 / 5 / 15 min); "
        f"{results['workers']} workers x {results['threads']} threads, {results['rounds']} rounds "
        f"x {results['duration_s']:g} s, medians.",
        "",
    ]
    for count in results["connections"]:
        rows = [m for m in results["medians"] if m["connections"] == count]
        if len(results["connections"]) > 1:
            out += [f"**{count} connections**", ""]
        out += [
            "| app | server | req/s | p50 ms | p99 ms | errors | req/s vs FastAPI (per round) "
            "| p99 vs FastAPI (per round) | server CPU µs/req | peak RSS MB/worker |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for m in rows:
            per_round = ratios.get((m["server"], m["app"], count))
            rps_round = f" ({per_round['requests_per_second']:.2f})" if per_round else ""
            p99_round = f" ({per_round['p99']:.2f})" if per_round else ""
            out.append(
                f"| {m['app']} | {m['server']} | {m['requests_per_second']:.0f} | "
                f"{m['p50_ms']:.1f} | {m['p99_ms']:.1f} | {m['errors']} | "
                f"{_x(m['vs_fastapi'])}{rps_round} | {_x(m['p99_vs_fastapi'])}{p99_round} | "
                f"{m['cpu_us_per_request']:.0f} | {m['peak_rss_mb']:.0f} |"
            )
        out.append("")
    return "\n".join(out)


def sweep_table(document: dict[str, Any]) -> str:
    """Every configuration of the sweep at each workload's largest connection count."""
    results = document["results"]
    out = [
        f"`{document['command']}`, {document['measured_at']}; load average before the run "
        f"{' / '.join(str(x) for x in results['load_average_before'])}; one configuration at a "
        f"time, {results['rounds']} round(s) x {results['duration_s']:g} s.",
        "",
    ]
    for workload in ("sync", "async"):
        if workload not in results:
            continue
        part = results[workload]
        top = max(part["connections"])
        out += [
            f"**{workload}** ({part['workload']}, {top} connections; chosen: {part['chosen']})",
            "",
            "| server, workers x threads | req/s | p50 ms | p99 ms | errors | server CPU µs/req "
            "| peak RSS MB/worker |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        rows = sorted(
            (r for r in part["runs"] if r["connections"] == top),
            key=lambda r: -r["requests_per_second"],
        )
        for r in rows:
            name = f"**{r['name']}**" if r["name"] == part["chosen"] else r["name"]
            out.append(
                f"| {name} | {r['requests_per_second']:.0f} | {r['p50_ms']:.1f} | "
                f"{r['p99_ms']:.1f} | {r['errors']} | {r['cpu_us_per_request']:.0f} | "
                f"{r['peak_rss_mb']:.0f} |"
            )
        out += ["", f"`{part['command_line']}`", ""]
    return "\n".join(out)


def _best(
    document: dict[str, Any], app: str, count: int, servers: set[str]
) -> dict[str, Any] | None:
    rows = [
        m
        for m in document["results"]["medians"]
        if m["app"] == app and m["connections"] == count and m["server"] in servers
    ]
    return max(rows, key=lambda m: m["requests_per_second"]) if rows else None


def _verdict(row: dict[str, Any], min_rps: float, max_p99: float) -> str:
    rps, p99 = row["vs_fastapi"], row["p99_vs_fastapi"]
    misses = []
    if rps < min_rps:
        misses.append(f"req/s {100 * (min_rps - rps) / min_rps:.0f} % short")
    if p99 > max_p99:
        misses.append(f"p99 {100 * (p99 - max_p99) / max_p99:.0f} % over")
    return "met" if not misses else "**missed**: " + ", ".join(misses)


ASGI = {"uvicorn", "granian-asgi"}
EVERY = {"uvicorn", "granian-asgi", "granian-wsgi", "gunicorn", "uwsgi", "waitress"}


def targets(lookup: dict[str, Any] | None, fanout: dict[str, Any] | None) -> str:
    """Issue 23's targets against FastAPI on uvicorn: the best server of each chassis service."""
    out = [
        "| target | service (its fastest server in the run) | req/s vs FastAPI | p99 vs FastAPI "
        "| verdict |",
        "| --- | --- | ---: | ---: | --- |",
    ]
    lookup_count = lookup["results"]["connections"][0] if lookup else 0
    fan, at_least, p99 = "fan-out, {} connections: ≥ 1.0x, p99 ≤ 1.1x", 1.0, 1.1
    checks: list[tuple[str, dict[str, Any] | None, str, int, set[str], float, float]] = [
        (fan.format(128), fanout, "chassis-async", 128, ASGI, at_least, p99),
        (fan.format(512), fanout, "chassis-async", 512, ASGI, at_least, p99),
        ("lookup, chassis async: ≥ 1.0x, p99 ≤ 1.0x", lookup, "chassis-async", lookup_count, ASGI,
         at_least, 1.0),
        ("lookup, chassis sync: ≥ 1.0x, p99 ≤ 1.0x", lookup, "chassis-sync", lookup_count, EVERY,
         at_least, 1.0),
    ]  # fmt: skip
    for label, document, app, count, servers, min_rps, max_p99 in checks:
        if document is None or count not in document["results"].get("connections", []):
            continue
        row = _best(document, app, count, servers)
        if row is None:
            continue
        out.append(
            f"| {label} | {app} on {row['server']} | {row['vs_fastapi']:.2f} | "
            f"{row['p99_vs_fastapi']:.2f} | {_verdict(row, min_rps, max_p99)} |"
        )
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    lookup = _load(args.results, "serve.json")
    fanout = _load(args.results, "serve-fanout.json")
    sweep = _load(args.results, "serve-sweep.json")
    for title, document in (("lookup", lookup), ("fan-out", fanout)):
        if document and "connections" in document["results"]:
            print(f"### {title}\n\n{serve_table(document)}")
    if sweep:
        print(f"### sweep\n\n{sweep_table(sweep)}")
    print(f"### targets\n\n{targets(lookup, fanout)}")


if __name__ == "__main__":
    main()
