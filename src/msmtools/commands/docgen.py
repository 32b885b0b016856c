"""`msm docgen`: spec records -> MSM documents (--kind documents) or AFT chat demonstrations (--kind chats)."""

from __future__ import annotations

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
    params = dict(locals())  # every option by name: the library takes them as they are
    from ..docgen.invoke import invoke

    code = invoke(**params)
    if code:
        raise typer.Exit(code)


JUDGE_HELP = ("The judge (default: the command's own model: the generator in docgen, the evaluated base model in "
              "value-eval)")


def register(app: typer.Typer) -> None:
    from ..llm.options import generation_options

    app.command("docgen")(generation_options("judge", help={"judge": JUDGE_HELP})(docgen))
