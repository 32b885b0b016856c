"""Judged rates corrected for the judge's error: `msm compare --gold LABELS` and `--judge-accuracy FILE`.

Every rate msm reports is a judge's (the AM grader, the gate, a tagger, value-eval's reader). With hand
labels on a random sample of an arm's records (`msm label`), the prediction-powered estimate (PPI++,
Angelopoulos et al. 2023, the authors' `ppi-python`) combines the labels with the judge's decisions on
every record: unbiased for the true rate whatever the judge's errors, with a valid interval, and
narrower than the labels alone when the judge is good. An undecided judge (null) enters as 0.5: PPI
is valid for any fixed prediction, so nulls cost width, not validity. Without per-run labels,
`--judge-accuracy` applies the Rogan-Gladen correction with the judge's sensitivity and specificity
from a validation set (`am-eval --check-grader -o`, `tag-reasoning --validate --predictions`), its
interval by a seeded parametric bootstrap that carries the validation set's own uncertainty; it
assumes the judge errs alike on every arm, which the labels do not need.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import jsonl, stats
from ..errors import MsmError
from ..ids import stable_id
from ..labels.measures import Measure, arm

MIN_LABELS = 30  # below this per arm the normal-approximation interval is said to be shaky


@dataclass
class Gold:
    rates: list[dict[str, Any]] = field(default_factory=list)
    contrasts: list[dict[str, Any]] = field(default_factory=list)

    def records(self) -> list[dict[str, Any]]:
        return [*self.rates, *self.contrasts]

    def sections(self, conf: str) -> list[tuple[str, list[str], list[list[Any]]]]:
        out = []
        if self.rates:
            head = ["measure", "variant", "method", "N", "labels", "judge rate", "corrected", f"{conf} CI", "kappa",
                    "sens", "spec", "note"]
            rows = [[r["measure"], r["variant"], r["method"], r["n_records"], r.get("n_labels", "-"), _pct(r["judge_rate"]),
                     _pct(r["rate"]), _ci(r["lo"], r["hi"]), _num(r.get("kappa")), _num(r.get("sensitivity")),
                     _num(r.get("specificity")), "; ".join(r["notes"]) or "-"] for r in self.rates]
            out.append(("judge-corrected rates: ppi = prediction-powered (hand labels on a random sample + the judge on "
                        "every record); rogan-gladen = corrected with the judge's validated sensitivity/specificity", head, rows))
        if self.contrasts:
            head = ["measure", "contrast", "method", "diff (pp)", f"{conf} CI", "p", "p Holm"]
            rows = [[c["measure"], f"{c['variant']} - {c['baseline']}", c["method"], _pp(c["diff"]), _ci(c["lo"], c["hi"], True),
                     stats_p(c["p"]), stats_p(c["p_holm"])] for c in self.contrasts]
            out.append(("judge-corrected contrasts: difference of the corrected rates, normal interval from their "
                        "standard errors (independent arms), Holm-adjusted per measure and method", head, rows))
        return out


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _pp(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:+.1f}"


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def _ci(lo: float | None, hi: float | None, signed: bool = False) -> str:
    if lo is None:
        return "-"
    f = "{:+.1f}" if signed else "{:.1f}"
    return f"[{f.format(100 * lo)}, {f.format(100 * hi)}]"


def stats_p(p: float | None) -> str:
    return "-" if p is None else (f"{p:.2g}" if p >= 0.001 else "<0.001")


# -- inputs --------------------------------------------------------------------------------------------


def read_labels(path: str) -> dict[str, dict[str, dict[str, Any]]]:
    """measure -> record id -> its label record (the latest, where one person labelled a record twice).
    Labels from several people on one record: the first person's (by file order) is used."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for line, rec in jsonl.iter_lines(path):
        if rec.get("kind") != "label":
            continue
        for f in ("record", "measure", "value"):
            if f not in rec:
                raise MsmError(f"{jsonl.display_name(path)}:{line}: {f}: missing on a label record")
        if rec["value"] not in (True, False, "unsure"):
            raise MsmError(f"{jsonl.display_name(path)}:{line}: value: expected true, false or \"unsure\"")
        try:
            Measure.parse(str(rec["measure"]))
        except MsmError as e:
            raise MsmError(f"{jsonl.display_name(path)}:{line}: measure: {e}") from None
        per = out.setdefault(rec["measure"], {})
        old = per.get(rec["record"])
        if old is None or old.get("who") == rec.get("who"):
            per[rec["record"]] = rec
    if not out:
        raise MsmError(f"--gold {path}: no label records (kind \"label\", as msm label writes them)")
    return out


