"""Result -> text: aligned tables, Markdown, CSV, or JSONL records.

Tables show rates in % and differences in percentage points; CSV and JSONL keep the exact fractions.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

from .. import jsonl
from ..formats import write_text
from ..report import table
from .analyze import Result

FORMATS = ("table", "markdown", "csv", "jsonl")  # what compare writes, in the shared vocabulary
INTERVAL_NAMES = {"wilson": "Wilson", "clopper-pearson": "Clopper-Pearson"}
NAME_COLUMNS = ("score", "variant", "contrast", "measure", "method", "note")  # left-aligned; the rest are numbers


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def ci(lo: float | None, hi: float | None, signed: bool = False) -> str:
    if lo is None or hi is None:
        return "-"
    f = "{:+.1f}" if signed else "{:.1f}"
    return f"[{f.format(100 * lo)}, {f.format(100 * hi)}]"


def pp(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:+.1f}"


def num(x: float | None, signed: bool = False) -> str:
    return "-" if x is None else (f"{x:+.2f}" if signed else f"{x:.2f}")


def pval(p: float | None) -> str:
    if p is None:
        return "-"
    if p == 0:
        return "<1e-300"
    return f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"


def mdd(down: float | None, up: float | None) -> str:
    return f"{'n/a' if down is None else f'{100 * down:+.1f}'}/{'n/a' if up is None else f'{100 * up:+.1f}'}"


def _where(rec: dict[str, Any], keys: list[str]) -> list[str]:
    return ["-" if rec.get(b) is None else str(rec[b]) for b in keys]


def _blocks(res: Result, recs: list[dict[str, Any]]) -> list[tuple[tuple[str, ...], list[dict[str, Any]]]]:
    """Records grouped by the split fields they carry and their score's group (one table each), in order of
    first appearance."""
    out: dict[tuple, list[dict[str, Any]]] = {}
    for r in recs:
        group = getattr(res.scorers.get(r["metric"]), "group", "")
        out.setdefault((tuple(r.get("splits") or ()), group), []).append(r)
    return [(splits, rs) for (splits, _), rs in out.items()]


def _abouts(res: Result, recs: list[dict[str, Any]]) -> str:
    """What each score says, once per distinct text: 'SP1, SP2 = a reasoning tag: ...'."""
    by_about: dict[str, list[str]] = {}
    for n in dict.fromkeys(r["metric"] for r in recs):
        about = getattr(res.scorers.get(n), "about", "")
        by_about.setdefault(about, []).append(n)
    return "; ".join(f"{', '.join(ns)} = {a}" if a else ", ".join(ns) for a, ns in by_about.items())


def sections(res: Result) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, headers, rows) for each table: rates and contrasts of unpaired rates, of paired rates, means."""
    conf = f"{round(100 * (1 - res.options.alpha))}%"
    interval = INTERVAL_NAMES[res.options.interval]
    out = []
    for paired in (False, True):
        for keys, rates in _blocks(res, [r for r in res.rates if bool(r.get("paired")) == paired]):
            keys = list(keys)
            out.append(_rate_table(res, rates, keys, conf, interval, paired))
            metrics = {r["metric"] for r in rates}
            contrasts = [c for c in res.contrasts if bool(c.get("paired")) == paired and c["metric"] in metrics
                         and list(c.get("splits") or ()) == keys]
            if contrasts:
                out.append((_paired_contrasts if paired else _contrasts)(res, contrasts, keys, conf))
    if res.interactions:
        rest = [k for k in dict.fromkeys(k for r in res.interactions for k in r) if k in res.by and k != res.interactions[0]["across"]]
        head = ["score", *rest, "contrast", f"{res.interactions[0]['across']}: a / b", "diff at a (pp)", "diff at b (pp)",
                "b - a (pp)", f"{conf} CI", "p", "p Holm"]
        rows = [[r["metric"], *_where(r, rest), f"{r['variant']} - {r['baseline']}", f"{r['level_a']} / {r['level_b']}",
                 pp(r["diff_a"]), pp(r["diff_b"]), pp(r["diff"]), ci(r["lo"], r["hi"], signed=True), pval(r["p"]),
                 pval(r.get("p_holm"))] for r in res.interactions]
        out.append((f"does the contrast differ across {res.interactions[0]['across']}? the difference of the two levels' "
                    f"contrasts with a Wald {conf} interval and z-test (paired or unpaired standard errors, as the "
                    "contrasts), Holm-adjusted per score", head, rows))
    for keys, means in _blocks(res, res.means):
        keys = list(keys)
        head = ["score", "variant", *keys, "n", "mean", f"{conf} CI", "null"]
        rows = [[m["metric"], m["variant"], *_where(m, keys), m["n"], num(m["mean"]), _nci(m["lo"], m["hi"]),
                 m["n_null"]] for m in means]
        out.append((f"means: {_abouts(res, means)}; {conf} bootstrap intervals over records; nulls excluded from n "
                    "and counted in 'null'", head, rows))
        metrics = {m["metric"] for m in means}
        mc = [c for c in res.mean_contrasts if c["metric"] in metrics and list(c.get("splits") or ()) == keys]
        if mc:
            head = ["score", *keys, "contrast", "n", "mean diff", f"{conf} CI", "test", "p", "p Holm"]
            rows = [[c["metric"], *_where(c, keys), f"{c['variant']} - {c['baseline']}",
                     c.get("n_paired", f"{c.get('n_baseline')}/{c.get('n_variant')}"), num(c["diff"], True),
                     _nci(c["lo"], c["hi"], True), c["test"], pval(c["p"]), pval(c.get("p_holm"))] for c in mc]
            out.append(("mean contrasts: paired rows (the same item in both arms) take the paired bootstrap and "
                        "Wilcoxon's signed-rank test, unpaired ones a bootstrap and Welch's t-test; Holm-adjusted per "
                        "score", head, rows))
    return out


