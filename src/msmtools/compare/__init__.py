"""`msm compare`'s library: which spec variant moves which score, by how much, and how sure we are.

    sources (declarations) -> scan (polars: unpaired rates) + paired (paired scores, means)
                           -> analyze (stats) -> render / plot

compare knows no score by name: it reads the scores each record declares (msmtools.scores) and
aggregates each as declared. `compare()` is the in-process entry point; the CLI in
msmtools.commands.compare is a thin layer over it.
"""

from __future__ import annotations

from ..errors import MsmError
from . import paired
from .analyze import Options, Result, analyze, check_by
from .scan import scan, sources


def compare(paths: list[str], *, labels: dict[str, str] | None = None, by: list[str] | None = None,
            scores: list[str] | None = None, options: Options | None = None, across: str | None = None) -> Result:
    """Rates, means and contrasts of every declared score in the inputs (any evaluator's records).

    `labels` maps a file to the variant name for all its records; `by` splits groups further by record
    fields; `scores` picks the scores to report (None: every score declared); `across` names a split field
    whose levels the contrasts are compared between (does the arm effect differ between model families?).
    """
    by = list(by or [])
    flags = dict.fromkeys(by, "--by")
    if across is not None and across not in by:
        by.append(across)
        flags[across] = "--across"
    check_by(by)
    opts = options or Options()
    with sources(list(paths), dict(labels or {})) as srcs:
        declared = {n: s for src in srcs for n, s in src.scorers.items()}
        if scores is not None:
            unknown = [s for s in scores if s not in declared]
            if unknown:
                raise MsmError(f"--scores: unknown score {', '.join(unknown)} (known: "
                               f"{', '.join(declared) or 'none: the inputs declare no scores'})")
        res = analyze(scan(srcs, by, scores), opts)
        data = paired.read(srcs, by, scores)
    rates, contrasts, means, mcontrasts = paired.analyze(
        data, by, baseline=opts.baseline, alpha=opts.alpha, interval=opts.interval, bootstrap=opts.bootstrap,
        bootstrap_seed=opts.bootstrap_seed)
    res.rates += rates
    res.contrasts += contrasts
    res.means, res.mean_contrasts = means, mcontrasts
    res.metrics += [m for m in data.scorers if m not in res.metrics and any(r["metric"] == m for r in rates)]
    res.scorers = {n: declared[n] for n in [*res.metrics, *dict.fromkeys(r["metric"] for r in means)]}
    for r in [*res.rates, *res.means]:  # the mark is about a judge: scores no model judged have none
        if not res.scorers[r["metric"]].judged:
            r["self_judged"] = 0
    res.duplicates_dropped += data.dropped
    res.variants = list(dict.fromkeys([*res.variants, *(r["variant"] for r in [*rates, *means])]))
    if not res.rates and not res.means:
        raise MsmError(f"no scored records in {', '.join(s.name for s in srcs)}")
    if opts.baseline is not None and opts.baseline not in res.variants:
        raise MsmError(f"--baseline {opts.baseline}: no such variant (known: {', '.join(res.variants)})")
    for b in by:
        if all(r.get(b) is None for r in [*res.rates, *res.means]):
            raise MsmError(f"{flags[b]} {b}: no record has this field")
    if across is not None:
        from .interaction import interactions

        res.interactions = interactions(res.contrasts, across, opts.alpha)
    return res


__all__ = ["Options", "Result", "compare"]
