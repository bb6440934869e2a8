"""Turn a saved reactor trace (JSON Lines, from `--trace-reactor FILE.jsonl`) into a picture.

    python -m treadle.reactor.timeline trace.jsonl -o timeline.html   # self-contained HTML + SVG
    python -m treadle.reactor.timeline trace.jsonl -o timeline.svg    # the SVG alone
    python -m treadle.reactor.timeline trace.jsonl -o timeline.png    # needs matplotlib

The picture has two lanes sharing one time axis. The top lane is the kernel's: grey while
the loop waits in select()/epoll_wait, ending where the poll returned, with the file
descriptors it reported. The bottom lane is the loop's: one coloured block per callback it
then ran, in order, as wide as it took. Reading left to right is reading `_run_once`.

Discussion — idle gaps. A loop waits milliseconds or seconds and runs callbacks for
microseconds; drawn to one scale, the callbacks vanish. So waits longer than `max_gap_ms`
are drawn `max_gap_ms` wide with a break mark and their real length in the label, and
everything else is to scale.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

# Colour-blind-safe palette (Okabe–Ito), handed to the callback kinds that take the most
# time; the rest share a grey.
_PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
_OTHER_COLOUR = "#999999"
_WAIT_COLOUR = "#c8c8c8"
_LANE_HEIGHT = 34
_TOP = 70
_LEFT = 150


@dataclass
class Block:
    """One rectangle: `lane` 0 (kernel wait) or 1 (callback), display position in ms."""

    lane: int
    start: float
    width: float
    label: str
    detail: str
    colour: str
    broken: bool = False  # a long wait drawn shortened


def load(path: Path) -> list[dict[str, Any]]:
    """The poll records of a JSON Lines trace, in order."""
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def layout(records: Sequence[dict[str, Any]], max_gap_ms: float) -> tuple[list[Block], float]:
    """Place every wait and callback on a display axis; returns (blocks, axis length in ms)."""
    blocks: list[Block] = []
    colours = colour_map(records)
    x = 0.0
    for record in records:
        wait = record["wait_ms"]
        shown = min(wait, max_gap_ms)
        fds = ", ".join(f"fd {e['fd']} {'|'.join(e['events'])}" for e in record["events"])
        timeout = "none" if record["timeout_ms"] is None else f"{record['timeout_ms']:g} ms"
        blocks.append(
            Block(
                0,
                x,
                shown,
                fds or ("timeout" if record["timeout_ms"] else ""),
                f"poll #{record['poll']}: timeout {timeout}, waited {wait:g} ms"
                + (f", ready: {fds}" if fds else ", nothing ready"),
                _WAIT_COLOUR,
                broken=wait > max_gap_ms,
            )
        )
        x += shown
        for callback in record["callbacks"]:
            name = callback["name"]
            blocks.append(
                Block(1, x, callback["ms"], name, f"{name}: {callback['ms']:g} ms (poll #{record['poll']})",
                      colours.get(kind_of(name), _OTHER_COLOUR))
            )
            x += callback["ms"]
    return blocks, x


def kind_of(name: str) -> str:
    """What a callback is, without the instance: every request task is `task (RequestCycle.run)`."""
    return re.sub(r"^task \S+ ", "task ", name)


def kinds_by_time(records: Sequence[dict[str, Any]]) -> list[str]:
    totals: dict[str, float] = {}
    for record in records:
        for callback in record["callbacks"]:
            kind = kind_of(callback["name"])
            totals[kind] = totals.get(kind, 0.0) + callback["ms"]
    return sorted(totals, key=totals.__getitem__, reverse=True)


def colour_map(records: Sequence[dict[str, Any]]) -> dict[str, str]:
    return dict(zip(kinds_by_time(records), _PALETTE))


def summary(records: Sequence[dict[str, Any]]) -> str:
    waited = sum(r["wait_ms"] for r in records)
    ran = sum(c["ms"] for r in records for c in r["callbacks"])
    count = sum(len(r["callbacks"]) for r in records)
    events = sum(len(r["events"]) for r in records)
    return (
        f"{len(records)} polls, {events} ready events, {count} callbacks; "
        f"{waited:.1f} ms waiting in the poll, {ran:.2f} ms running callbacks"
    )


def render_svg(records: Sequence[dict[str, Any]], max_gap_ms: float = 2.0, width_px: int = 1400) -> str:
    """The timeline as a standalone SVG document (hover a block for its details)."""
    blocks, length = layout(records, max_gap_ms)
    scale = (width_px - _LEFT - 20) / length if length else 1.0
    height = _TOP + 2 * _LANE_HEIGHT + 90
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width_px}" height="{height}" '
        f'viewBox="0 0 {width_px} {height}" font-family="sans-serif" font-size="11">',
        f'<rect width="{width_px}" height="{height}" fill="white"/>',
        f'<text x="10" y="22" font-size="15" font-weight="bold">Reactor timeline: {len(records)} passes of '
        "the loop</text>",
        f'<text x="10" y="42">{html.escape(summary(records))}. Waits over {max_gap_ms:g} ms are shortened '
        "(marked //).</text>",
        f'<text x="10" y="{_TOP + 21}">kernel: waiting</text>',
        f'<text x="10" y="{_TOP + _LANE_HEIGHT + 21}">loop: callbacks</text>',
    ]
    for block in blocks:
        x = _LEFT + block.start * scale
        y = _TOP + block.lane * _LANE_HEIGHT + 4
        w = max(block.width * scale, 1.0)  # a 3 µs callback still shows
        out.append(
            f'<rect x="{x:.2f}" y="{y}" width="{w:.2f}" height="{_LANE_HEIGHT - 8}" fill="{block.colour}" '
            f'stroke="white" stroke-width="0.5"><title>{html.escape(block.detail)}</title></rect>'
        )
        if block.broken:
            mid = x + w / 2
            out.append(f'<text x="{mid:.2f}" y="{y + 17}" text-anchor="middle" fill="#555">//</text>')
        if block.label and w > 6 * len(block.label):
            colour = "#222" if block.lane == 0 else "white"
            out.append(f'<text x="{x + 3:.2f}" y="{y + 17}" fill="{colour}">{html.escape(block.label)}</text>')
    axis_y = _TOP + 2 * _LANE_HEIGHT + 12
    out.append(f'<line x1="{_LEFT}" y1="{axis_y}" x2="{_LEFT + length * scale:.2f}" y2="{axis_y}" stroke="#333"/>')
    out.append(
        f'<text x="{_LEFT}" y="{axis_y + 16}">display time →  {length:.2f} ms shown '
        "(callbacks to scale; hover any block for its poll, fds and duration)</text>"
    )
    for index, (name, colour) in enumerate(colour_map(records).items()):
        x, y = _LEFT + (index % 4) * 300, axis_y + 28 + (index // 4) * 16
        out.append(f'<rect x="{x}" y="{y}" width="10" height="10" fill="{colour}"/>')
        out.append(f'<text x="{x + 14}" y="{y + 9}">{html.escape(name)}</text>')
    out.append("</svg>")
    return "\n".join(out)


def render_html(records: Sequence[dict[str, Any]], max_gap_ms: float = 2.0, source: str = "") -> str:
    """A self-contained page: the SVG plus the first polls as text, for reading alongside."""
    from treadle.reactor.introspect import format_record

    text = "\n".join(format_record(r) for r in records[:40])
    return (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>Reactor timeline</title></head>\n"
        "<body style='font-family:sans-serif;margin:16px'>\n"
        f"<p>Trace: {html.escape(source)}</p>\n<div style='overflow-x:auto'>{render_svg(records, max_gap_ms)}</div>\n"
        f"<h3>The same polls as text</h3>\n<pre>{html.escape(text)}</pre>\n</body></html>\n"
    )


def render_png(records: Sequence[dict[str, Any]], path: Path, max_gap_ms: float = 2.0) -> None:
    """The same two lanes drawn with matplotlib (ImportError when it is not installed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    blocks, length = layout(records, max_gap_ms)
    fig, ax = plt.subplots(figsize=(14, 3.6))
    for block in blocks:
        y = 1 - block.lane
        ax.broken_barh([(block.start, max(block.width, length / 2000))], (y - 0.4, 0.8),
                       facecolors=block.colour, edgecolor="white", linewidth=0.3)
        if block.broken:
            ax.text(block.start + block.width / 2, y, "//", ha="center", va="center", color="#555")
    ax.set_yticks([1, 0], ["kernel: waiting", "loop: callbacks"])
    ax.set_xlim(0, length)
    ax.set_xlabel(f"display time, ms (waits over {max_gap_ms:g} ms shortened)")
    ax.set_title(summary(records), fontsize=9)
    legend = [Patch(color=colour, label=name) for name, colour in colour_map(records).items()]
    ax.legend(handles=legend, loc="upper center", bbox_to_anchor=(0.5, -0.32), ncol=4, fontsize=8, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m treadle.reactor.timeline", description=__doc__.splitlines()[0])
    parser.add_argument("trace", type=Path, help="a JSON Lines trace from --trace-reactor FILE.jsonl")
    parser.add_argument("-o", "--output", type=Path, required=True, help="output: .html, .svg or .png")
    parser.add_argument("--first", type=int, default=0, help="skip this many polls")
    parser.add_argument("--polls", type=int, default=150, help="draw at most this many polls (default: 150)")
    parser.add_argument("--max-gap-ms", type=float, default=2.0, help="shorten waits longer than this (default: 2)")
    args = parser.parse_args(argv)
    records = load(args.trace)[args.first : args.first + args.polls]
    if not records:
        print(f"{args.trace}: no polls to draw", file=sys.stderr)
        return 1
    suffix = args.output.suffix.lower()
    if suffix == ".png":
        try:
            render_png(records, args.output, args.max_gap_ms)
        except ImportError:
            print("PNG output needs matplotlib (pip install matplotlib); try -o timeline.html", file=sys.stderr)
            return 1
    elif suffix == ".svg":
        args.output.write_text(render_svg(records, args.max_gap_ms), encoding="utf-8")
    else:
        args.output.write_text(render_html(records, args.max_gap_ms, str(args.trace)), encoding="utf-8")
    print(f"wrote {args.output}: {summary(records)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