def _nci(lo: float | None, hi: float | None, signed: bool = False) -> str:
    return "-" if lo is None or hi is None else f"[{num(lo, signed)}, {num(hi, signed)}]"


def _rate_table(res: Result, rates: list[dict[str, Any]], keys: list[str], conf: str, interval: str, paired: bool):
    seeds = not paired and res.has_seeds
    nulls = any(r["n_null"] for r in rates)
    selfj = any(r.get("self_judged") for r in rates)
    head = ["score", "variant", *keys, "n", "yes", "rate", f"{conf} CI", "null"]
    if nulls:
        head += ["nulls 0 / 1"]
    if seeds:
        head += ["seeds", "seed mean", f"seed {conf} CI"]
    rows = []
    for r in rates:
        name = r["variant"] + (" *" if selfj and r.get("self_judged") else "")
        row = [r["metric"], name, *_where(r, keys), r["n"], r["k"], pct(r["rate"]), ci(r["lo"], r["hi"]), r["n_null"]]
        if nulls:
            row += [f"{pct(r['rate_nulls_false'])} / {pct(r['rate_nulls_true'])}" if r["n_null"] else ""]
        if seeds:
            row += [r["n_seeds"], pct(r["seed_mean"]), ci(r["seed_lo"], r["seed_hi"])]
        rows.append(row)
    title = (f"rates (share of decided records where the score is true): {_abouts(res, rates)}; {conf} {interval} "
             "intervals; nulls (undecided) excluded from n and counted in 'null'")
    if nulls:
        title += "; 'nulls 0 / 1': the rate with every null counted as false / as true"
    if selfj:
        title += ("; * = judged by the evaluated model itself (self_judged: its own grader or judge), not an "
                  "independent one")
    return title, head, rows