def read_accuracy(path: str) -> dict[str, tuple[int, int, int, int]]:
    """measure -> (true positives, false negatives, false positives, true negatives) of the judge on a
    hand-labelled validation set: records with the hand labels (`labels`) beside the judge's scores (`scores`),
    as `am-eval --check-grader -o` and `tag-reasoning --validate --predictions` write them."""
    counts: dict[str, list[int]] = {}
    for line, rec in jsonl.iter_lines(path):
        truth, judged = rec.get("labels"), rec.get("scores")
        if not isinstance(truth, dict) or not isinstance(judged, dict):
            if rec.get("kind") in (None, "grader_check", "tag_prediction"):
                raise MsmError(f"{jsonl.display_name(path)}:{line}: labels: missing (a validation record from an "
                               "earlier msmtools: rerun the check with -o to write labels and scores)")
            continue
        for name in truth.keys() & judged.keys():
            t, j = truth[name], judged[name]
            if isinstance(t, bool) and isinstance(j, bool):
                c = counts.setdefault(Measure.from_score(name).name, [0, 0, 0, 0])
                c[(0 if j else 1) if t else (2 if j else 3)] += 1
    if not counts:
        raise MsmError(f"--judge-accuracy {path}: no judged, hand-labelled records (am-eval --check-grader -o FILE, "
                       "or tag-reasoning --validate --predictions FILE)")
    return {m: (c[0], c[1], c[2], c[3]) for m, c in counts.items()}


def _population(paths: list[str], labels_by_path: dict[str, str], measures: list[Measure]
                ) -> dict[str, dict[str, list[tuple[str, bool | None]]]]:
    """measure -> arm -> [(record id, judge's decision)] over the compared files (repeated ids once)."""
    out: dict[str, dict[str, list[tuple[str, bool | None]]]] = {m.name: {} for m in measures}
    seen: dict[str, set[str]] = {m.name: set() for m in measures}
    for path, _, rec in jsonl.read_many(paths):
        for m in measures:
            rid = rec.get("id")
            if not m.applies(rec) or rid in seen[m.name]:
                continue
            seen[m.name].add(rid)
            out[m.name].setdefault(labels_by_path.get(path) or arm(rec), []).append((rid, m.judged(rec)))
    return out


# -- estimates -----------------------------------------------------------------------------------------


def _judge_rate(judged: list[bool | None]) -> float | None:
    dec = [j for j in judged if j is not None]
    return sum(dec) / len(dec) if dec else None


def _agreement(pairs: list[tuple[bool, bool]]) -> dict[str, float | None]:
    """The judge against the labels on one arm: Cohen's kappa (statsmodels, via tagging.validate),
    sensitivity and specificity."""
    from ..tagging.validate import kappa

    tp = sum(y and j for y, j in pairs)
    fn = sum(y and not j for y, j in pairs)
    fp = sum(j and not y for y, j in pairs)
    tn = sum((not y) and (not j) for y, j in pairs)
    return {"kappa": kappa(tp, fp, fn, tn), "sensitivity": tp / (tp + fn) if tp + fn else None,
            "specificity": tn / (tn + fp) if tn + fp else None}


