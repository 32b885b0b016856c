"""A chart of one metric for a slide: variants side by side within each split, interval whiskers, n shown.

Up to MAX_BARS splits: vertical grouped bars, each labelled with its rate (and n when sizes differ).
More splits (the paper's 27 conditions) do not fit side by side, so they become rows of a dot-and-
whisker chart (a forest plot), read left to right with the split names horizontal. Both use large type,
rates in %, colour-blind-safe colours, the legend outside the data, and a subtitle that says what the
marks and whiskers are: the pooled rate with its score interval, or, where a group has several training
seeds, the mean over seeds with its seed-clustered bootstrap interval.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from ..errors import MsmError
from .analyze import Result
from ..outputs import atomic_path
from .render import INTERVAL_NAMES

# Okabe & Ito (2008): distinguishable with every common colour-vision deficiency
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
FILE_TYPES = ("png", "pdf", "svg")
MAX_BARS = 10


def _points(res: Result, metric: str):
    """[(split label, {variant: (rate, lo, hi, n)})] in the table's order; seed means where there are seeds."""
    rows = [r for r in res.rates if r["metric"] == metric]
    if not rows:
        raise MsmError(f"--plot-score {metric}: no rate score of that name (known: {', '.join(res.metrics)})")
    keys = list(rows[0].get("splits") or ())
    out: dict[tuple, dict] = {}
    for r in rows:
        split = tuple(r.get(b) for b in keys)
        if r["n"] == 0:
            out.setdefault(split, {})
            continue
        seeds = r["n_seeds"] > 1 and r.get("seed_mean") is not None
        val, lo, hi = (r["seed_mean"], r["seed_lo"], r["seed_hi"]) if seeds else (r["rate"], r["lo"], r["hi"])
        out.setdefault(split, {})[r["variant"]] = (100 * val, 100 * lo, 100 * hi, r["n"])
    labels = [" / ".join("-" if x is None else str(x) for x in s) or "all" for s in out]
    return list(zip(labels, out.values())), any(r["n_seeds"] > 1 and r.get("seed_mean") is not None for r in rows), keys


def plot(res: Result, path: str, metric: str | None = None) -> None:
    """Write the chart of one rate score (default: the first) to `path` atomically; the format follows the
    extension (png, pdf or svg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if metric is None:
        if not res.metrics:
            raise MsmError("--plot: the inputs have no rate score to draw")
        metric = res.metrics[0]
    points, seeds, keys = _points(res, metric)
    variants = [v for v in res.variants if any(v in p for _, p in points)]
    ns = sorted({p[3] for _, ps in points for p in ps.values()})
    name = f"Rate of '{metric}'"
    conf = round(100 * (1 - res.options.alpha))
    mark = "bars" if len(points) <= MAX_BARS else "dots"
    if seeds:
        what = f"{mark}: mean over training seeds; whiskers: {conf}% seed-clustered bootstrap interval"
    else:
        what = f"{mark}: pooled rate; whiskers: {conf}% {INTERVAL_NAMES[res.options.interval]} interval"
    count = f"n = {ns[0]:,}" if len(ns) == 1 else f"n = {ns[0]:,} to {ns[-1]:,}"
    subtitle = f"{what}; {count} decided samples each (nulls excluded)"
    about = getattr(res.scorers.get(metric), "about", "")
    if about:
        subtitle = f"{about}. {subtitle}"
    title = f"{name} by variant" + (f" and {' / '.join(keys)}" if keys else "")

    fig = (_bars if mark == "bars" else _dots)(plt, points, variants, name, len(ns) > 1)
    ax = fig.axes[0]
    (ax.set_xlabel if mark == "bars" else ax.set_ylabel)(" / ".join(keys), fontsize=12)
    fig.suptitle(title, x=0.01, ha="left", fontsize=14, fontweight="bold")
    ax.set_title(textwrap.fill(subtitle, 75), loc="left", fontsize=9, color="#555555")
    ax.spines[["top", "right"]].set_visible(False)
    fig.legend(title="variant", loc="outside right upper", frameon=False, fontsize=10)
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=Path(path).suffix[1:].lower() or "png")
    finally:
        plt.close(fig)


def _bars(plt, points, variants, name, show_n):
    nv, ns = len(variants), len(points)
    fig, ax = plt.subplots(figsize=(min(max(7, 3 + ns * (0.55 * nv + 0.6)), 16), 5.5), dpi=200, layout="constrained")
    bar_w = 0.8 / nv
    top = 0.0
    for j, v in enumerate(variants):
        got = [(i + (j - (nv - 1) / 2) * bar_w, ps[v]) for i, (_, ps) in enumerate(points) if v in ps]
        xs = [x for x, _ in got]
        hs = [p[0] for _, p in got]
        ax.bar(xs, hs, bar_w * 0.92, label=v, color=PALETTE[j % len(PALETTE)], zorder=2)
        ax.errorbar(xs, hs, yerr=[[p[0] - p[1] for _, p in got], [p[2] - p[0] for _, p in got]], fmt="none",
                    ecolor="#333333", elinewidth=1.2, capsize=3, zorder=3)
        for x, (val, _, hi, n) in got:
            text = f"{val:.0f}%" + (f"\nn={n:,}" if show_n else "")
            ax.annotate(text, (x, hi), xytext=(0, 3), textcoords="offset points", ha="center", va="bottom",
                        fontsize=8 if nv > 3 else 9, color="#222222")
            top = max(top, hi)
    labels = [label for label, _ in points]
    rotate = ns > 3 and max(len(t) for t in labels) > 14
    ax.set_xticks(range(ns))
    ax.set_xticklabels(labels, rotation=25 if rotate else 0, ha="right" if rotate else "center", fontsize=10)
    ax.set_xlim(-0.6, ns - 0.4)
    ax.set_ylim(0, min(max(top * 1.18 + 4, 10), 115))
    ax.set_yticks([t for t in ax.get_yticks() if 0 <= t <= 100])
    ax.set_ylabel(f"{name} (%)", fontsize=12)
    ax.yaxis.grid(True, color="#dddddd", zorder=0)
    return fig


def _dots(plt, points, variants, name, show_n):
    nv, ns = len(variants), len(points)
    fig, ax = plt.subplots(figsize=(10, min(max(5, 1.8 + ns * (0.06 * nv + 0.1)), 14)), dpi=200, layout="constrained")
    step = 0.7 / nv
    top = 0.0
    for j, v in enumerate(variants):
        got = [(i + (j - (nv - 1) / 2) * step, ps[v]) for i, (_, ps) in enumerate(points) if v in ps]
        ax.errorbar([p[0] for _, p in got], [y for y, _ in got],
                    xerr=[[p[0] - p[1] for _, p in got], [p[2] - p[0] for _, p in got]],
                    fmt="o", ms=4, color=PALETTE[j % len(PALETTE)], elinewidth=1.4, capsize=0, label=v, zorder=3)
        top = max([top, *(p[2] for _, p in got)])
    for i in range(0, ns, 2):  # banding groups the markers of one split
        ax.axhspan(i - 0.5, i + 0.5, color="#f2f2f2", zorder=0)
    ax.set_yticks(range(ns))
    ax.set_yticklabels([label for label, _ in points], fontsize=9)
    ax.set_ylim(ns - 0.5, -0.5)
    ax.set_xlim(0, min(max(top * 1.08 + 2, 10), 100))
    ax.set_xlabel(f"{name} (%)", fontsize=12)
    ax.xaxis.grid(True, color="#dddddd", zorder=1)
    return fig
