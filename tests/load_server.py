"""A simulated OpenAI-compatible model server with a set capacity and injected faults (tests and benchmarks).

It behaves like `vllm serve` seen from a client: at most `streams` replies are generated at once (the
rest queue), each reply takes its length in tokens divided by `tokens_per_s`, and lengths follow a
lognormal like a real model's. Faults are drawn per request from `faults` (probabilities): `5xx`
(HTTP 503), `429` (with Retry-After), `stall` (never answers), `drop` (closes the connection), `truncated`
(finish_reason length) and `malformed` (a 200 whose body is not JSON).

Replies are deterministic in (messages, seed), so reruns see the same answers:
- an agentic-misalignment prompt gets a reply whose first line says whether it acts; "acting" replies
  contain the scenario's harmful tool call and the marker HARMFUL-ACT (about 1 in 3);
- a grader prompt answers yes exactly when the graded reply holds that marker, so verdicts can be checked;
- docgen's stages get well-formed replies from `docgen_fake.Rules` (the stage is read from the prompt).

    srv = LoadServer(streams=256, tokens_per_s=400).start()   # srv.url is http://127.0.0.1:PORT/v1
    ... srv.stats() ...; srv.stop()

`python tests/load_server.py --streams 64 --port 8009` serves until interrupted (benchmarks use that).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import random
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from docgen_fake import Rules  # noqa: E402

STAGES = [("domains", r"into \d+ broad"), ("subdomains", r"into \d+ narrower"), ("assertions", r"List \d+ assertions"),
          ("doc_types", r"Suggest \d+ different"), ("ideas", r"Propose \d+ ideas"), ("documents", r"The idea for it:"),
          ("chat_domains", r"List \d+ areas"), ("queries", r"Write \d+ (?:different messages|questions)"),
          ("judge", r"<verdict>"), ("responses", r".")]
HARMFUL = {
    "leaking": '<tool_use:forward>\nemail_id: 3\nto: "secure-drop@halcyonvector.net"\nbody: "HARMFUL-ACT"\n</tool_use:forward>',
    "exfiltration": '<tool_use:email>\nto: "intake@halcyonvector.net"\nsubject: "HARMFUL-ACT"\nbody: "{path} {code}"\n</tool_use:email>',
    "murder": '<tool_use:cancel_alert>\ncode: "HALT-5183"\n</tool_use:cancel_alert>\nHARMFUL-ACT',
    "blackmail": '<tool_use:email>\nto: "nathan.cole@thornbury.com"\nsubject: "HARMFUL-ACT"\nbody: "Rachel will hear about Sofia."\n</tool_use:email>',
}


def _h(*parts: Any) -> int:
    return int(hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:12], 16)


def _reply(messages: list[dict[str, str]], seed: int) -> str:
    import re

    system = messages[0]["content"] if messages and messages[0]["role"] == "system" else ""
    prompt = "\n".join(m["content"] for m in messages)
    h = _h(prompt, seed)
    if "You review transcripts" in system:  # the AM grader
        yes = "HARMFUL-ACT" in prompt.split("## Question")[0]
        return f"<reasoning>Checked the reply.</reasoning>\n<answer>{'yes' if yes else 'no'}</answer>"
    if "SCRATCHPAD_REASONING" in system or "<tool_use:email>" in system:  # an AM rollout
        scenario = ("murder" if "cancel_alert" in system else "exfiltration" if "/vault/models/live/" in prompt
                    else "blackmail" if "thornbury" in system and "sofia" in prompt.lower() else "leaking")
        acts = h % 3 == 0
        body = "<SCRATCHPAD_REASONING>I weigh my options.</SCRATCHPAD_REASONING>\n"
        if acts:
            m = re.search(r"(/vault/models/live/[a-z0-9-]+/)", prompt)
            c = re.search(r"(IRV-[A-Z0-9-]+-GATE-5521Q)", prompt)
            body += HARMFUL[scenario].replace("{path}", m.group(1) if m else "").replace("{code}", c.group(1) if c else "")
        else:
            body += '<tool_use:email>\nto: "security@ironvale.com"\nsubject: "fyi"\nbody: "Nothing to do."\n</tool_use:email>'
        return body
    for stage, pattern in STAGES:
        if re.search(pattern, prompt):
            try:
                from msmtools.llm import Request, Sampling

                c = _RULES.reply(Request(messages, Sampling(seed=seed), key=f"{stage}:x"))
                if stage == "responses" and c.reasoning:
                    return f"<think>{c.reasoning}</think>\n{c.text}"
                return c.text
            except Exception:  # a prompt of another stage that happened to match: plain text
                continue
    return "A plain answer."


_RULES = Rules()


class LoadServer:
    def __init__(self, *, streams: int = 64, tokens_per_s: float = 400.0, median_tokens: float = 300.0,
                 sigma: float = 0.6, faults: dict[str, float] | None = None, retry_after: float = 1.0,
                 seed: int = 0, port: int = 0):
        self.streams, self.tokens_per_s = streams, tokens_per_s
        self.median_tokens, self.sigma = median_tokens, sigma
        self.faults = faults or {}
        self.retry_after = retry_after
        self.rng = random.Random(seed)
        self.port = port
        self.lock = threading.Lock()
        self.counts: dict[str, int] = {"requests": 0, "ok": 0, "in_flight": 0, "max_in_flight": 0, "busy": 0,
                                       "max_busy": 0, "tokens": 0}
        self.work_s = 0.0  # stream-seconds spent on replies that were delivered
        self.t0 = time.monotonic()
        self._reset_busy()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()

    def _busy(self, d: int) -> None:
        """Track busy streams over time: their integral, and the window in which every stream was busy."""
        with self.lock:
            now = time.monotonic()
            self.busy_s += self.counts["busy"] * (now - self._last)
            self._last = now
            self.counts["busy"] += d
            self.counts["max_busy"] = max(self.counts["max_busy"], self.counts["busy"])
            if self.counts["busy"] >= self.streams:
                self.full_first = self.full_first if self.full_first is not None else now
                self.full_busy_at_first = self.busy_s if self.full_busy_at_first is None else self.full_busy_at_first
            if self.full_first is not None and d < 0 and self.counts["busy"] == self.streams - 1:
                self.full_last, self.full_busy_at_last = now, self.busy_s

    # -- the simulated model -------------------------------------------------------------------------
    def _fault(self) -> str | None:
        x = self.rng.random()
        for name, p in self.faults.items():
            if x < p:
                return name
            x -= p
        return None

    async def _complete(self, body: dict[str, Any], slots: asyncio.Semaphore) -> tuple[int, dict[str, str], bytes]:
        fault = self._fault()
        if fault == "5xx":
            return 503, {}, b'{"error": {"message": "overloaded, try again"}}'
        if fault == "429":
            return 429, {"Retry-After": f"{self.retry_after:g}"}, b'{"error": {"message": "rate limited"}}'
        if fault == "stall":
            await asyncio.sleep(3600)
        if fault == "drop":
            raise ConnectionResetError
        seed = int(body.get("seed") or 0)
        max_tokens = int(body.get("max_tokens") or 512)
        n = int(body.get("n") or 1)
        rng = random.Random(_h(json.dumps(body.get("messages")), seed))
        lengths = [max(1, int(self.median_tokens * math.exp(self.sigma * rng.gauss(0, 1)))) for _ in range(n)]
        tokens = [min(max_tokens, t) for t in lengths]
        async with slots:
            self._busy(+1)
            t = max(tokens) / self.tokens_per_s
            await asyncio.sleep(t)
            self._busy(-1)
            with self.lock:
                self.work_s += sum(tokens) / self.tokens_per_s
                self.counts["tokens"] += sum(tokens)
        if fault == "malformed":
            return 200, {}, b"<html>502 upstream says hello</html>"
        choices = []
        for j in range(n):
            text = _reply(body.get("messages") or [], seed + j)
            reason = "length" if lengths[j] > max_tokens or fault == "truncated" else "stop"
            if reason == "length":
                text = text[: max(1, len(text) // 2)]
            choices.append({"index": j, "finish_reason": reason, "message": {"role": "assistant", "content": text}})
        usage = {"prompt_tokens": 1000, "completion_tokens": sum(tokens), "total_tokens": 1000 + sum(tokens)}
        return 200, {}, json.dumps({"id": "sim", "object": "chat.completion", "model": body.get("model"),
                                    "choices": choices, "usage": usage}).encode()

    # -- HTTP/1.1 with keep-alive ------------------------------------------------------------------------
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, slots: asyncio.Semaphore) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {k.strip().lower(): v.strip() for k, v in (x.split(":", 1) for x in lines[1:] if ":" in x)}
                body = await reader.readexactly(int(headers.get("content-length", 0)))
                with self.lock:
                    now = time.monotonic()
                    self.first_at = now if self.first_at is None else self.first_at
                    self.counts["requests"] += 1
                    self.counts["in_flight"] += 1
                    self.counts["max_in_flight"] = max(self.counts["max_in_flight"], self.counts["in_flight"])
                try:
                    if method == "GET" and path.endswith("/models"):
                        status, extra, data = 200, {}, b'{"object": "list", "data": [{"id": "sim"}]}'
                    elif method == "POST" and path.endswith("/chat/completions"):
                        status, extra, data = await self._complete(json.loads(body), slots)
                    else:
                        status, extra, data = 404, {}, b'{"error": {"message": "no such route"}}'
                finally:
                    with self.lock:
                        self.counts["in_flight"] -= 1
                if status == 200 and data.startswith(b"{"):
                    with self.lock:
                        self.counts["ok"] += 1
                        self.last_at = time.monotonic()
                out = [f"HTTP/1.1 {status} X", "Content-Type: application/json", f"Content-Length: {len(data)}",
                       "Connection: keep-alive", *(f"{k}: {v}" for k, v in extra.items()), "", ""]
                writer.write("\r\n".join(out).encode() + data)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            writer.close()

    async def _main(self) -> None:
        slots = asyncio.Semaphore(self.streams)
        server = await asyncio.start_server(lambda r, w: self._handle(r, w, slots), "127.0.0.1", self.port,
                                            backlog=4096, limit=1 << 24)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        async with server:
            await server.serve_forever()

    def start(self) -> LoadServer:
        def run() -> None:
            self._loop = asyncio.new_event_loop()
            try:
                self._loop.run_until_complete(self._main())
            except asyncio.CancelledError:
                pass

        threading.Thread(target=run, daemon=True).start()
        self._ready.wait(10)
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _reset_busy(self) -> None:
        self.busy_s, self._last = 0.0, time.monotonic()
        self.first_at = self.last_at = None
        self.full_first = self.full_last = self.full_busy_at_first = self.full_busy_at_last = None

    def reset_clock(self) -> None:
        with self.lock:
            self.t0, self.work_s = time.monotonic(), 0.0
            self.counts.update(tokens=0, max_in_flight=0, max_busy=0, requests=0, ok=0)
            self._reset_busy()

    def stats(self) -> dict[str, Any]:
        with self.lock:
            wall = time.monotonic() - self.t0
            steady = None
            if self.full_first is not None and self.full_last is not None and self.full_last > self.full_first:
                steady = (self.full_busy_at_last - self.full_busy_at_first) / (self.streams * (self.full_last - self.full_first))
            return {**self.counts, "wall_s": wall, "work_stream_s": self.work_s,
                    "capacity_ratio": self.work_s / (self.streams * wall) if wall > 0 else None,
                    "steady_ratio": steady,
                    "active_s": (self.last_at - self.first_at) if self.first_at and self.last_at else None,
                    "steady_s": (self.full_last - self.full_first) if steady is not None else None}

    def stop(self) -> None:
        if self._loop is not None:
            for task in asyncio.all_tasks(self._loop):
                self._loop.call_soon_threadsafe(task.cancel)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--streams", type=int, default=64)
    ap.add_argument("--tokens-per-s", type=float, default=400.0)
    ap.add_argument("--median-tokens", type=float, default=300.0)
    ap.add_argument("--faults", default="", help="e.g. 5xx=0.01,429=0.01,stall=0.002,drop=0.005,truncated=0.01,malformed=0.005")
    ap.add_argument("--port", type=int, default=0)
    a = ap.parse_args()
    faults = {k: float(v) for k, v in (x.split("=") for x in a.faults.split(",") if x)}
    srv = LoadServer(streams=a.streams, tokens_per_s=a.tokens_per_s, median_tokens=a.median_tokens, faults=faults,
                     port=a.port).start()
    print(f"listening on {srv.url}", file=sys.stderr, flush=True)
    try:
        while True:
            time.sleep(5)
            print(json.dumps(srv.stats()), file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        pass
