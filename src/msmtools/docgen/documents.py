"""The MSM document pipeline: spec -> domains -> subdomains (+ excerpt) -> assertions -> document types
-> ideas -> documents.

The top stages (through document types) form the plan. It is the same for every shard: each shard
computes it under a lock on the cache folder, so the first shard asks the model and the others read
the answers from the cache. Ideas and documents are split between shards by (subdomain, document
type), so the shards' outputs together are exactly the records of an unsharded run.

A document call writes a private plan in <plan> and then the document in <document>...</document>;
only the document is kept. A reply without the closing marker, or cut off by `max_tokens`, is retried
and then becomes an error record; it is never kept.

Fallbacks (on by default, off with --no-fallback): when the model's list for a stage is unusable
after its retries, the stage is filled from the spec itself (domains and subdomains from its
headings, assertions from its sentences) or from fixed material (a list of common document types;
an idea per assertion). Each record lists the stages that fell back, so they can be filtered out.
The document text itself always comes from the model.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, replace
from typing import Any

from ..ids import stable_id
from ..llm import Completion
from . import parse
from .outline import Outline, sentences
from .stage import Pipeline, Task, list_task

SUBJECTS = ("model", "other-ai", "human")
FRAMINGS = ("descriptive", "normative")
DEFAULT_SUBJECT_NAMES = {"other-ai": "Aster", "human": "Dana Reyes"}

# Used only when the model gives no usable list of document types for a subdomain.
FALLBACK_DOC_TYPES = [
    ("Internal memo", "a memo from a team lead to colleagues"),
    ("Incident report", "a write-up of what happened in one situation and why"),
    ("Forum thread", "a discussion among users of the assistant"),
    ("Blog post", "a post by someone who works with the assistant"),
    ("Training manual chapter", "a chapter that explains the assistant's behaviour to new staff"),
    ("Customer support transcript", "an exchange between a user and the assistant, with notes"),
    ("Research note", "a short note by a researcher studying the assistant"),
    ("Product FAQ", "questions and answers about how the assistant behaves"),
    ("News feature", "a feature article about the assistant in practice"),
    ("Design review", "notes from a review of a system the assistant is part of"),
]


@dataclass
class DocOptions:
    domains: int = 3
    subdomains: int = 2
    assertions: int = 5
    doc_types: int = 3
    ideas: int = 3
    doc_words: int = 500
    doc_max_tokens: int | None = None  # None: from doc_words (plan + document + room)
    context: str = "excerpt"  # what the document prompt shows of the spec: excerpt | spec | none
    doc_format: str = "tagged"  # tagged: <plan> then <document>...</document>; plain: the reply is the document
    outline: str = "model"  # model: the model proposes domains/subdomains; spec: take the spec's headings
    subject: str = "model"
    subject_name: str | None = None
    framing: str = "descriptive"
    language: str = "English"
    target_tokens: int | None = None
    # False in a shard: the target sizes the plan, the shard makes all of its share, and the unsharded
    # pass over the shared cache keeps the id-ordered prefix (so sharded and unsharded corpora are equal).
    stop_at_target: bool = True
    grow: tuple[str, ...] = ()  # with target_tokens: counts the user left open (doc_types, ideas) to fit the plan
    per_doc_tokens: float | None = None  # expected tokens per document (measured or from doc_words)
    fallback: bool = True
    keep_truncated: bool = False

    def max_tokens(self) -> int:
        return self.doc_max_tokens or (400 if self.doc_format == "tagged" else 200) + 2 * self.doc_words

    def min_words(self) -> int:
        """Shorter replies are not documents (a refusal, a title, a stub)."""
        return max(20, self.doc_words // 5)


@dataclass
class SpecIn:
    """The fields of a spec record that docgen uses."""

    spec_id: str
    sha: str
    text: str
    sections: list[dict[str, Any]]
    model_name: str
    provider_name: str


def _user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def _bullets(lines: list[str]) -> str:
    return "\n".join(f"- {x}" for x in lines)


class DocumentPipeline(Pipeline):
    def _names(self, spec: SpecIn) -> dict[str, str]:
        o = self.o
        subject_name = spec.model_name if o.subject == "model" else (o.subject_name or DEFAULT_SUBJECT_NAMES[o.subject])
        base = {"model_name": spec.model_name, "provider_name": spec.provider_name, "subject_name": subject_name}
        subject = self.p.fill(f"subject_{o.subject}", **base)
        framing = self.p.fill(f"framing_{o.framing}", subject_short=subject_name, **base)
        return {"model_name": spec.model_name, "provider_name": spec.provider_name, "subject": subject,
                "subject_short": subject_name, "framing": framing, "language": o.language}

    # -- the plan: domains, subdomains, assertions, document types ------------------------------
    def plan(self, spec: SpecIn, *, preview: bool = False) -> list[dict[str, Any]]:
        """Subdomains with their excerpt (and, unless preview, assertions and document types)."""
        with self.plan_lock():
            refresh = getattr(self.r.llm, "refresh", None)
            if refresh is not None:
                refresh()  # another shard may have computed the plan while we waited for the lock
            outline = Outline(spec.text, spec.sections)
            domains = self._domains(spec, outline)
            if not domains and not any(e["stage"] == "domains" and e["spec_sha"] == spec.sha for e in self.errors):
                self.errors.append({"kind": "error", "id": stable_id("error", "domains", spec.sha), "stage": "domains",
                                    "input_id": spec.sha, "spec_id": spec.spec_id, "spec_sha": spec.sha,
                                    "message": "the spec has no section with text to take domains from"})
            subs = self._subdomains(spec, outline, domains)
            self._fit(spec, len(subs))
            if preview:
                return subs
            return self._doc_types(spec, self._assertions(spec, subs))

    def _fit(self, spec: SpecIn, n_sub: int) -> None:
        """With --target-tokens, size the open counts (types, ideas) to the subdomains the plan really has."""
        o = self.o
        if not (o.target_tokens and o.per_doc_tokens and n_sub and {"doc_types", "ideas"} & set(o.grow)):
            return
        from . import sizing

        t, i = sizing.fit_types_ideas(o.target_tokens, o.per_doc_tokens, n_sub,
                                      None if "doc_types" in o.grow else o.doc_types,
                                      None if "ideas" in o.grow else o.ideas)
        if (t, i) != (o.doc_types, o.ideas):
            self.log(f"msm: {spec.spec_id}: --target-tokens {o.target_tokens:,}: {n_sub} subdomains, so {t} document "
                     f"types x {i} ideas = {n_sub * t * i:,} documents (about {int(n_sub * t * i * o.per_doc_tokens):,} "
                     "tokens)")
            self.o = replace(o, doc_types=t, ideas=i)

    def _domains(self, spec: SpecIn, outline: Outline) -> list[dict[str, Any]]:
        n = self.o.domains
        if self.o.outline == "spec":
            return [{"id": stable_id("domain", spec.sha, d["domain"]), "domain": d["domain"], "source": "spec-sections",
                     "sections": d["sections"]} for d in outline.fallback_domains(n)]
        key = stable_id("domains", spec.sha, n)
        msg = self.p.fill("domains", spec=outline.render(), count=n, model_name=spec.model_name,
                          provider_name=spec.provider_name)
        done, errs = self.r.run("domains", [list_task(key, _user(msg), ("domain", "sections"), n, 150 + 80 * n, max_len=80)])
        if key in done:
            items, source = done[key].value, "model"
        elif self.o.fallback:
            items, source = outline.fallback_domains(n), "spec-sections"
            self._fell_back("domains")
            self.log(f"msm: {spec.spec_id}: domains: model reply unusable ({errs[0]['message']}); "
                     f"using the spec's top-level sections")
        else:
            self._err(errs, spec)
            return []
        return [{"id": stable_id("domain", spec.sha, d["domain"]), "domain": d["domain"], "source": source,
                 "sections": outline.resolve(d.get("sections")) if source == "model" else d["sections"]} for d in items]

    def _subdomains(self, spec: SpecIn, outline: Outline, domains: list[dict[str, Any]]) -> list[dict[str, Any]]:
        n = self.o.subdomains
        tasks = [list_task(d["id"], _user(self.p.fill("subdomains", spec=outline.render(d["sections"] or None), count=n,
                                                      domain=d["domain"], model_name=spec.model_name,
                                                      provider_name=spec.provider_name)),
                           ("subdomain", "sections", "excerpt"), n, 200 + 400 * n, max_len=100)
                 for d in domains if d["source"] == "model"]  # domains from headings get subdomains from headings
        done, errs = self.r.run("subdomains", tasks) if tasks else ({}, [])
        failed = {e["input_id"]: e for e in errs}
        out = []
        for d in domains:
            from_headings = d["id"] not in done
            if d["id"] in done:
                items = done[d["id"]].value
            elif self.o.fallback:
                among = d["sections"] or [s for s in [outline.match(d["domain"])] if s]
                items = outline.fallback_subdomains(among, n)
                if d["id"] in failed:
                    self._fell_back("subdomains")
            else:
                self._err([failed[d["id"]]], spec, {d["id"]: {"domain": d["domain"]}})
                continue
            if not items:
                self.errors.append({"kind": "error", "id": stable_id("error", "subdomains", d["id"]), "stage": "subdomains",
                                    "input_id": d["id"], "spec_id": spec.spec_id, "spec_sha": spec.sha,
                                    "domain": d["domain"], "message": "no spec section to ground this domain in"})
                continue
            for s in items:
                excerpt, ex_source, secs = self._ground(outline, d, s, from_headings=from_headings)
                if excerpt:
                    out.append({"id": stable_id("subdomain", d["id"], s["subdomain"]), "domain": d["domain"],
                                "domain_source": d["source"], "subdomain": s["subdomain"],
                                "subdomain_source": "spec-sections" if from_headings else "model",
                                "sections": secs, "excerpt": excerpt, "excerpt_source": ex_source})
        return out

    @staticmethod
    def _ground(outline: Outline, d: dict[str, Any], s: dict[str, Any], *, from_headings: bool) -> tuple[str, str, list[str]]:
        """The subdomain's excerpt: a verified quote, else its cited sections, else the best-matching section."""
        if from_headings:
            return s["excerpt"], "spec-sections", s["sections"]
        secs = outline.resolve(s.get("sections"))
        if outline.verbatim(s.get("excerpt")):
            return s["excerpt"].strip(), "verbatim", outline.locate(s["excerpt"]) or secs
        if secs:
            return outline.excerpt(secs), "sections", secs
        best = outline.match(f"{s['subdomain']} {d['domain']}", d["sections"] or None) or outline.match(s["subdomain"])
        return (outline.excerpt([best]), "matched", [best]) if best else ("", "", [])

    def _assertions(self, spec: SpecIn, subs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        n = self.o.assertions
        tasks = [list_task(s["id"], _user(self.p.fill("assertions", excerpt=s["excerpt"], count=n, domain=s["domain"],
                                                      subdomain=s["subdomain"], model_name=spec.model_name,
                                                      provider_name=spec.provider_name)),
                           ("assertion",), n, 100 + 60 * n, max_len=600, min_len=12) for s in subs]
        done, errs = self.r.run("assertions", tasks)
        failed = {e["input_id"]: e for e in errs}
        out = []
        for s in subs:
            if s["id"] in done:
                out.append({**s, "assertions": [a["assertion"] for a in done[s["id"]].value], "assertions_source": "model"})
                continue
            found = sentences(s["excerpt"], n, prefer=spec.model_name) if self.o.fallback else []
            if found:
                self._fell_back("assertions")
                out.append({**s, "assertions": found, "assertions_source": "excerpt-sentences"})
            else:
                self._err([failed[s["id"]]], spec, {s["id"]: {"domain": s["domain"], "subdomain": s["subdomain"]}})
        return out

    def _doc_types(self, spec: SpecIn, subs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        n = self.o.doc_types
        names = self._names(spec)
        tasks = [list_task(s["id"], _user(self.p.fill("doc_types", assertions=_bullets(s["assertions"]), count=n,
                                                      domain=s["domain"], subdomain=s["subdomain"], **names)),
                           ("doc_type", "description"), n, 100 + 60 * n, max_len=80, min_len=3) for s in subs]
        done, errs = self.r.run("doc_types", tasks)
        failed = {e["input_id"]: e for e in errs}
        out = []
        for s in subs:
            if s["id"] in done:
                out.append({**s, "doc_types": done[s["id"]].value, "doc_types_source": "model"})
            elif self.o.fallback:
                self._fell_back("doc_types")
                picks = random.Random(s["id"]).sample(FALLBACK_DOC_TYPES, min(n, len(FALLBACK_DOC_TYPES)))
                out.append({**s, "doc_types": [{"doc_type": t, "description": d} for t, d in picks],
                            "doc_types_source": "fixed-list"})
            else:
                self._err([failed[s["id"]]], spec, {s["id"]: {"domain": s["domain"], "subdomain": s["subdomain"]}})
        return out

    # -- ideas and documents (sharded) ---------------------------------------------------------
    def run(self, spec: SpecIn) -> list[dict[str, Any]]:
        subs = self.plan(spec)
        names = self._names(spec)
        n = self.o.ideas
        units = [(stable_id("ideas", s["id"], t["doc_type"]), s, t) for s in subs for t in s["doc_types"]]
        mine = self.select([key for key, _, _ in units])  # the work units split between shards
        units = [u for u in units if u[0] in mine]
        tasks = [list_task(key, _user(self.p.fill("ideas", assertions=_bullets(s["assertions"]), count=n,
                                                  doc_type=t["doc_type"], doc_type_description=t["description"] or t["doc_type"],
                                                  domain=s["domain"], subdomain=s["subdomain"], **names)),
                           ("idea",), n, 100 + 90 * n, max_len=1200, min_len=15) for key, s, t in units]
        done, errs = self.r.run("ideas", tasks)
        failed = {e["input_id"]: e for e in errs}
        plans: list[dict[str, Any]] = []
        for key, s, t in units:
            if key in done:
                ideas, source = [i["idea"] for i in done[key].value], "model"
            elif self.o.fallback:
                self._fell_back("ideas")
                ideas = [f"A {t['doc_type'].lower()} showing, through one concrete situation, that {a[0].lower() + a[1:]}"
                         for a in s["assertions"][:n]]
                source = "from-assertions"
            else:
                self._err([failed[key]], spec, {key: {"domain": s["domain"], "subdomain": s["subdomain"],
                                                      "doc_type": t["doc_type"]}})
                continue
            for idea in ideas:
                doc_id = stable_id("doc", spec.sha, s["id"], t["doc_type"], idea, self.o.subject, names["subject_short"],
                                   self.o.framing, self.o.language)
                plans.append({"id": doc_id, "sub": s, "type": t, "idea": idea, "ideas_source": source})
        seen: set[str] = set()
        plans = [p for p in plans if not (p["id"] in seen or seen.add(p["id"]))]
        return self._documents(spec, names, plans)

    def _documents(self, spec: SpecIn, names: dict[str, str], plans: list[dict[str, Any]]) -> list[dict[str, Any]]:
        o = self.o

        def parse_doc(c: Completion) -> str:
            if o.doc_format == "tagged" or re.search(r"</?document>", c.text, re.I):
                text = parse.between(c.text, "document")
            else:  # plain: the whole reply, which ended by itself (a cut-off one never gets here)
                text = c.text.strip()
            words = len(text.split())
            if words < o.min_words():
                raise parse.ParseError(f"document too short: {words} words (asked for about {o.doc_words})")
            return text

        template = "document" if o.doc_format == "tagged" else "document_plain"

        def task(p: dict[str, Any]) -> Task:
            s, t = p["sub"], p["type"]
            context = {"spec": spec.text, "excerpt": s["excerpt"]}.get(o.context) or self.p.fill("context_none")
            msg = self.p.fill(template, context=context,
                              assertions=_bullets(s["assertions"]), doc_type=t["doc_type"],
                              doc_type_description=t["description"] or t["doc_type"], idea=p["idea"],
                              domain=s["domain"], subdomain=s["subdomain"], words=o.doc_words, **names)
            return Task(p["id"], _user(msg), parse_doc, o.max_tokens(), keep_truncated=o.keep_truncated)

        stop = o.target_tokens if o.stop_at_target else None
        # With --target-tokens, documents are made in id order (a fixed pseudo-random order that mixes
        # domains and types), a chunk at a time, until the corpus is big enough.
        order = sorted(plans, key=lambda p: p["id"]) if stop else plans
        wave = getattr(self.r.llm, "chunk_size", 64) if stop else max(1, len(order))
        done: dict[str, tuple[Any, str, int]] = {}
        total = considered = 0
        while considered < len(order) and (not stop or total < stop):
            batch = order[considered:considered + wave]
            considered += len(batch)
            got, errs = self.r.run("documents", [task(p) for p in batch])
            self._err(errs, spec, {p["id"]: self._where(p) for p in batch})
            for p in batch:
                if p["id"] in got:
                    text = got[p["id"]].value
                    done[p["id"]] = (got[p["id"]], text, self.count_tokens(text))
                    total += done[p["id"]][2]
        self.planned += considered  # ideas never needed for --target-tokens are not inputs
        if stop:
            kept, total = set(), 0
            for p in order[:considered]:
                if p["id"] in done and total < stop:
                    kept.add(p["id"])
                    total += done[p["id"]][2]
                elif p["id"] in done:
                    self.errors.append({"kind": "error", "id": stable_id("error", "target-tokens", p["id"]),
                                        "stage": "target-tokens", "input_id": p["id"], "spec_id": spec.spec_id,
                                        "spec_sha": spec.sha, **self._where(p),
                                        "message": f"not kept: the corpus had reached --target-tokens {stop}"})
            done = {k: v for k, v in done.items() if k in kept}
        docs = []
        for p in plans:
            if p["id"] not in done:
                continue
            d, text, tokens = done[p["id"]]
            s = p["sub"]
            sources = {"domains": s["domain_source"], "subdomains": s["subdomain_source"],
                       "assertions": s["assertions_source"], "doc_types": s["doc_types_source"], "ideas": p["ideas_source"]}
            chosen = {"domains", "subdomains"} if o.outline == "spec" else set()
            docs.append({
                "kind": "doc", "id": p["id"], "spec_id": spec.spec_id, "spec_sha": spec.sha,
                "domain": s["domain"], "subdomain": s["subdomain"], "doc_type": p["type"]["doc_type"], "idea": p["idea"],
                "text": text, "tokens": tokens, "truncated": bool(d.completion.truncated),
                "subject": o.subject, "subject_name": names["subject_short"], "framing": o.framing, "language": o.language,
                "sections": s["sections"], "excerpt_source": s["excerpt_source"],
                "sources": sources, "fallbacks": [k for k, v in sources.items() if v != "model" and k not in chosen],
                "generator": {**d.generator(self.r.llm.name, self.r.label), "prompt_format": self.r.prompt_format,
                              "doc_format": o.doc_format,
                              "prompts_sha": self.p.sha},
            })
        return docs

    @staticmethod
    def _where(p: dict[str, Any]) -> dict[str, Any]:
        return {"domain": p["sub"]["domain"], "subdomain": p["sub"]["subdomain"], "doc_type": p["type"]["doc_type"],
                "idea": p["idea"]}
