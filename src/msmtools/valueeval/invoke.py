"""One `msm value-eval` invocation after its options are parsed: the checks and the run. The command line
(msmtools.commands.value_eval) only declares the options and calls `invoke`."""

from __future__ import annotations

import sys


def invoke(*, items, mode, decide, subset, model, from_, adapter, labels, temperature, max_tokens, judge_max_tokens, rubric, seed, chunk_size, output, rejects, shard, quiet, gen) -> None:
    """The command's body: its options arrive by name, as the command line parsed them."""
    from .. import jsonl, outputs
    from ..am import variants
    from ..errors import MsmError
    from ..valueeval import items as itemsmod
    from ..valueeval.run import ValueConfig, run

    loaded = itemsmod.load(items)
    if subset is not None:
        loaded = itemsmod.subset(loaded, subset)
    main, judge = gen[""].opts, gen["judge"]
    if mode is None:
        mode = "judge" if loaded[0].kind == "qa" else ("logprob" if main.capabilities.scores_text else "generate")
    from ..driver import rejects_path

    outputs.check([("-o", output), ("--rejects", rejects_path(output, rejects))],
                  [("", str(itemsmod.resolve(n))) for n in items] + [("--from", from_), ("--rubric", rubric)])
    if from_ is not None and model not in (None, "-"):
        raise MsmError("--from and --model: give one (checkpoint records, or a model)")
    if from_ is not None or model == "-":
        vs = variants.from_checkpoints(from_ or "-", labels)
    else:
        vs = variants.from_args(model, adapter or [], labels)
    cfg = ValueConfig(variants=vs, items=loaded, mode=mode, decide=decide, gen=main, judge_model=judge.model,
                      judge_gen=judge.opts, temperature=temperature, max_tokens=max_tokens,
                      judge_max_tokens=judge_max_tokens, seed=seed, output=output, rejects=rejects,
                      shard=jsonl.Shard.parse(shard), chunk_size=chunk_size, rubric=rubric, progress=not quiet)
    if mode != "logprob" and judge.model is None and not quiet:
        print("msm: value-eval: warning: no --judge-model: answers the parser cannot read are judged by the evaluated "
              "model itself (records say judge.self: true)", file=sys.stderr)
    cfg.check()
    cfg.check_models()
    run(cfg)


