"""The benchmark's outputs: a Markdown table (ratios relative to Treadle) and a PNG chart."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _baseline(rows: list[dict[str, Any]], scenario: str, key: str, baseline: str) -> float | None:
    for row in rows:
        if row["scenario"] == scenario and row["server"] == baseline and row.get(key):
            return float(row[key])
    return None


def _cell(text: str) -> str:
    """Free text (a server's last log lines) made safe for one table cell."""
    return " ".join(text.replace("|", "/").split())


def write_table(rows: list[dict[str, Any]], path: Path, baseline: str) -> str:
    """A Markdown table; the ratio column is relative to the ``baseline`` server's row."""
    lines = [
        f"| scenario | server | interface | req/s (median) | p99 | vs {baseline} | CPU µs/req | note |",
        "|---|---|---|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        scenario, server = row["scenario"], row["server"]
        if "na" in row:
            lines.append(f"| {scenario} | {server} | | n/a | | | | {_cell(row['na'])} |")
            continue
        note = _cell(row.get("note", ""))
        if "kib_per_conn" in row:
            base = _baseline(rows, scenario, "kib_per_conn", baseline)
            ratio = f"{row['kib_per_conn'] / base:.2f}x mem" if base else ""
            value = f"{row['kib_per_conn']:.1f} KiB/conn ({row['connections']} conns)"
            lines.append(f"| {scenario} | {server} | {row['interface']} | {value} | | {ratio} | | {note} |")
            continue
        base = _baseline(rows, scenario, "rps", baseline)
        ratio = f"{row['rps'] / base:.2f}x" if base else ""
        # wrk cannot time pipelined requests one by one: no p99 then.
        rps, p99 = f"{row['rps']:,.0f}", f"{row['p99_ms']:.2f} ms" if row["p99_ms"] else "—"
        cpu = f"{row['cpu_us']:.1f}" if row.get("cpu_us") else ""
        lines.append(f"| {scenario} | {server} | {row['interface']} | {rps} | {p99} | {ratio} | {cpu} | {note} |")
    text = "\n".join(lines) + "\n"
    path.write_text(text)
    return text


def write_chart(rows: list[dict[str, Any]], path: Path) -> str:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed: no chart (pip install matplotlib)"
    scenarios = list(dict.fromkeys(row["scenario"] for row in rows))
    if not scenarios:
        return "no results: no chart"
    cols = 2
    fig, axes = plt.subplots((len(scenarios) + cols - 1) // cols, cols, figsize=(12, 2.6 * len(scenarios) / cols + 1))
    axes = list(axes.flat) if hasattr(axes, "flat") else [axes]
    for ax, scenario in zip(axes, scenarios):
        ran = [r for r in rows if r["scenario"] == scenario and "na" not in r]
        key, unit = ("kib_per_conn", "KiB per idle connection") if scenario == "idle-memory" else ("rps", "req/s")
        names = [r["server"] for r in ran]
        values = [r[key] for r in ran]
        colors = ["#d62728" if n.startswith("treadle") else "#1f77b4" for n in names]
        ax.barh(names, values, color=colors)
        ax.invert_yaxis()
        ax.set_title(f"{scenario} ({unit})", fontsize=10)
        ax.tick_params(labelsize=8)
        for i, v in enumerate(values):
            ax.text(v, i, f" {v:,.0f}" if key == "rps" else f" {v:.1f}", va="center", fontsize=7)
    for ax in axes[len(scenarios) :]:
        ax.set_visible(False)
    fig.suptitle("Single worker, one core each for server and wrk (shared 2-core machine)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return f"chart written to {path}"
