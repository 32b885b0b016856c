"""One `msm tag-reasoning` invocation after its options are parsed: the checks and the run. The command line
(msmtools.commands.tag_reasoning) only declares the options and calls `invoke`."""

from __future__ import annotations

import sys
from pathlib import Path

TAGGERS = ("lexical", "llm")


def invoke(*, rollouts, spec, tagger, retry_temperature, validate, predictions, rubric, model, temperature, max_tokens, chunk_size, seed, shard, output, rejects, format, quiet, gen) -> None:
    """The command's body: its options arrive by name, as the command line parsed them."""
    from .. import jsonl
    from ..errors import MsmError
    from ..tagging import rubric as rubricmod

    if tagger not in TAGGERS:
        raise MsmError(f"--tagger {tagger}: expected lexical or llm")
    from .. import formats

    if validate is None and format not in (None, "jsonl"):
        raise MsmError(f"--format {format}: tagging writes records (jsonl); tables are for --validate")
    fmt = formats.choose(format, output, ("table", "jsonl") if validate else ("jsonl",), "tag-reasoning")
    if max_tokens < 1:
        raise MsmError("--max-tokens must be at least 1")
    if spec is None:
        raise MsmError("--spec is required: the spec JSONL (from msm spec-render) whose rules become tags")
    if validate is None and rollouts is None:
        raise MsmError("give ROLLOUTS.jsonl to tag, or --validate LABELS.jsonl to score the tagger")
    if validate is not None and rollouts is not None:
        raise MsmError("give either ROLLOUTS.jsonl or --validate LABELS.jsonl, not both")
    sh = jsonl.Shard.parse(shard)
    from .. import outputs
    from ..driver import rejects_path

    outputs.check([("-o", output), ("--rejects", None if validate else rejects_path(output, rejects)),
                   ("--predictions", predictions)],
                  [("", rollouts), ("--validate", validate), ("--spec", spec if spec and Path(spec).exists() else None),
                   ("--rubric", rubric)])

    rb = rubricmod.load(rubric)
    rules, spec_ids, spec_sha = rubricmod.load_spec_rules(spec)
    if not rules:
        print(f"msm: warning: {spec}: no rule sections (ids like SP1); only the rubric's tags are used", file=sys.stderr)
    ts = rubricmod.tagset(rb, rules, spec_ids, spec_sha)

    if tagger == "lexical":
        from ..tagging.lexical import LexicalTagger

        tg = LexicalTagger(ts)
    else:
        from ..llm import Sampling, registry
        from ..tagging.llm_tagger import LLMTagger

        be = registry.build(gen[""].opts, model, progress=not quiet)
        tg = LLMTagger(ts, be, Sampling(temperature=temperature, top_p=1.0, max_tokens=max_tokens, seed=seed),
                       retry_temperature=retry_temperature)
    try:
        if validate is not None:
            _validate(validate, tg, ts, fmt, output, predictions)
        else:
            from ..tagging.run import tag_file

            tag_file(rollouts, tg, ts, output=output, rejects=rejects, shard=sh, batch_size=chunk_size,
                     progress=not quiet)
    finally:
        tg.close()


def _validate(path: str, tg, ts, fmt: str, output: str, predictions: str | None) -> None:
    from .. import jsonl
    from ..tagging import validate as val
    from ..tagging.run import provenance

    rows, items, results = val.run(path, tg, ts.ids)
    prov = provenance(tg, ts)
    if predictions is not None:
        jsonl.write(predictions, val.prediction_records(items, results, prov))
    if fmt == "jsonl":
        jsonl.write(output, val.score_records(rows, path, prov))
        return
    from ..formats import write_text

    write_text(output, val.table(rows) + "\n")
    nulls = sum(not r.decided for r in results)
    print(f"msm: tag-reasoning: {len(items)} labelled traces, {tg.kind} tagger, {nulls} with null tags", file=sys.stderr)


