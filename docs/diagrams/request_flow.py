"""The request-flow diagram of the docs (guides/request-flow.md), drawn as SVG by matplotlib.

The diagram is this data: the boxes (``STEPS`` down the main column, ``BRIDGE`` beside it) and the
arrows between them. ``docs/hooks.py`` calls :func:`render` at every build, so the picture always
matches this source; ``python docs/diagrams/request_flow.py out.svg`` writes it by hand.
"""

from __future__ import annotations

import io
import itertools
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: a build machine or CI
matplotlib.rcParams["svg.hashsalt"] = "cst-chassis"  # stable ids: the same source, the same file
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

# (title, detail) from the request in to the response out, one box each.
STEPS = [
    ("WSGI server", "granian, gunicorn, uWSGI, waitress"),
    (
        "OperationIdMiddleware",
        "X-Operation-ID read or made; ContextVar set;\ntrace context continued",
    ),
    ("Flask + ChassisApi", "routing; body size and JSON checks"),
    ("ApiResource method", "get/post/... returns data, (data, status), abort(...)"),
    ("Envelope", '{"meta": {"operation_id", ...}, "data" | "errors"}'),
    ("Response", "X-Operation-ID header added; ContextVar reset"),
]
# Beside the resource: how an ``async def`` method runs.
BRIDGE = [
    ("Async bridge", "the coroutine goes to the process's\none loop thread (call_soon_threadsafe)"),
    ("Event loop thread", "uvloop or asyncio; pooled AsyncEngine;\ncontext copied in and back"),
]
ERRORS = (
    "Error handlers",
    "HTTPException, ValidationError, any exception:\nerror envelope, never a traceback",
)

BOX_W, BOX_H, GAP = 4.6, 0.95, 0.55
ERROR_X, MAIN_X, SIDE_X = -5.6, 0.0, 5.6
COLOURS = {"main": "#e8f0fe", "side": "#fef7e0", "error": "#fce8e6", "edge": "#3c4043"}


def _box(ax: Axes, x: float, y: float, title: str, detail: str, colour: str) -> None:
    ax.add_patch(
        FancyBboxPatch(
            (x, y),
            BOX_W,
            BOX_H,
            boxstyle="round,pad=0.04,rounding_size=0.12",
            facecolor=colour,
            edgecolor=COLOURS["edge"],
            linewidth=1.1,
        )
    )
    ax.text(
        x + BOX_W / 2, y + BOX_H - 0.25, title, ha="center", va="center", weight="bold", size=10
    )
    ax.text(x + BOX_W / 2, y + 0.34, detail, ha="center", va="center", size=7.5)


def _arrow(ax: Axes, start: tuple[float, float], end: tuple[float, float], label: str = "") -> None:
    ax.add_patch(
        FancyArrowPatch(
            start, end, arrowstyle="-|>", mutation_scale=12, color=COLOURS["edge"], linewidth=1.1
        )
    )
    if label:
        middle = ((start[0] + end[0]) / 2, (start[1] + end[1]) / 2 + 0.12)
        ax.text(*middle, label, ha="center", va="bottom", size=7.5, style="italic")


def render(fmt: str = "svg") -> bytes:
    """The diagram as SVG bytes (no date in the metadata: the same source gives the same file)."""
    height = len(STEPS) * (BOX_H + GAP)
    fig, ax = plt.subplots(figsize=(11.5, height * 0.95))
    tops = [height - (i + 1) * (BOX_H + GAP) + GAP for i in range(len(STEPS))]
    for (title, detail), y in zip(STEPS, tops, strict=True):
        _box(ax, MAIN_X, y, title, detail, COLOURS["main"])
    for upper, lower in itertools.pairwise(tops):
        _arrow(ax, (MAIN_X + BOX_W / 2, upper), (MAIN_X + BOX_W / 2, lower + BOX_H))

    resource_y = tops[3]
    bridge_y = [resource_y + (BOX_H + GAP) * 0.5, resource_y - (BOX_H + GAP) * 0.5]
    for (title, detail), y in zip(BRIDGE, bridge_y, strict=True):
        _box(ax, SIDE_X, y, title, detail, COLOURS["side"])
    _arrow(
        ax,
        (MAIN_X + BOX_W, resource_y + BOX_H * 0.75),
        (SIDE_X, bridge_y[0] + BOX_H / 2),
        "async def",
    )
    _arrow(ax, (SIDE_X + BOX_W / 2, bridge_y[0]), (SIDE_X + BOX_W / 2, bridge_y[1] + BOX_H))
    _arrow(
        ax, (SIDE_X, bridge_y[1] + BOX_H / 2), (MAIN_X + BOX_W, resource_y + BOX_H * 0.25), "result"
    )

    # Anything raised between the middleware and the envelope ends as an error envelope.
    error_y = tops[3]
    _box(ax, ERROR_X, error_y, *ERRORS, COLOURS["error"])
    _arrow(ax, (MAIN_X, tops[2] + BOX_H / 2), (ERROR_X + BOX_W / 2, error_y + BOX_H), "raise")
    _arrow(ax, (MAIN_X, resource_y + BOX_H / 2), (ERROR_X + BOX_W, error_y + BOX_H / 2), "raise")
    _arrow(ax, (ERROR_X + BOX_W / 2, error_y), (MAIN_X, tops[4] + BOX_H / 2))

    ax.set_xlim(ERROR_X - 0.2, SIDE_X + BOX_W + 0.2)
    ax.set_ylim(-0.1, height + 0.1)
    ax.set_aspect("equal")
    ax.axis("off")
    out = io.BytesIO()
    fig.savefig(
        out, format=fmt, bbox_inches="tight", metadata={"Date": None} if fmt == "svg" else None
    )
    plt.close(fig)
    return out.getvalue()


if __name__ == "__main__":
    Path(sys.argv[1] if len(sys.argv) > 1 else "request-flow.svg").write_bytes(render())
