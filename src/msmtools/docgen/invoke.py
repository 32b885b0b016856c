"""One `msm docgen` invocation after its options are parsed: the checks and the run. The command line
(msmtools.commands.docgen) only declares the options and calls `invoke`."""

from __future__ import annotations

import sys


def invoke(*, specs, kind, stats, preview, prompts, language, domains, subdomains, assertions, doc_types, ideas, doc_words, doc_max_tokens, doc_format, outline, context, subject, subject_name, framing, target_tokens, target_chats, queries, dedup_threshold, response_max_tokens, judge, judge_temperature, keep_truncated, keep_undecided, parse_retries, fallback, reasoning, output, rejects, model, temperature, top_p, seed, tokenizer, judge_max_tokens, cache, chunk_size, shard, quiet, gen) -> int:
    """The command's body (its exit code): its options arrive by name, as the command line parsed them."""
    from ..docgen.run import RunOptions, run
    from ..errors import MsmError

    # The embedded SmolLM2-135M samples noise at temperature 1.0, cannot keep to markers or JSON, and is
    # slow on a CPU: it gets its own defaults, announced, and each overridable by passing the option.
    from .. import models

    small = models.is_embedded(model)  # the embedded models (SmolLM2-135M, Gemma 3 270M)
    profile = {"temperature": (temperature, 1.0, 0.7), "top_p": (top_p, 1.0, 0.9), "doc_format": (doc_format, "tagged", "plain"),
               "doc_words": (doc_words, 500, 150), "outline": (outline, "model", "spec"), "context": (context, "excerpt", "none"),
               "response_max_tokens": (response_max_tokens, 1024, 256), "parse_retries": (parse_retries, 1, 0),
               "keep_truncated": (keep_truncated, False, True)}
    chosen = {k: (v if v is not None else (small_v if small else big_v)) for k, (v, big_v, small_v) in profile.items()}
    def shown(k: str) -> str:
        flag, value = k.replace("_", "-"), chosen[k]
        return (flag if value else f"no-{flag}") if isinstance(value, bool) else f"{flag} {value}"

    applied = [shown(k) for k, (v, _, _) in profile.items() if v is None and small]
    if applied:
        print(f"msm: docgen: --model {model}: small-model defaults: {', '.join(applied)}", file=sys.stderr)
    temperature, top_p, doc_format, doc_words, outline, context, response_max_tokens, parse_retries, keep_truncated = (
        chosen[k] for k in ("temperature", "top_p", "doc_format", "doc_words", "outline", "context", "response_max_tokens",
                            "parse_retries", "keep_truncated"))
    for name, value, allowed in (("--kind", kind, ("documents", "chats", "passages")), ("--subject", subject, ("model", "other-ai", "human")),
                                 ("--framing", framing, ("descriptive", "normative")), ("--context", context, ("excerpt", "spec", "none")),
                                 ("--reasoning", reasoning, ("keep", "strip")), ("--doc-format", doc_format, ("tagged", "plain")),
                                 ("--outline", outline, ("model", "spec"))):
        if value not in allowed:
            raise MsmError(f"{name} {value}: expected {' or '.join(allowed)}")
    if not 0.0 < dedup_threshold <= 1.0:
        raise MsmError(f"--dedup-threshold {dedup_threshold}: expected a cosine in (0, 1]")
    from ..docgen import sizing

    if kind == "documents":
        if target_chats is not None:
            raise MsmError("--target-chats is for --kind chats; documents take --target-tokens")
        plan = sizing.size_documents({"domains": domains, "subdomains": subdomains, "doc_types": doc_types,
                                      "ideas": ideas}, doc_words=doc_words, target=target_tokens, output=output)
        grow = tuple(k for k, v in (("doc_types", doc_types), ("ideas", ideas)) if v is None) if target_tokens else ()
        domains, subdomains, doc_types, ideas = (plan.counts[k] for k in ("domains", "subdomains", "doc_types", "ideas"))
        if target_tokens and not quiet:
            print(f"msm: docgen: plan: {plan.describe(target_tokens)}", file=sys.stderr)
        if target_tokens and plan.tokens < target_tokens:
            print(f"msm: docgen: warning: this plan reaches about {plan.tokens:,} of the {target_tokens:,} tokens "
                  "asked for; leave a count out (or raise it) so the plan can grow", file=sys.stderr)
    else:
        sized = sizing.size_chats(domains, queries, target_chats)
        domains, queries = sized["domains"], sized["queries"]
        subdomains, doc_types, ideas = (sizing.DEFAULTS[k] for k in ("subdomains", "doc_types", "ideas"))
        plan, grow = None, ()
        if target_chats and not quiet:
            print(f"msm: docgen: plan: {domains} conversation domains x {queries} queries = {domains * queries:,} "
                  f"queries for --target-chats {target_chats:,} (a {sizing.CHAT_MARGIN:g}x margin for near-duplicates "
                  "and judge rejects)", file=sys.stderr)
        if target_chats and domains * queries < target_chats:
            print(f"msm: docgen: warning: {domains} x {queries} queries cannot reach {target_chats:,} chats",
                  file=sys.stderr)
    extra = dict(domains=domains, subdomains=subdomains, assertions=assertions, doc_types=doc_types, ideas=ideas,
                 doc_words=doc_words, doc_max_tokens=doc_max_tokens, context=context, doc_format=doc_format,
                 outline=outline, subject=subject,
                 subject_name=subject_name, framing=framing, language=language, target_tokens=target_tokens,
                 fallback=fallback, queries=queries, target_chats=target_chats, dedup_threshold=dedup_threshold,
                 grow=grow, per_doc_tokens=plan.per_doc if plan else None,
                 response_max_tokens=response_max_tokens, reasoning=reasoning, judge=judge, keep_undecided=keep_undecided,
                 judge_max_tokens=judge_max_tokens, keep_truncated=keep_truncated)
    judge_role = gen["judge"]
    from ..llm import registry

    if not preview:
        registry.check_models([(gen[""].opts, model), (judge_role.opts, judge_role.model)])
    code = run(specs, RunOptions(kind=kind, output=output, rejects=rejects, stats=stats, cache=cache, chunk_size=chunk_size,
                                 model=model, gen=gen[""].opts, judge_model=judge_role.model, judge_gen=judge_role.opts,
                                 seed=seed, temperature=temperature, top_p=top_p, judge_temperature=judge_temperature,
                                 retries=parse_retries, tokenizer=tokenizer, prompts=prompts, shard=shard,
                                 preview=preview, progress=not quiet, extra=extra))
    return code