def _ppi_rate(measure: str, variant: str, pop: list[tuple[str, bool | None]], labs: dict[str, dict[str, Any]],
              alpha: float) -> dict[str, Any]:
    from ppi_py import ppi_mean_ci, ppi_mean_pointestimate

    pred = {rid: (0.5 if j is None else float(j)) for rid, j in pop}
    mine = {rid: labs[rid] for rid, _ in pop if rid in labs}
    sure = {rid: lab for rid, lab in mine.items() if lab["value"] in (True, False)}
    notes = []
    rec: dict[str, Any] = {"kind": "gold_rate", "id": stable_id("gold_rate", measure, variant, "ppi"), "measure": measure,
                           "variant": variant, "method": "ppi", "n_records": len(pop), "n_labels": len(sure),
                           "n_unsure": len(mine) - len(sure), "judge_rate": _judge_rate([j for _, j in pop]),
                           "judge_null": sum(j is None for _, j in pop), "rate": None, "lo": None, "hi": None,
                           "se": None, "confidence": 1 - alpha, "notes": notes}
    if rec["n_unsure"]:
        notes.append(f"{rec['n_unsure']} unsure left out (biased if unsure goes with the answer)")
    if not all((lab.get("sample") or {}).get("random") for lab in mine.values()):
        notes.append("labels not drawn at random by msm label: the estimate is valid only if they were")
    judged_all = dict(pop)
    judged_l = {rid: judged_all[rid] for rid in sure}
    if sure and len({j for j in judged_l.values()}) == 1 and len(sure) < len(pop):
        only = next(iter(judged_l.values()))
        notes.append(f"every labelled record was judged {('undecided' if only is None else str(only).lower())}: "
                     "if only those were labelled, the sample is not random and the estimate is biased")
    if len(sure) < 2:
        notes.append("fewer than 2 labels: no estimate")
        return rec
    if len(sure) < MIN_LABELS:
        notes.append(f"{len(sure)} labels: the interval's normal approximation is shaky below {MIN_LABELS}")
    y = np.array([float(lab["value"]) for lab in sure.values()])
    yhat = np.array([pred[rid] for rid in sure])
    rest = np.array([p for rid, p in pred.items() if rid not in sure])
    if not len(rest):
        rest = yhat  # every record labelled: the labels are the answer; PPI with the same predictions
    est = float(np.atleast_1d(ppi_mean_pointestimate(y, yhat, rest))[0])
    lo, hi = (float(np.atleast_1d(x)[0]) for x in ppi_mean_ci(y, yhat, rest, alpha=alpha))
    z = stats_z(alpha)
    resid = float(np.var(y - yhat, ddof=1)) if len(y) > 1 else None
    rec.update(rate=min(max(est, 0.0), 1.0), lo=max(lo, 0.0), hi=min(hi, 1.0), se=(hi - lo) / (2 * z),
               labels_needed=labels_needed(resid, alpha, len(pop)),
               rate_labels_only=float(y.mean()), **_agreement([(bool(lab["value"]), judged_l[rid])
                                                                for rid, lab in sure.items() if judged_l[rid] is not None]))
    return rec


HALF_WIDTHS = (0.05, 0.03, 0.02)


def labels_needed(resid_var: float | None, alpha: float, n_records: int) -> dict[str, int | None]:
    """Labels per arm for a target interval half-width, from the judge's residual variance Var(Y - judge):
    n = z^2 Var / (h^2 - z^2 Var(judge) / N), the PPI variance with lambda = 1 (power tuning only helps).
    None where no number of labels gets there with this many records."""
    if resid_var is None:
        return {f"{h:g}": None for h in HALF_WIDTHS}
    z2 = stats_z(alpha) ** 2
    out = {}
    for h in HALF_WIDTHS:
        room = h * h - z2 * 0.25 / max(n_records, 1)  # the judge's own sampling noise on N records, at most 0.25/N
        out[f"{h:g}"] = math.ceil(z2 * resid_var / room) if room > 0 else None
    return out


def stats_z(alpha: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(1 - alpha / 2))