def _contrasts(res: Result, contrasts: list[dict[str, Any]], keys: list[str], conf: str):
    seeds = res.has_seeds
    cnulls = any(c["null_baseline"] or c["null_variant"] for c in contrasts)
    head = ["score", *keys, "contrast", "diff (pp)", f"{conf} CI", "p", "p Holm", "MDD (pp)"]
    if cnulls:
        head += ["diff, nulls low/high", "null-sensitive"]
    if seeds:
        head += ["seed diff", f"seed {conf} CI"]
    rows = []
    for c in contrasts:
        row = [c["metric"], *_where(c, keys), f"{c['variant']} - {c['baseline']}", pp(c["diff"]),
               ci(c["lo"], c["hi"], signed=True), pval(c["p"]), pval(c["p_holm"]), mdd(c["mdd_down"], c["mdd_up"])]
        if cnulls:
            has = c["null_baseline"] or c["null_variant"]
            row += [f"{pp(c['diff_nulls_low'])}/{pp(c['diff_nulls_high'])}" if has else "",
                    "YES" if c["null_sensitive"] else ("no" if has else "")]
        if seeds:
            row += [pp(c["seed_diff"]), ci(c["seed_lo"], c["seed_hi"], signed=True)]
        rows.append(row)
    title = (f"contrasts: diff with Newcombe {conf} interval, Fisher exact p, Holm-adjusted per score; MDD = "
             f"smallest decrease/increase detectable at {round(100 * res.options.power)}% power")
    if cnulls:
        title += ("; null-sensitive YES: counting the nulls one way or the other changes the conclusion "
                  "(interval above zero, below zero, or across it)")
    return title, head, rows


def _paired_contrasts(res: Result, contrasts: list[dict[str, Any]], keys: list[str], conf: str):
    head = ["score", *keys, "contrast", "diff (pp)", f"{conf} CI", "paired n", "discordant +/-", "McNemar p", "p Holm"]
    rows = [[c["metric"], *_where(c, keys), f"{c['variant']} - {c['baseline']}", pp(c["diff"]),
             ci(c["lo"], c["hi"], signed=True), c["n_paired"], f"{c['discordant_variant']}/{c['discordant_baseline']}",
             pval(c["p"]), pval(c["p_holm"])] for c in contrasts]
    return (f"paired contrasts, over the pairs both arms decided: difference in rate with Newcombe's paired {conf} "
            "interval; McNemar's exact test (discordant: variant true and baseline not / the reverse), Holm-adjusted "
            "per score", head, rows)


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


def _names(res: Result) -> set[str]:
    return {*NAME_COLUMNS, *res.by, *(k for r in res.records() for k in r.get("splits") or ())}


def as_table(res: Result, extra: Any = None) -> str:
    secs = [*sections(res), *(extra.sections(f"{round(100 * (1 - res.options.alpha))}%") if extra else [])]
    names = _names(res)
    parts = [f"{title}\n\n{table(head, _right_align(head, rows, names))}" for title, head, rows in secs]
    return "\n\n".join(parts) + "\n"


def as_markdown(res: Result, extra: Any = None) -> str:
    def esc(x: Any) -> str:
        return str(x).replace("|", "\\|")

    names = _names(res)
    parts = []
    for title, head, rows in [*sections(res), *(extra.sections(f"{round(100 * (1 - res.options.alpha))}%") if extra else [])]:
        lines = [f"**{esc(title)}**", "", "| " + " | ".join(map(esc, head)) + " |",
                 "|" + "|".join("---" if h in names else "---:" for h in head) + "|"]
        lines += ["| " + " | ".join(map(esc, r)) + " |" for r in rows]
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def records(res: Result, extra: Any = None) -> list[dict[str, Any]]:
    return [*res.records(), *(extra.records() if extra else [])]


def as_csv(res: Result, extra: Any = None) -> str:
    recs = records(res, extra)
    columns = list(dict.fromkeys(k for r in recs for k in r))
    buf = io.StringIO()
    w = csv.DictWriter(buf, columns, lineterminator="\n")
    w.writeheader()
    for r in recs:
        w.writerow({k: ";".join(map(str, v)) if isinstance(v, list) else v for k, v in r.items()})
    return buf.getvalue()


TEXT: dict[str, Callable[..., str]] = {"table": as_table, "markdown": as_markdown, "csv": as_csv}


def emit(res: Result, fmt: str, output: str, extra: Any = None) -> None:
    """Every table (or record) of the result, then the judge-corrected rates (`extra`, compare.gold)."""
    if fmt == "jsonl":
        jsonl.write(output, records(res, extra))
    else:
        write_text(output, TEXT[fmt](res, extra))
