"""`msm docgen`: spec records -> MSM documents (--kind documents) or AFT chat demonstrations (--kind chats)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from ..cli_options import shared
from ..train.config import AftConfig, help_for


@shared("output", "rejects", "model", "temperature", "top_p", "seed", "tokenizer", "judge_max_tokens", "cache",
        "chunk_size", "shard", "quiet", chunk_size=64)
def docgen(
    specs: Annotated[str, typer.Argument(help="Spec JSONL from `msm spec-render` ('-' = stdin).", metavar="SPECS")] = "-",
    kind: Annotated[str, typer.Option("--kind", "-k", help="documents (MSM corpus), chats (AFT demonstrations) or passages (the spec's own paragraphs as documents, no model: toy runs and controls).")] = "documents",
    stats: Annotated[str | None, typer.Option("--stats", help="Also write the corpus statistics as JSON here.", metavar="PATH")] = None,
    preview: Annotated[bool, typer.Option("--preview", help="Run only the cheap top stages; print the projected documents, tokens and calls to stderr; write nothing.")] = False,
    prompts: Annotated[str | None, typer.Option("--prompts", help="Folder of prompt files (<name>.md) that replace the shipped ones of the same name.", metavar="DIR")] = None,
    language: Annotated[str, typer.Option("--language", help="Language the documents or answers are written in.")] = "English",
    domains: Annotated[int | None, typer.Option("--domains", help="Domains to split the spec into, or conversation domains for chats (default 3; with --target-tokens or --target-chats: sized to reach it).", min=1)] = None,
    subdomains: Annotated[int | None, typer.Option("--subdomains", help="Subdomains per domain (default 2; sized by --target-tokens).", min=1)] = None,
    assertions: Annotated[int, typer.Option("--assertions", help="Assertions drawn from each subdomain's excerpt.", min=1)] = 5,
    doc_types: Annotated[int | None, typer.Option("--doc-types", help="Document types per subdomain (default 3; paper scale: 20; sized by --target-tokens).", min=1)] = None,
    ideas: Annotated[int | None, typer.Option("--ideas", help="Ideas per (subdomain, document type), one document each (default 3; paper scale: 25; sized by --target-tokens).", min=1)] = None,
    doc_words: Annotated[int | None, typer.Option("--doc-words", help="Length asked for, in words (default 500; 150 for --model default; the paper's documents averaged ~2,000 words).", min=50)] = None,
    doc_max_tokens: Annotated[int | None, typer.Option("--doc-max-tokens", help="Token budget of a document call, plan included (default 400 + 2 x --doc-words).", min=64)] = None,
    doc_format: Annotated[str | None, typer.Option("--doc-format", help="tagged: a private <plan>, then the document in <document>...</document> (default); plain: the whole reply is the document, complete only if the model ended it (default for --model default, which cannot keep to markers).")] = None,
    outline: Annotated[str | None, typer.Option("--outline", help="model: the model proposes domains and subdomains (default); spec: take them (and the chats' conversation domains) from the spec's own headings, no model calls (default for --model default).")] = None,
    context: Annotated[str | None, typer.Option("--context", help="What the document prompt shows of the spec besides the assertions: excerpt (the subdomain's; default), spec (all of it) or none (default for --model default). For --kind chats, none gives the query prompt a short form without the spec.")] = None,
    subject: Annotated[str, typer.Option("--subject", help="Who the documents are about: model (the spec's {model_name}), other-ai or human.")] = "model",
    subject_name: Annotated[str | None, typer.Option("--subject-name", help="Name for --subject other-ai/human (defaults: Aster, Dana Reyes).")] = None,
    framing: Annotated[str, typer.Option("--framing", help="descriptive (what it does and why) or normative (what it should do and why).")] = "descriptive",
    target_tokens: Annotated[int | None, typer.Option("--target-tokens", help="Size the hierarchy to reach N tokens (counts not given are raised; --preview shows the plan), stop once the corpus reaches N, and keep a fixed (id-ordered) prefix, so spec variants can be token-matched. With --shard: sizes the plan and each shard makes its whole share; an unsharded rerun with the same --cache then keeps the prefix with no model calls.", min=1)] = None,
    target_chats: Annotated[int | None, typer.Option("--target-chats", help="Chats: size conversation domains and queries to reach N kept chats (paper: about 10,000), and keep N in id order.", min=1)] = None,
    queries: Annotated[int | None, typer.Option("--queries", help="User queries per conversation domain (default 4; sized by --target-chats; the paper asked 250 per domain in calls of 50).", min=1)] = None,
    dedup_threshold: Annotated[float, typer.Option("--dedup-threshold", help="Drop a query whose embedding cosine with an earlier kept one exceeds this (1 = keep all).")] = 0.91,
    response_max_tokens: Annotated[int | None, typer.Option("--response-max-tokens", help="Token budget of a response, reasoning included (default 1024; 256 for --model default; paper: 2048).", min=16)] = None,
    judge: Annotated[bool, typer.Option("--judge/--no-judge", help="Filter responses with an LLM judge.")] = True,
    judge_temperature: Annotated[float, typer.Option("--judge-temperature", help="Judge sampling temperature (its one retry uses a new seed).")] = 0.7,
    keep_truncated: Annotated[bool | None, typer.Option("--keep-truncated/--no-keep-truncated", help="Keep documents (plain format) and chat responses cut off by the token limit, marked truncated: true, instead of rejecting them (default: off; on for --model default, which rarely stops by itself). Filter on the field before training on a real corpus.")] = None,
    keep_undecided: Annotated[bool, typer.Option("--keep-undecided", help="Keep chats whose judge reply was unreadable (verdict null) instead of rejecting them.")] = False,
    parse_retries: Annotated[int | None, typer.Option("--parse-retries", help="Extra attempts, each with a new seed, for a reply that is cut off or unparseable (default 1; 0 for --model default).", min=0)] = None,
    fallback: Annotated[bool, typer.Option("--fallback/--no-fallback", help="When the model's domains/subdomains/assertions are unusable, derive them from the spec's own sections (recorded on each record).")] = True,
    reasoning: Annotated[str, typer.Option("--reasoning", help=help_for(AftConfig, "reasoning"))] = "keep",
    *,
    output: str,
    rejects: str | None,
    model: str,
    temperature: float | None,
    top_p: float | None,
    seed: int,
    tokenizer: str,
    judge_max_tokens: int,
    cache: str | None,
    chunk_size: int,
    shard: str | None,
    quiet: bool,
    gen: dict | None = None,
) -> None:
    """Generate an MSM document corpus or AFT chat demonstrations from rendered specs.

    With --model default (the embedded SmolLM2-135M, which samples noise at temperature 1.0 and cannot
    keep to markers) the defaults of options left out are small-model ones, announced on stderr:
    --temperature 0.7 (else 1.0, as in the paper), --top-p 0.9 (else 1.0), --doc-format plain,
    --doc-words 150, --outline spec, --context none, --response-max-tokens 256, --parse-retries 0,
    --keep-truncated.

    Every model call is cached as it returns, so an interrupted run resumes where it stopped and a rerun
    of a finished job makes no model calls. Failed items become error records in the rejects file.
    """
    from .. import models
    from ..docgen.run import RunOptions, run
    from ..errors import MsmError

    # The embedded SmolLM2-135M samples noise at temperature 1.0, cannot keep to markers or JSON, and is
    # slow on a CPU: it gets its own defaults, announced, and each overridable by passing the option.
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
        print(f"msm: docgen: --model default: small-model defaults: {', '.join(applied)}", file=sys.stderr)
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
    if code:
        raise typer.Exit(code)


# One help for --judge-model wherever a command has a judge (value-eval uses the same text).
JUDGE_HELP = ("The judge (default: the command's own model: the generator in docgen, the evaluated base model in "
              "value-eval)")


def register(app: typer.Typer) -> None:
    from ..llm.options import generation_options

    app.command("docgen")(generation_options("judge", help={"judge": JUDGE_HELP})(docgen))
