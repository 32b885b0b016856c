"""openai backend: any OpenAI-compatible chat-completions server (`vllm serve`, msmtools.llm.server, a hosted API).

The HTTP exchange is the `openai` package's async client (a connection pool sized to the concurrency,
typed errors, Retry-After on the response), every request a coroutine on one event loop, so hundreds
in flight cost no threads. The client's HTTP layer changed under us once (openai 2.x runs on httpx,
3.x on httpx2, which refuses httpx's types): every HTTP type here comes from `http_module()`, the
package the installed client itself uses, never from a package we import by name. Its own retries are off: ours below decide what a failure
means for the run, and say so on stderr.

Failure policy (the published pipeline hung on a stuck connection and died on one bad item):
- every call has a timeout (`timeout`, sized for long replies); connection errors, timeouts, HTTP 429
  and 5xx are retried with jittered exponential backoff (honouring Retry-After), at most `retries` times;
- a server that cannot be reached, rejects the key (401/403) or has no such route/model (404) stops
  the run with one MsmError: nothing else could succeed;
- a request that still times out or fails after its retries becomes an error Completion
  (finish_reason "error") while the others go on; unless no request has succeeded yet, in which case
  the server is taken to be stuck and the run stops with an MsmError instead of waiting out every item;
- the API key is read from the environment, sent only in the Authorization header, and scrubbed from
  every message this module produces (`msmtools.redact`, before anything is shortened).

Seeds and samples: sample j of a request with seed s is its own HTTP request with `seed = s + j` and
no `n`, which is what vLLM does for `n` internally. So every sample is one slot of `concurrency`
(a run keeps that many sequences in flight, whatever its samples per prompt), a server that ignores
`n` cannot shortchange a run, and vLLM's prefix cache still reads a shared prompt once.
"""

from __future__ import annotations

import errno
import json
import os
import random
import socket
import sys
import threading
import urllib.parse
from collections.abc import Iterable, Iterator
from typing import Any

from .. import redact
from ..errors import MsmError
from .base import Completion, Request, make_completion
from .options import GenOptions

POOL_SHARD = 64  # connections per pool: httpx's own pool does work linear in its size per request
RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
FATAL_STATUS = {401, 403, 404}


class _Transient(Exception):
    """A failure worth retrying (connection, timeout, 429/5xx)."""

    def __init__(self, message: str, *, unreachable: bool = False, timeout: bool = False,
                 retry_after: float | None = None):
        super().__init__(message)
        self.unreachable = unreachable
        self.timeout = timeout
        self.retry_after = retry_after


class _Abandoned(Exception):
    """The stream's consumer stopped reading: end quietly, nobody waits for the rest."""


class _ItemError(Exception):
    """A failure of this request only (HTTP 400, a malformed reply): no retry, an error Completion."""


