"""Fixture layer: draw a fixture's timeline (events over time, cumulative tokens) with matplotlib.

matplotlib is the optional extra ``plot`` (``pip install "sse-toolkit[plot]"``) and is imported only when a
plot is asked for, so the package and every other command work without it. The figure is built on
``matplotlib.figure.Figure`` directly (no pyplot): no GUI backend, no global state, safe in threads.

Top panel: the cumulative number of events against their arrival time (seconds since the request was
sent), one step per event, with the time to first byte and to first token marked. Bottom panel: the
running ``candidatesTokenCount + thoughtsTokenCount`` of the Gemini responses. A fixture without recorded
times is drawn against the event number instead, and the axis says so.
"""

from __future__ import annotations

import os
from typing import Any

from ._exceptions import SSEUsageError
from ._fixture_stats import FixtureStats

__all__ = ["INSTALL_HINT", "plot_stats"]

INSTALL_HINT = 'pip install "sse-toolkit[plot]"'


def _matplotlib() -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise SSEUsageError(f"plotting needs matplotlib, which is not installed: {INSTALL_HINT}") from None
    return Figure


def plot_stats(stats: FixtureStats, out: str | os.PathLike[str]) -> None:
    """Draw the timeline of ``stats`` to ``out``; the format follows its suffix (``.svg``, ``.png``, ``.pdf``)."""
    figure_class = _matplotlib()
    path = os.fspath(out)
    suffix = os.path.splitext(path)[1].lstrip(".").lower()
    figure = figure_class(figsize=(9, 5.5), layout="constrained")
    supported = figure.canvas.get_supported_filetypes()
    if suffix not in supported:
        raise SSEUsageError(f"cannot tell the image format of {path!r} from its suffix; use .svg or .png")
    events_ax, tokens_ax = figure.subplots(2, 1, sharex=True, height_ratios=(3, 2))
    timed = stats.timed
    several = len(stats.exchanges) > 1
    any_tokens = False
    for exchange in stats.exchanges:
        label = f"#{exchange.index} {exchange.status}" if several else None
        if timed:
            xs = [t for t in exchange.event_times if t is not None]
        else:
            xs = list(range(1, exchange.events + 1))
        counts = list(range(1, len(xs) + 1))
        line = events_ax.step([0.0, *xs], [0, *counts], where="post", label=label)
        color = line[0].get_color()
        events_ax.plot(xs, counts, "|", color=color, markersize=10)
        if timed and exchange.ttfb_ms is not None:
            events_ax.axvline(exchange.ttfb_ms / 1000, color=color, linestyle=":", linewidth=1)
        if timed and exchange.ttft_ms is not None:
            events_ax.axvline(exchange.ttft_ms / 1000, color=color, linestyle="--", linewidth=1)
        if exchange.tokens is not None and exchange.token_times:
            any_tokens = True
            if timed:
                token_xs = [t if t is not None else 0.0 for t, _ in exchange.token_times]
            else:
                token_xs = list(range(1, len(exchange.token_times) + 1))
            token_ys = [count for _, count in exchange.token_times]
            tokens_ax.step([0.0, *token_xs], [0, *token_ys], where="post", color=color, label=label)
            tokens_ax.plot(token_xs, token_ys, ".", color=color)

    data = stats.to_dict()
    name = os.path.basename(stats.source) if stats.source else "fixture"
    facts = [f"{data['events']} events", f"{data['bytes']} bytes"]
    if data["ttfb_ms"] is not None:
        facts.append(f"first byte {data['ttfb_ms']:.0f} ms")
    if data["ttft_ms"] is not None:
        facts.append(f"first token {data['ttft_ms']:.0f} ms")
    if data["gaps_ms"]["p50"] is not None:
        facts.append(f"gap p50 {data['gaps_ms']['p50']:.0f} ms")
    if data["tokens"] is not None:
        facts.append(f"{data['tokens']} tokens")
    if data["tokens_per_s"] is not None:
        facts.append(f"{data['tokens_per_s']:.1f} tokens/s")
    figure.suptitle(f"{name}: " + ", ".join(facts), fontsize=11)

    from matplotlib.ticker import MaxNLocator

    events_ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    tokens_ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    events_ax.set_ylabel("events (cumulative)")
    events_ax.grid(True, alpha=0.3)
    if timed:
        events_ax.plot([], [], color="gray", linestyle=":", label="first byte")
        events_ax.plot([], [], color="gray", linestyle="--", label="first token")
    if timed or several:
        events_ax.legend(loc="upper left", fontsize=8)
    tokens_ax.set_ylabel("tokens (cumulative)")
    tokens_ax.grid(True, alpha=0.3)
    if not any_tokens:
        tokens_ax.text(
            0.5, 0.5, "no token counts (not a Gemini stream with usageMetadata)",
            ha="center", va="center", transform=tokens_ax.transAxes, color="gray",
        )
    tokens_ax.set_xlabel(
        "seconds since the request was sent" if timed else "event number (the fixture has no recorded times)"
    )
    events_ax.set_xlim(left=0)
    figure.savefig(path, format=suffix)
