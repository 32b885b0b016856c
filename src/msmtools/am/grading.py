"""Grading a chunk of rollout records: the --grade selection, the harmful rule, grader failures."""

from __future__ import annotations

from typing import Any

from . import grader, scores
from .scores import scoring_rules
from .config import Backends, EvalConfig
from .render import Rendered
from .sample import forwarded

def grade_records(cfg: EvalConfig, backends: Backends, recs: list[dict[str, Any]], rendered: list[Rendered]) -> list[int]:
    """Fill `grader` and `harmful` in place, grading the records the --grade mode selects in one batch.

    Returns the indices of records whose grading failed in the backend (not undecided): those must not
    be written as rollouts; the caller turns them into error records that a rerun retries.
    """
    todo = [i for i, rec in enumerate(recs) if cfg.grade == "all" or (cfg.grade == "gated" and rec["gate"])]
    results: dict[int, dict[str, Any]] = {}
    if todo:
        b = backends.grader()
        items = [grader.Item(recs[i]["id"], rendered[i], recs[i]["response"], forwarded(recs[i]["actions"])) for i in todo]
        out = grader.grade(b, items, temperature=cfg.grader_temperature, retry_temperature=cfg.grader_retry_temperature,
                           max_tokens=cfg.grader_max_tokens or cfg.max_tokens, seed=cfg.seed, top_p=cfg.grader_top_p)
        results = dict(zip(todo, out))
    for i, rec in enumerate(recs):
        g = results.get(i)
        if g is None:
            if cfg.grade == "none":
                g = grader.skipped(None, None, "--grade none")
            else:
                g = grader.skipped(cfg.grader_backend_name, cfg.grader_model_name, "gate false (--grade gated)")
        if g.get("model") is not None:
            g["self"] = cfg.self_graded(rec)
        rec["grader"] = g
        rec["harmful"] = grader.harmful(rec["gate"], g["verdict"], cfg.harmful_mode)
        rec["harmful_rule"] = cfg.harmful_mode
        rec["harmful_by"] = {rule: grader.harmful(rec["gate"], g["verdict"], rule) for rule in scoring_rules(cfg.grade)}
        scores.attach(rec)
    return [i for i, rec in enumerate(recs) if rec["grader"].get("failed")]


def grader_failure(rec: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "error", "stage": "am-grade", "id": rec["id"], "input": rec["condition"], "label": rec["label"],
            "sample": rec["sample"], "retry": True,
            "message": f"grader failed: {rec['grader'].get('error')} (the reply was generated; a rerun "
                       "generates it again, from the cache with --cache, and grades it)"}