def _rogan_gladen(measure: str, variant: str, pop: list[tuple[str, bool | None]], acc: tuple[int, int, int, int],
                  alpha: float, reps: int, seed: int) -> dict[str, Any]:
    tp, fn, fp, tn = acc
    judged = [j for _, j in pop if j is not None]
    n, k = len(judged), sum(judged)
    notes = ["assumes the judge errs alike on every arm"]
    rec: dict[str, Any] = {"kind": "gold_rate", "id": stable_id("gold_rate", measure, variant, "rogan-gladen"),
                           "measure": measure, "variant": variant, "method": "rogan-gladen", "n_records": len(pop),
                           "judge_rate": k / n if n else None, "judge_null": len(pop) - n, "rate": None, "lo": None,
                           "hi": None, "se": None, "confidence": 1 - alpha, "validation": {"tp": tp, "fn": fn, "fp": fp, "tn": tn},
                           "sensitivity": tp / (tp + fn) if tp + fn else None,
                           "specificity": tn / (tn + fp) if tn + fp else None, "notes": notes}
    se_, sp_ = rec["sensitivity"], rec["specificity"]
    if not n or se_ is None or sp_ is None or se_ + sp_ <= 1:
        notes.append("no estimate: needs decided records and a validation set with both classes where the judge "
                     "beats chance (sensitivity + specificity > 1)")
        return rec
    if len(pop) - n:
        notes.append(f"{len(pop) - n} undecided records left out")
    rng = np.random.default_rng([seed, int(stable_id(measure, variant, length=8), 16)])
    p_b = rng.binomial(n, k / n, reps) / n
    se_b = rng.binomial(tp + fn, se_, reps) / (tp + fn)
    sp_b = rng.binomial(tn + fp, sp_, reps) / (tn + fp)
    den = se_b + sp_b - 1
    ok = den > 0
    est_b = np.clip((p_b[ok] + sp_b[ok] - 1) / den[ok], 0, 1)
    if ok.mean() < 0.99:
        notes.append(f"{100 * (1 - ok.mean()):.1f}% of bootstrap draws had a judge no better than chance (dropped)")
    rec.update(rate=float(np.clip((k / n + sp_ - 1) / (se_ + sp_ - 1), 0, 1)),
               lo=float(np.quantile(est_b, alpha / 2)), hi=float(np.quantile(est_b, 1 - alpha / 2)),
               se=float(est_b.std(ddof=1)))
    return rec


def analyze(paths: list[str], *, labels_by_path: dict[str, str] | None = None, gold: str | None = None,
            accuracy: str | None = None, baseline: str | None = None, alpha: float = 0.05, reps: int = 2000,
            seed: int = 0) -> Gold:
    labs = read_labels(gold) if gold else {}
    acc = read_accuracy(accuracy) if accuracy else {}
    measures = [Measure.parse(m) for m in dict.fromkeys([*labs, *acc])]
    pop = _population(paths, dict(labels_by_path or {}), measures)
    res = Gold()
    for m in measures:
        arms = pop[m.name]
        if not arms:
            raise MsmError(f"--gold/--judge-accuracy: no compared record carries the measure {m.name}")
        if m.name in labs:
            matched = sum(rid in labs[m.name] for recs in arms.values() for rid, _ in recs)
            if not matched:
                raise MsmError(f"--gold {gold}: none of its {m.name} labels names a record in the compared files "
                               "(labels match on the record id)")
            res.rates += [_ppi_rate(m.name, v, recs, labs[m.name], alpha) for v, recs in arms.items()]
        if m.name in acc:
            res.rates += [_rogan_gladen(m.name, v, recs, acc[m.name], alpha, reps, seed) for v, recs in arms.items()]
    z = stats_z(alpha)
    for measure, method in dict.fromkeys((r["measure"], r["method"]) for r in res.rates):
        rows = [r for r in res.rates if r["measure"] == measure and r["method"] == method and r["rate"] is not None]
        names = [r["variant"] for r in rows]
        pairs = ([(baseline, v) for v in names if v != baseline] if baseline in names else
                 [(a, b) for i, a in enumerate(names) for b in names[i + 1:]])
        by = {r["variant"]: r for r in rows}
        fam = []
        for a, b in pairs:
            ra, rb = by[a], by[b]
            diff, se = rb["rate"] - ra["rate"], math.hypot(ra["se"], rb["se"])
            p = 2 * (1 - _phi(abs(diff) / se)) if se > 0 else (1.0 if diff == 0 else 0.0)
            fam.append({"kind": "gold_contrast", "id": stable_id("gold_contrast", measure, method, a, b),
                        "measure": measure, "method": method, "baseline": a, "variant": b, "diff": diff,
                        "lo": diff - z * se, "hi": diff + z * se, "p": p, "confidence": 1 - alpha})
        for c, ph in zip(fam, stats.holm([c["p"] for c in fam])):
            c["p_holm"] = ph
        res.contrasts += fam
    return res


def _phi(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))