def public_url(url: str) -> str:
    """The URL without user:password@ or a query string, fit for logs and records."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


def choice_completion(choice: dict[str, Any], *, index: int, seed: int | None,
                      prompt_tokens: int | None, completion_tokens: int | None) -> Completion:
    """One returned choice as a Completion; a separate reasoning field (vLLM's reasoning parsers) is honoured."""
    msg = choice.get("message") or {}
    content = msg.get("content") or ""
    if not isinstance(content, str):
        raise _ItemError(f"choice {index}: message.content is not a string")
    reasoning = msg.get("reasoning_content") or msg.get("reasoning")
    raw = f"<think>{reasoning}</think>{content}" if isinstance(reasoning, str) and reasoning else content
    reason = choice.get("finish_reason")
    comp = make_completion(raw, hit_limit=reason == "length", index=index, seed=seed,
                           prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)
    if reason not in (None, "stop", "length", "eos", "end_turn", "stop_sequence"):
        # content_filter, abort, tool_calls...: not a complete answer to the prompt
        comp.finish_reason, comp.truncated, comp.error = "error", True, f"server finished with reason {reason!r}"
    return comp


def _error_completion(message: str, *, index: int, seed: int) -> Completion:
    return Completion(text="", finish_reason="error", truncated=True, seed=seed, index=index, error=message)


class OpenAIBackend:
    name = "openai"
    backoff_s = 1.0  # first retry waits up to this long; doubles each try (full jitter), capped below
    backoff_cap_s = 30.0

    def __init__(self, model: str, *, base_url: str | None = None, api_key_env: str = GenOptions.api_key_env,
                 concurrency: int = GenOptions.concurrency, timeout: float = GenOptions.timeout,
                 retries: int = GenOptions.retries, progress: bool = True):
        """Defaults are the flags' (`GenOptions`), so Python callers and the CLI run alike."""
        url = base_url or os.environ.get("MSM_OPENAI_BASE_URL")
        if not url:
            raise MsmError("backend openai: no server URL: pass --base-url (e.g. http://127.0.0.1:8000/v1) "
                           "or set MSM_OPENAI_BASE_URL")
        if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            raise MsmError(f"--base-url {public_url(url)}: expected an http:// or https:// URL")
        if concurrency < 1 or retries < 0 or timeout <= 0:
            raise MsmError("backend openai: concurrency must be >= 1, retries >= 0 and timeout > 0")
        self.model = model
        self.base_url = url.rstrip("/")
        self.url = public_url(self.base_url)  # what messages and records show
        self.api_key_env = api_key_env
        self._key = os.environ.get(api_key_env) or None
        redact.register(self._key)
        self.concurrency = concurrency
        self.timeout = float(timeout)
        self.retries = retries
        self.progress = progress
        self._rng = random.Random()
        self._ok = threading.Event()  # some request has succeeded: the server is alive
        self._closed = threading.Event()  # close() was called: every stream stops

    # -- one HTTP exchange -----------------------------------------------------------------------
    @staticmethod
    def _scrub(text: str) -> str:
        return redact.scrub(text)

    def _new_client(self, connections: int) -> Any:
        """An async `openai` client for one event loop, its pool holding `connections` connections."""
        import openai

        httpx = http_module()
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        timeout = httpx.Timeout(self.timeout, connect=min(self.timeout, 30.0))
        try:  # aiohttp underneath (openai[aiohttp]): far less work per request than httpx's own pool
            http = openai.DefaultAioHttpClient(limits=limits, timeout=timeout)
        except RuntimeError:
            http = httpx.AsyncClient(limits=limits, timeout=timeout)
        return openai.AsyncOpenAI(base_url=self.base_url, api_key=self._key or "unused", max_retries=0, timeout=timeout,
                                  http_client=http)

    async def _post(self, client: Any, payload: dict[str, Any]) -> dict[str, Any]:
        import openai

        httpx = http_module()

        try:
            # the client's plain POST: pooled connection, typed errors, but no per-request transform of the
            # messages (the typed `chat.completions.create` spends milliseconds walking every prompt)
            text = (await client.post("/chat/completions", cast_to=httpx.Response, body=payload)).text
        except openai.APIStatusError as e:
            detail = _error_detail(e.response)
            code = e.status_code
            if code in FATAL_STATUS:
                hint = (f"check the key in ${self.api_key_env}" if code in (401, 403)
                        else "check --base-url (it usually ends in /v1) and --model")
                raise MsmError(self._scrub(f"server at {self.url} answered HTTP {code}: {detail} ({hint})")) from None
            if code in RETRY_STATUS:
                raise _Transient(f"HTTP {code}: {detail}", retry_after=_retry_after(e.response)) from None
            raise _ItemError(f"HTTP {code}: {detail}") from None
        except (openai.APITimeoutError, openai.APIConnectionError) as e:
            if _could_not_connect(e):  # refused, DNS, connect timeout: no server there
                raise _Transient(f"{_reason(e)}", unreachable=True) from None
            if isinstance(e, openai.APITimeoutError):
                raise _Transient(f"no answer within {self.timeout:g} s", timeout=True) from None
            cause = e.__cause__
            raise _Transient(f"connection lost ({type(cause).__name__ if cause else 'closed'})") from None
        try:
            data = json.loads(text)
        except ValueError:
            raise _ItemError(f"reply is not JSON: {redact.clip(text, 200)!r}") from None
        if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
            raise _ItemError(f"reply has no choices: {redact.clip(str(data), 200)}")
        return data

    async def _call(self, client: Any, payload: dict[str, Any], stop: threading.Event) -> dict[str, Any]:
        """POST with retries; raises MsmError (the run cannot go on) or _ItemError (this request failed)."""
        import asyncio

        for attempt in range(self.retries + 1):
            if stop.is_set():
                raise _Abandoned
            try:
                data = await self._post(client, payload)
                self._ok.set()
                return data
            except _Transient as e:
                last = e
                if stop.is_set():
                    raise _Abandoned from None
                if attempt == self.retries:
                    break
                delay = self._rng.uniform(0, min(self.backoff_cap_s, self.backoff_s * 2**attempt))
                if e.retry_after is not None:
                    delay = max(delay, min(e.retry_after, 60.0))
                print(self._scrub(f"msm: {self.url}: {e} (retry {attempt + 1}/{self.retries} in {delay:.1f} s)"),
                      file=sys.stderr)
                await asyncio.sleep(delay)
        tries = f"{self.retries + 1} tr{'y' if self.retries == 0 else 'ies'}"
        if last.unreachable:
            raise MsmError(self._scrub(f"cannot reach server at {self.url}: {last} ({tries})"))
        if last.timeout and not self._ok.is_set():
            raise MsmError(self._scrub(f"server at {self.url} accepted the connection but sent no answer within "
                                       f"{self.timeout:g} s ({tries}); is it stuck or overloaded? (--timeout)"))
        raise _ItemError(f"{last} ({tries})")

    # -- generation ------------------------------------------------------------------------------
    def _payload(self, r: Request, n: int, seed: int) -> dict[str, Any]:
        s = r.sampling
        p: dict[str, Any] = {"model": self.model, "messages": r.messages, "temperature": s.temperature,
                             "top_p": s.top_p, "max_tokens": s.max_tokens, "seed": seed}
        if n > 1:
            p["n"] = n
        if s.stop:
            p["stop"] = list(s.stop)
        return p

    async def _job(self, client: Any, r: Request, first: int, n: int, stop: threading.Event) -> list[Completion]:
        """Completions for sample indices first..first+n-1 of r."""
        seed = r.sampling.seed + first
        try:
            data = await self._call(client, self._payload(r, n, seed), stop)
            usage = data.get("usage") or {}
            choices = sorted(data["choices"], key=lambda c: c.get("index", 0))[:n]
            return [choice_completion(c, index=first + k, seed=seed + k, prompt_tokens=usage.get("prompt_tokens"),
                                      completion_tokens=usage.get("completion_tokens") if len(choices) == 1 else None)
                    for k, c in enumerate(choices)]
        except _ItemError as e:
            msg = self._scrub(f"server at {self.url}: {e}")
            return [_error_completion(msg, index=first + k, seed=seed + k) for k in range(n)]

    def stream(self, requests: Iterable[Request], *, desc: str | None = None) -> Iterator[tuple[int, list[Completion]]]:
        """(index, completions) for each request as soon as all its samples are back, in the order they finish.

        Requests are read from the iterable only as slots free up, so a run of any size holds just what
        is in flight; one slow or stalled request holds one slot, never a whole batch. The event loop
        runs in a thread of its own; a run-level failure (unreachable server, bad key) is raised here.
        """
        import asyncio
        import queue

        from tqdm import tqdm

        results: queue.Queue = queue.Queue(maxsize=4 * self.concurrency)
        done_marker = object()
        it = iter(requests)
        stop = threading.Event()  # this stream's own: other streams on this backend (a grader) go on
        bar = tqdm(desc=desc or "generate", unit="seq", file=sys.stderr, disable=not self.progress, leave=False)

        async def main() -> None:
            shards = max(1, -(-self.concurrency // POOL_SHARD))
            per = -(-self.concurrency // shards)
            clients: list[Any] = []
            slots = asyncio.Semaphore(self.concurrency)
            pending: dict[int, list] = {}  # request index -> [remaining samples, completions]
            tasks: set = set()
            loop = asyncio.get_running_loop()

            async def one(k: int, ri: int, r: Request, j: int) -> None:
                try:
                    comps = await self._job(clients[k % shards], r, j, 1, stop)
                finally:
                    slots.release()
                entry = pending[ri]
                entry[1].extend(comps)
                entry[0] -= 1
                bar.update(1)
                if entry[0] == 0:
                    del pending[ri]
                    await loop.run_in_executor(None, results.put, (ri, sorted(entry[1], key=lambda c: c.index)))

            failures: list[BaseException] = []

            def finished(t: asyncio.Future) -> None:
                tasks.discard(t)
                if not t.cancelled() and t.exception() is not None:
                    failures.append(t.exception())

            try:
                # inside the try: a client that cannot be built (an upstream API change) ends the run, not the loop
                clients.extend(self._new_client(per) for _ in range(shards))
                k = 0
                for ri, r in enumerate(it):
                    if r.adapter:
                        raise MsmError(f"backend openai: adapters are chosen on the server (vllm serve --enable-lora "
                                       f"--lora-modules NAME=PATH, then --model NAME); got adapter {r.adapter}")
                    pending[ri] = [r.sampling.n, []]
                    for j in range(r.sampling.n):
                        await slots.acquire()
                        if failures:
                            raise failures[0]
                        if stop.is_set():
                            raise _Abandoned
                        if self._closed.is_set():
                            raise MsmError(f"backend openai ({self.url}): closed while a run was using it")
                        t = asyncio.ensure_future(one(k, ri, r, j))
                        tasks.add(t)
                        t.add_done_callback(finished)
                        k += 1
                while tasks:
                    await asyncio.wait(set(tasks))
                if failures:
                    raise failures[0]
            except BaseException as e:
                stop.set()
                for t in list(tasks):
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                if not isinstance(e, _Abandoned):  # abandoned: the consumer stopped reading, nobody waits
                    await loop.run_in_executor(None, results.put, e)
            finally:
                for c in clients:
                    try:
                        await c.close()
                    except Exception:  # a failed close must not swallow the result or the done marker
                        pass

        def worker() -> None:
            """The event loop's thread: whatever happens in it, the consumer hears of it and is released."""
            try:
                asyncio.run(main())
            except BaseException as e:  # noqa: BLE001 - handed to the consumer, which raises it
                put(e)
            finally:
                put(done_marker)

        def put(item: Any) -> None:
            while True:  # never blocks for good: a consumer that left (stop set) no longer reads
                try:
                    results.put(item, timeout=0.1)
                    return
                except queue.Full:
                    if stop.is_set() and item is done_marker:
                        return

        thread = threading.Thread(target=worker, name="openai-loop", daemon=True)
        thread.start()
        try:
            while True:
                try:
                    got = results.get(timeout=1.0)
                except queue.Empty:
                    if thread.is_alive() or not results.empty():
                        continue
                    raise MsmError("backend openai: its event-loop thread ended without a result "
                                   "(a bug in msmtools)") from None
                if got is done_marker:
                    break
                if isinstance(got, BaseException):
                    if not isinstance(got, MsmError):  # one line naming what failed, not a bare traceback
                        raise MsmError(self._scrub(f"backend openai ({self.url}): {type(got).__name__}: {got}")) from got
                    raise got
                yield got
        finally:
            stop.set()  # a consumer that stops early ends this stream
            while thread.is_alive():
                try:
                    results.get(timeout=0.1)
                except queue.Empty:
                    pass
            bar.close()

    def generate(self, requests: list[Request], *, desc: str | None = None) -> list[list[Completion]]:
        out: list[list[Completion] | None] = [None] * len(requests)
        for ri, comps in self.stream(requests, desc=desc):
            out[ri] = comps
        missing = [i for i, c in enumerate(out) if c is None or len(c) != requests[i].sampling.n]
        if missing:  # never a silent gap
            raise MsmError(f"backend openai: {len(missing)} of {len(requests)} requests came back without their "
                           "samples (a bug in msmtools)")
        return out

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "model": self.model, "base_url": self.url}

    def close(self) -> None:
        self._closed.set()


def http_module() -> Any:
    """The HTTP package the installed `openai` client runs on (httpx for 2.x, httpx2 for 3.x).

    Read off the client's own HTTP client class, so a client that moves again brings its types with it.
    """
    import importlib

    import openai

    for cls in openai.DefaultAsyncHttpxClient.__mro__:
        top = cls.__module__.split(".")[0]
        if top not in ("openai", "builtins"):
            return importlib.import_module(top)
    raise MsmError(f"backend openai: cannot tell which HTTP package openai {openai.__version__} runs on")


def _chain(exc: BaseException):
    seen, e = set(), exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        yield e
        e = e.__cause__ or e.__context__


def _could_not_connect(exc: BaseException) -> bool:
    """Whether a failure happened before any connection existed (httpx and aiohttp say it differently)."""
    httpx = http_module()
    for e in _chain(exc):
        if isinstance(e, (httpx.ConnectError, httpx.ConnectTimeout, ConnectionRefusedError, socket.gaierror)):
            return True
        if type(e).__name__ in ("ClientConnectorError", "ClientConnectorDNSError"):
            return True
    return False


def _reason(exc: BaseException) -> str:
    """The root cause of a connection failure in words (httpx says only 'All connection attempts failed')."""
    for e in _chain(exc):
        if isinstance(e, ConnectionRefusedError) or (isinstance(e, OSError) and e.errno == errno.ECONNREFUSED):
            return "connection refused"
        if isinstance(e, OSError) and e.strerror and e.errno:
            return e.strerror.lower()
    text = str(exc) or type(exc).__name__
    return "connection refused" if "refused" in text.lower() else text


def _error_detail(response: Any) -> str:
    """The server's own error message, scrubbed and then shortened."""
    try:
        body = response.text
    except Exception:
        body = ""
    try:
        data = json.loads(body)
        msg = data.get("error", data) if isinstance(data, dict) else data
        if isinstance(msg, dict):
            msg = msg.get("message", msg)
        text = str(msg)
    except ValueError:
        text = body or getattr(response, "reason_phrase", "") or ""
    return redact.clip(" ".join(text.split()), 300) or f"HTTP {response.status_code}"


def _retry_after(response: Any) -> float | None:
    try:
        value = response.headers.get("retry-after")
        return float(value) if value else None
    except (ValueError, AttributeError):
        return None
