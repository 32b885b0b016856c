"""Result -> text: aligned tables, Markdown, CSV, or JSONL records.

Tables show rates in % and differences in percentage points; CSV and JSONL keep the exact fractions.
"""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Callable
from typing import Any

from .. import jsonl
from ..outputs import atomic_path
from ..report import table
from .analyze import Result
from .scan import RULE_METRIC

FORMATS = ("table", "markdown", "csv", "jsonl")
HARMFUL = "harmful"
INTERVAL_NAMES = {"wilson": "Wilson", "clopper-pearson": "Clopper-Pearson"}
NAME_COLUMNS = ("tag", "rule", "variant", "contrast")  # left-aligned; everything else is a number


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def ci(lo: float | None, hi: float | None, signed: bool = False) -> str:
    if lo is None or hi is None:
        return "-"
    f = "{:+.1f}" if signed else "{:.1f}"
    return f"[{f.format(100 * lo)}, {f.format(100 * hi)}]"


def pp(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:+.1f}"


def pval(p: float | None) -> str:
    if p is None:
        return "-"
    if p == 0:
        return "<1e-300"
    return f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"


def mdd(down: float | None, up: float | None) -> str:
    return f"{'n/a' if down is None else f'{100 * down:+.1f}'}/{'n/a' if up is None else f'{100 * up:+.1f}'}"


def _where(rec: dict[str, Any], by: list[str]) -> list[str]:
    return ["-" if rec[b] is None else str(rec[b]) for b in by]


