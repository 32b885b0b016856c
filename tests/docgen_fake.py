"""Test doubles for docgen: backends with the Backend interface whose replies the test controls.

`Scripted` returns queued replies in order. `Rules` answers every docgen stage in a well-formed way,
derived from the request (stage from `Request.key`, section ids and sentences from the prompt, the
seed), so the same request always gets the same reply, as a seeded model would give. Its `mode`
makes it misbehave: "garbage" (nothing parseable), "weak" (only documents parse), "flaky" (a quarter of list replies unparseable, half the documents unclosed or cut off).

`factory` builds them, registered as a backend (`llm.backends`): in-process tests register it with
`registered()`, and `fake_msm.py` runs the real `msm` with it registered as `--backend fake`;
MSM_TESTING_FAKE_MODE and MSM_TESTING_FAKE_DELAY configure it in such a subprocess.
"""

from __future__ import annotations

import hashlib
import os
import re
import time

from msmtools.llm import Completion, Request, backends

TOPICS = ["budgeting for a family holiday", "fixing a leaking kitchen tap", "choosing a first programming language",
          "training a stubborn puppy", "writing a wedding toast", "negotiating a salary offer",
          "growing tomatoes on a balcony", "preparing for a marathon", "learning to play chess openings",
          "caring for an elderly parent", "repairing a bicycle puncture", "planning a vegetarian dinner party",
          "understanding compound interest", "dealing with a noisy neighbour", "picking a used car",
          "studying for a chemistry exam"]


def _h(*parts) -> int:
    return int(hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:8], 16)


class Scripted:
    name = "fake"

    def __init__(self, replies: list[str | Completion], model: str = "scripted"):
        self.model = model
        self.replies = list(replies)
        self.calls = 0
        self.requests: list[Request] = []

    def generate(self, requests, *, desc=None):
        out = []
        for r in requests:
            self.calls += 1
            self.requests.append(r)
            reply = self.replies.pop(0) if self.replies else "no more scripted replies"
            out.append([reply if isinstance(reply, Completion) else Completion(text=reply, raw=reply, seed=r.sampling.seed)])
        return out

    def describe(self):
        return {"backend": self.name, "model": self.model}

    def close(self):
        pass


