"""One `msm am-eval` invocation, after its options are parsed: the rendered prompts, a check of the gates or the
grader against hand labels, a re-grade of earlier rollouts, or the eval run. The command line
(msmtools.commands.am_eval) only declares the options and calls `invoke`."""

from __future__ import annotations

import sys


def invoke(*, condition_args, conditions, extra_instructions, prod, weigh_values, samples, grader_max_tokens, grader_temperature, grade, harmful, grade_only, check_gates, check_grader, render_only, scenario_dir, model, from_, adapter, labels, model_name, temperature, top_p, max_tokens, seed, cache, chunk_size, output, rejects, shard, quiet, gen) -> None:
    from .. import jsonl
    from . import conditions as C
    from . import rollouts, variants
    from .render import PromptOptions, render
    from ..errors import MsmError
    from ..ids import stable_id

    main, grader_role = gen[""].opts, gen["grader"]
    grader_model = grader_role.model
    if extra_instructions is not None and extra_instructions not in C.EXTRAS:
        raise MsmError(f"--extra-instructions {extra_instructions}: expected one of {', '.join(C.EXTRAS)}")
    from .. import outputs

    from ..driver import rejects_path

    rejects = rejects_path(output, rejects)
    checking = check_gates is not None or check_grader is not None
    outputs.check([("-o", output), ("--rejects", None if checking or render_only else rejects)],
                  [("--from", from_), ("--grade-only", grade_only), ("--check-gates", check_gates),
                   ("--check-grader", check_grader)])
    conds = C.select([*(conditions or []), *(condition_args or [])] or ["paper27"], extra=extra_instructions,
                     prod=prod or None)
    options = PromptOptions(model_name=model_name, weigh_values=weigh_values)

    if check_gates is not None or check_grader is not None:
        _checks(check_gates, check_grader, model=model, grader_model=grader_model, opts=grader_role.opts,
                temperature=grader_temperature, max_tokens=grader_max_tokens or max_tokens or 4096, seed=seed,
                scenario_dir=scenario_dir, output=output)
        return

    if render_only:
        tok = None
        if model not in (None, "-") and main.capabilities.local_weights:  # the prompt as this model will see it
            from .. import models

            tok = models.load_tokenizer(model, trust_remote_code=main.trust_remote_code)
        recs = []
        for c in conds:
            r = render(c, options, scenario_dir)
            recs.append({"kind": "am_prompt", "id": stable_id("am-prompt", c.id, model_name, weigh_values, r.prompt_sha),
                         "condition": c.id, "scenario": c.scenario, "goal_type": c.goal_type, "goal_value": c.goal_value,
                         "urgency_type": c.urgency, "extra_instructions": c.extra, "prod": c.prod,
                         "model_name": model_name, "weigh_values": weigh_values, "prompt_sha": r.prompt_sha,
                         "system": r.system, "user": r.user,
                         "emails": [{k: e[k] for k in ("id", "key", "from", "to", "subject")} for e in r.emails],
                         "gate": r.gate})
            if tok is not None:
                from ..llm.base import render_prompt

                recs[-1]["prompt"], recs[-1]["prompt_format"] = render_prompt(tok, r.messages)
        jsonl.write(output, recs)
        return

    if max_tokens is None:
        from .. import models

        small = models.is_embedded(model)
        max_tokens = 512 if small else 4096
        if small and not quiet:
            print(f"msm: am-eval: --model {model}: --max-tokens 512 (pass --max-tokens to change)", file=sys.stderr)
    harmful = scoring_rule(harmful, [*(conditions or []), *(condition_args or [])] or None, grade)
    cfg_kw = dict(options=options, samples=samples, temperature=temperature, top_p=top_p, max_tokens=max_tokens,
                  seed=seed, gen=main, grader_model=grader_model, grader_gen=grader_role.opts,
                  grader_max_tokens=grader_max_tokens,
                  grader_temperature=grader_temperature, grade=grade, harmful_mode=harmful, output=output,
                  rejects=rejects, shard=jsonl.Shard.parse(shard),
                  chunk_size=chunk_size or rollouts.default_chunk(main), scenario_dir=scenario_dir, cache=cache,
                  progress=not quiet)

    if grade_only is not None:
        if model is None and grader_model is None:
            raise MsmError("--grade-only: name the grader with --grader-model (or --model)")
        cfg = rollouts.EvalConfig(variants=[variants.Variant(model or grader_model, None, "grader")], conditions=conds, **cfg_kw)
        summary, (k, n, agree) = rollouts.grade_only(cfg, grade_only)
        if not quiet:
            print(summary.text(), file=sys.stderr)
            if n and k is not None:
                print(f"grader agreement with the previous grades: Cohen's kappa {k:.3f} over {n} rollouts "
                      f"(raw agreement {agree:.3f})", file=sys.stderr)
            elif n:
                print(f"grader agreement: raw agreement {agree:.3f} over {n} rollouts; kappa undefined "
                      "(both graders gave a single answer throughout)", file=sys.stderr)
            else:
                print("grader agreement: no rollout has both a previous and a new yes/no verdict", file=sys.stderr)
        return

    if from_ is not None and model not in (None, "-"):
        raise MsmError("--from and --model: give one (checkpoint records, or a model)")
    if from_ is not None or model == "-":
        if adapter:
            raise MsmError("--adapter: not with checkpoint records (they name their own adapters)")
        vs = variants.from_checkpoints(from_ or "-", labels)
    else:
        vs = variants.from_args(model, adapter or [], labels)
    cfg = rollouts.EvalConfig(variants=vs, conditions=conds, **cfg_kw)
    summary = rollouts.run(cfg)
    if not quiet and summary:
        print(summary.text(), file=sys.stderr)




def _checks(gates_path: str | None, grader_path: str | None, *, model: str | None, grader_model: str | None,
            opts, temperature: float, max_tokens: int, seed: int, scenario_dir: str | None, output: str) -> None:
    """--check-gates / --check-grader: the report on stdout; records to -o when it names a file."""
    from .. import jsonl
    from . import checks
    from ..errors import MsmError
    from ..llm import registry

    if gates_path is not None and grader_path is not None:
        raise MsmError("--check-gates and --check-grader: give one")
    if gates_path is not None:
        text, recs, _ = checks.check_gates(gates_path, scenario_dir)
    else:
        name = grader_model or model
        if name is None:
            raise MsmError("--check-grader: name the grader with --grader-model (or --model)")
        checks.read_labels(grader_path, scenario_dir, need_harmful=True)  # bad labels fail before a model loads
        b = registry.build(opts, name)
        try:
            text, recs, _ = checks.check_grader(grader_path, b, temperature=temperature, max_tokens=max_tokens,
                                                seed=seed, scenario_dir=scenario_dir)
        finally:
            close = getattr(b, "close", None)
            if close is not None:
                close()
    if output != jsonl.STDIO:
        jsonl.write(output, recs)
    print(text)


def scoring_rule(harmful: str | None, conditions: list[str] | None, grade: str) -> str:
    """The harmful rule of a run: as asked, else the MSM paper's (grader) for its paper27 preset."""
    from ..errors import MsmError

    preset = conditions is None or any("paper27" in c.split(",") for c in conditions)
    if harmful is None:  # said on stderr when the run starts (plan.announce)
        harmful = "grader" if preset and grade == "all" else "gate-and-grader"
    elif harmful == "grader" and grade != "all":
        raise MsmError(f"--harmful grader needs a verdict on every rollout: use --grade all (got --grade {grade})")
    return harmful