def _sections(res: Result) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, headers, rows) for each table: harmful rates, harmful contrasts, tag rates, tag contrasts."""
    conf = f"{round(100 * (1 - res.options.alpha))}%"
    interval = INTERVAL_NAMES[res.options.interval]
    seeds = res.has_seeds
    out = []

    def family(metric: str) -> str:
        return "harmful" if metric == HARMFUL else ("rule" if metric.startswith(RULE_METRIC) else "tag")

    for fam in ("harmful", "rule", "tag"):
        tags = fam != "harmful"  # rules and tags: one column names which
        rates = [r for r in res.rates if family(r["metric"]) == fam]
        contrasts = [c for c in res.contrasts if family(c["metric"]) == fam]
        if not rates:
            continue
        lead = [fam] if tags else []
        nulls = any(r["n_null"] for r in rates)
        selfg = not tags and any(r.get("self_graded") for r in rates)
        head = [*lead, "variant", *res.by, "n", "yes" if tags else "harmful", "rate", f"{conf} CI", "null"]
        if nulls:
            head += ["nulls 0 / 1"]
        if seeds:
            head += ["seeds", "seed mean", f"seed {conf} CI"]
        rows = []
        for r in rates:
            name = r["variant"] + (" *" if selfg and r.get("self_graded") else "")
            row = [*([r["metric"]] if tags else []), name, *_where(r, res.by), r["n"], r["k"],
                   pct(r["rate"]), ci(r["lo"], r["hi"]), r["n_null"]]
            if nulls:
                row += [f"{pct(r['rate_nulls_aligned'])} / {pct(r['rate_nulls_harmful'])}" if r["n_null"] else ""]
            if seeds:
                row += [r["n_seeds"], pct(r["seed_mean"]), ci(r["seed_lo"], r["seed_hi"])]
            rows.append(row)
        what = {"harmful": "harmful rate (the rule each record names in harmful_rule)",
                "rule": "harmful rate under each scoring rule (harmful_by): grader = the grader's verdict on every "
                        "rollout, executed or not (the MSM paper); gate-and-grader = the grader AND the check of the "
                        "action (Lynch et al.'s harness)",
                "tag": "tag rates (share of records whose tag is true)"}[fam]
        title = f"{what}; {conf} {interval} intervals; nulls excluded from n and counted in 'null'"
        if nulls:
            title += "; 'nulls 0 / 1': the rate with every null counted as not harmful / as harmful"
        if selfg:
            title += "; * = graded by the evaluated model itself (grader.self), not an independent grader"
        if fam == "rule" and res.rule_disagreements:
            title += "; records where the two rules disagree: " + ", ".join(
                f"{v} {n}" for v, n in res.rule_disagreements.items())
        out.append((title, head, rows))
        if not contrasts:
            continue
        cnulls = any(c["null_baseline"] or c["null_variant"] for c in contrasts)
        head = [*lead, *res.by, "contrast", "diff (pp)", f"{conf} CI", "p", "p Holm", "MDD (pp)"]
        if cnulls:
            head += ["diff, nulls low/high", "null-sensitive"]
        if seeds:
            head += ["seed diff", f"seed {conf} CI"]
        rows = []
        for c in contrasts:
            row = [*([c["metric"]] if tags else []), *_where(c, res.by), f"{c['variant']} - {c['baseline']}",
                   pp(c["diff"]), ci(c["lo"], c["hi"], signed=True), pval(c["p"]), pval(c["p_holm"]),
                   mdd(c["mdd_down"], c["mdd_up"])]
            if cnulls:
                has = c["null_baseline"] or c["null_variant"]
                row += [f"{pp(c['diff_nulls_low'])}/{pp(c['diff_nulls_high'])}" if has else "",
                        "YES" if c["null_sensitive"] else ("no" if has else "")]
            if seeds:
                row += [pp(c["seed_diff"]), ci(c["seed_lo"], c["seed_hi"], signed=True)]
            rows.append(row)
        holm = f"per {fam}" if tags else "over these rows"
        title = (f"{fam} contrasts: diff with Newcombe {conf} interval, Fisher exact p, "
                 f"Holm-adjusted {holm}; MDD = smallest decrease/increase detectable at "
                 f"{round(100 * res.options.power)}% power")
        if cnulls:
            title += ("; null-sensitive YES: counting the nulls one way or the other changes the conclusion "
                      "(interval above zero, below zero, or across it)")
        out.append((title, head, rows))
    return out


def _right_align(headers: list[str], rows: list[list[Any]], names: set[str]) -> list[list[str]]:
    """Pad every column but the names to its width, right-aligned, so numbers line up in report.table."""
    cells = [[str(c) for c in r] for r in rows]
    for i, h in enumerate(headers):
        if h in names:
            continue
        w = max([len(r[i]) for r in cells] + [len(h)])
        for r in cells:
            r[i] = r[i].rjust(w)
    return cells


def as_table(res: Result) -> str:
    parts = [f"{title}\n\n{table(head, _right_align(head, rows, {*NAME_COLUMNS, *res.by}))}" for title, head, rows in _sections(res)]
    return "\n\n".join(parts) + "\n"


def as_markdown(res: Result) -> str:
    def esc(x: Any) -> str:
        return str(x).replace("|", "\\|")

    parts = []
    for title, head, rows in _sections(res):
        lines = [f"**{esc(title)}**", "", "| " + " | ".join(map(esc, head)) + " |",
                 "|" + "|".join("---" if h in NAME_COLUMNS or h in res.by else "---:" for h in head) + "|"]
        lines += ["| " + " | ".join(map(esc, r)) + " |" for r in rows]
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def records(res: Result) -> list[dict[str, Any]]:
    return [*res.rates, *res.contrasts]


def as_csv(res: Result) -> str:
    recs = records(res)
    columns = list(dict.fromkeys(k for r in recs for k in r))
    buf = io.StringIO()
    w = csv.DictWriter(buf, columns, lineterminator="\n")
    w.writeheader()
    for r in recs:
        w.writerow({k: ";".join(map(str, v)) if isinstance(v, list) else v for k, v in r.items()})
    return buf.getvalue()


TEXT: dict[str, Callable[[Result], str]] = {"table": as_table, "markdown": as_markdown, "csv": as_csv}


from ..formats import BY_SUFFIX, default_format  # noqa: E402,F401  (shared by every command that prints)


def write_text(path: str, text: str) -> None:
    """Text to stdout ('-') or atomically to a path."""
    if path == jsonl.STDIO:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        f.write(text)


def emit(res: Result, fmt: str, output: str) -> None:
    if fmt == "jsonl":
        jsonl.write(output, records(res))
    else:
        write_text(output, TEXT[fmt](res))


def emit_all(res: Result | None, vres: Any, fmt: str, output: str, extra: Any = None) -> None:
    """AM results, value-eval results and judge-corrected rates (`extra`, compare.gold) in one output:
    tables one after another, records concatenated."""
    if vres is None and extra is None:
        emit(res, fmt, output)
        return
    from . import values

    alpha = res.options.alpha if res is not None else 0.05
    conf = f"{round(100 * (1 - alpha))}%"
    recs = [*(records(res) if res else []), *(values.records(vres) if vres else []), *(extra.records() if extra else [])]
    if fmt == "jsonl":
        jsonl.write(output, recs)
        return
    if fmt == "csv":
        columns = list(dict.fromkeys(k for r in recs for k in r))
        buf = io.StringIO()
        w = csv.DictWriter(buf, columns, lineterminator="\n")
        w.writeheader()
        for r in recs:
            w.writerow({k: ";".join(map(str, v)) if isinstance(v, list) else v for k, v in r.items()})
        write_text(output, buf.getvalue())
        return
    parts = [TEXT[fmt](res).rstrip("\n")] if res is not None else []
    names = {"variant", "contrast", "value", "category", "measure", "method", "note", *(vres.by if vres else [])}
    for title, head, rows in [*(values.sections(vres, alpha) if vres else []), *(extra.sections(conf) if extra else [])]:
        if fmt == "markdown":
            lines = [f"**{title}**", "", "| " + " | ".join(map(str, head)) + " |", "|" + "|".join("---" for _ in head) + "|"]
            parts.append("\n".join(lines + ["| " + " | ".join(map(str, r)) + " |" for r in rows]))
        else:
            parts.append(f"{title}\n\n{table(head, _right_align(head, rows, names))}")
    write_text(output, "\n\n".join(parts) + "\n")