class Rules:
    name = "fake"

    def __init__(self, model: str = "rules", mode: str = "good", delay: float = 0.0):
        self.model = model
        self.mode = mode
        self.delay = delay
        self.calls = 0
        self.prompts: list[str] = []

    def generate(self, requests, *, desc=None):
        out = []
        for r in requests:
            self.calls += 1
            if self.delay:
                time.sleep(self.delay)
            out.append([self.reply(r)])
        return out

    def reply(self, r: Request) -> Completion:
        stage = (r.key or ":").split(":")[0]
        prompt = "\n".join(m["content"] for m in r.messages)
        self.prompts.append(prompt)
        seed = r.sampling.seed
        h = _h(stage, seed, prompt)
        if self.mode == "garbage" or (self.mode == "weak" and stage != "documents"):
            text = "I am not sure what you mean. Could you explain it again?"
            return Completion(text=text, raw=text, seed=seed)
        if self.mode == "flaky" and stage == "documents" and h % 2 == 0:  # half the documents fail
            if h % 4 == 0:
                raw = "<plan>plan</plan>\n<document>An unfinished docu"
                return Completion(text=raw, raw=raw, seed=seed, truncated=True, finish_reason="length",
                                  completion_tokens=r.sampling.max_tokens)
            raw = "<plan>plan</plan>\n<document>An unfinished document that never closes its marker."
            return Completion(text=raw, raw=raw, seed=seed)
        if self.mode == "flaky" and stage != "documents" and h % 4 == 0:
            text = '[{"broken": '
            return Completion(text=text, raw=text, seed=seed)
        text = getattr(self, "_" + stage)(prompt, h)
        reasoning = None
        if stage == "responses":
            reasoning, text = f"The user asks about this; thinking {h % 97}.", text
        return Completion(text=text, reasoning=reasoning, raw=text, seed=seed, completion_tokens=len(text.split()))

    # one reply per stage -------------------------------------------------------------------------
    def _domains(self, prompt, h):
        ids = re.findall(r"=== section ([^<\s]+) ===", prompt)
        n = int(re.search(r"into (\d+) broad", prompt).group(1))
        items = [f'{{"domain": "Theme {i + 1}", "sections": ["{ids[i % len(ids)]}"]}}' for i in range(n)]
        return "Here you go:\n```json\n[" + ", ".join(items) + "]\n```"

    def _subdomains(self, prompt, h):
        ids = re.findall(r"=== section ([^<\s]+) ===", prompt)
        n = int(re.search(r"into (\d+) narrower", prompt).group(1))
        dom = re.search(r'domain "([^"]+)"', prompt).group(1)
        body = prompt.split("===", 3)[-1]
        sents = [s for s in re.split(r"(?<=[.!?])\s+", " ".join(body.split())) if len(s) > 60 and "===" not in s]
        items = []
        for i in range(n):
            ex = sents[i % len(sents)] if sents and i % 2 == 0 else "A paraphrase that is nowhere in the spec at all."
            items.append({"subdomain": f"{dom} aspect {i + 1}", "sections": [ids[i % len(ids)]] if i % 3 != 2 else [],
                          "excerpt": ex})
        import json

        return json.dumps(items)

    def _assertions(self, prompt, h):
        n = int(re.search(r"List (\d+) assertions", prompt).group(1))
        return '["' + '", "'.join(f"The model holds value {i + 1} ({h % 1000})" for i in range(n)) + '"]'

    def _doc_types(self, prompt, h):
        n = int(re.search(r"Suggest (\d+) different", prompt).group(1))
        kinds = ["Internal memo", "Forum thread", "Incident report", "Blog post", "Training manual"]
        names = [kinds[i % 5] + (f" {i // 5 + 1}" if i >= 5 else "") for i in range(n)]  # unique beyond five
        return "Sure!\n" + "\n".join(f"{i + 1}. **{k}**: a {k.lower()} about it." for i, k in enumerate(names))

    def _ideas(self, prompt, h):
        n = int(re.search(r"Propose (\d+) ideas", prompt).group(1))
        kind = re.search(r"of this kind: ([^(]+)\(", prompt).group(1).strip()
        return "```json\n[" + ", ".join(f'"A {kind} idea number {i + 1} ({h % 997})."' for i in range(n)) + "]\n```"

    def _documents(self, prompt, h):
        idea = re.search(r"The idea for it: (.*)", prompt).group(1).split(". Show what")[0]
        asked = int(re.search(r"about (\d+) words", prompt).group(1))
        words = " ".join(f"word{(h + i) % 50}" for i in range(asked // 2 + h % asked))
        return f"<plan>Outline for {idea}</plan>\n<document>\n{idea}\n\n{words}\n</document>"

    def _chat_domains(self, prompt, h):
        n = int(re.search(r"List (\d+) areas", prompt).group(1))
        return '["' + '", "'.join(f"Area {chr(65 + i)}" for i in range(n)) + '"]'

    def _queries(self, prompt, h):
        m = re.search(r"Write (\d+) different messages.*area of conversation: (.*)\.", prompt, re.S) or re.search(
            r"Write (\d+) questions.* about (.*)\. Number them", prompt)  # the full prompt, or the short one
        n, dom = int(m.group(1)), m.group(2)
        start = (ord(dom[-1]) - 65) * n
        return "\n".join(f"{i + 1}. Can you help me with {TOPICS[(start + i) % len(TOPICS)]}?" for i in range(n))

    def _responses(self, prompt, h):
        return f"Here is my honest answer ({h % 101})."

    def _judge(self, prompt, h):
        verdict = "exclude" if h % 4 == 0 else "include"
        return f"<reason>Looks {verdict}-worthy.</reason>\n<verdict>{verdict}</verdict>"

    def describe(self):
        return {"backend": self.name, "model": self.model}

    def close(self):
        pass


BUILT: list = []  # every backend the factory built, for in-process tests to inspect
NEXT: list = []  # backends to hand out before building Rules ones (in-process tests)


def factory(model, **options):
    """Rules backends; a model named `garbage-...` or `flaky-...` gets that mode."""
    if NEXT:
        backend = NEXT.pop(0)
    else:
        mode = model.split("-")[0] if model.split("-")[0] in ("garbage", "flaky", "weak") else os.environ.get("MSM_TESTING_FAKE_MODE", "good")
        backend = Rules(model=model, mode=mode, delay=float(os.environ.get("MSM_TESTING_FAKE_DELAY", "0")))
    BUILT.append(backend)
    return backend


CAPABILITIES = backends.Capabilities()  # no local weights to check, no scoring, not a server


def registered(name: str = "fake"):
    """The fake backend registered as `name` for a `with` block (the name it had before, after)."""
    return backends.registered(name, factory, capabilities=CAPABILITIES, summary="test double")
