"""A small OpenAI-compatible chat-completions server over any msmtools backend.

    python -m msmtools.llm.server --model default --backend hf --port 8000

serves POST /v1/chat/completions and GET /v1/models on 127.0.0.1 (loopback only unless --host says
otherwise). Requests that arrive together are batched into one `backend.generate` call, so concurrent
clients (the openai backend with --concurrency N) get the hf backend's batched throughput. Choice j
of a request with seed s is sampled with seed s + j, like vLLM; a request without a seed gets a
random one. Each choice's `content` is the full generated text (any `<think>` block included, as a
server without a reasoning parser returns it) with its own `finish_reason` (stop | length).
It exists so that the openai backend can be tested against a real server, and so that a model can
be shared by several msm jobs; for throughput on a GPU use `vllm serve`.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import secrets
import sys
import threading
import time
from concurrent.futures import Future
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ..errors import MsmError
from . import backends
from ..ids import stable_id
from .base import Backend, Completion, Request, Sampling

LOOPBACK = ("127.0.0.1", "localhost", "::1")


class BadRequest(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class Batcher:
    """Collects requests from handler threads and runs them through the backend in batches.

    The backend is used from this one thread only (hf is not thread-safe). A batch is whatever has
    arrived while the previous one ran, plus anything arriving within `wait_s` of the first request.
    """

    def __init__(self, backend: Backend, *, max_batch: int = 32, wait_s: float = 0.02):
        self.backend = backend
        self.max_batch = max_batch
        self.wait_s = wait_s
        self._q: queue.Queue[tuple[Request, Future]] = queue.Queue()
        threading.Thread(target=self._run, name="batcher", daemon=True).start()

    def submit(self, request: Request) -> list[Completion]:
        fut: Future = Future()
        self._q.put((request, fut))
        return fut.result()

    def _run(self) -> None:
        while True:
            batch = [self._q.get()]
            deadline = time.monotonic() + self.wait_s
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._q.get(timeout=max(0.0, deadline - time.monotonic())))
                except queue.Empty:
                    break
            try:
                results = self.backend.generate([r for r, _ in batch], desc="serve")
                if len(results) != len(batch):
                    raise RuntimeError(f"backend returned {len(results)} results for {len(batch)} requests")
            except BaseException as e:  # report to every waiting client (none waits forever); keep serving
                for _, fut in batch:
                    fut.set_exception(e)
                continue
            for (_, fut), res in zip(batch, results):
                fut.set_result(res)


def parse_request(body: dict[str, Any], models: dict[str, str | None]) -> tuple[str, Request]:
    """Validate an OpenAI chat-completions body; returns (model name, Request)."""
    if not isinstance(body, dict):
        raise BadRequest(400, "body: expected a JSON object")
    name = body.get("model")
    if name is None:
        name = next(iter(models))
    if name not in models:
        raise BadRequest(404, f"The model `{name}` does not exist (served: {', '.join(models)}).")
    msgs = body.get("messages")
    if (not isinstance(msgs, list) or not msgs
            or not all(isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
                       for m in msgs)):
        raise BadRequest(400, "messages: expected a non-empty list of {role, content} with string content")

    def num(key: str, kind: type, default: Any, lo: float, hi: float | None = None) -> Any:
        v = body.get(key)
        if v is None:
            return default
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (kind is int and int(v) != v):
            raise BadRequest(400, f"{key}: expected {'an integer' if kind is int else 'a number'}")
        if v < lo or (hi is not None and v > hi):
            raise BadRequest(400, f"{key}: {v} is out of range")
        return kind(v)

    stop = body.get("stop") or ()
    if isinstance(stop, str):
        stop = (stop,)
    if not isinstance(stop, (list, tuple)) or not all(isinstance(s, str) for s in stop):
        raise BadRequest(400, "stop: expected a string or a list of strings")
    limit_key = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
    seed = num("seed", int, None, 0)
    sampling = Sampling(
        temperature=num("temperature", float, 1.0, 0.0, 2.0),
        top_p=num("top_p", float, 1.0, 0.0, 1.0),
        max_tokens=num(limit_key, int, 512, 1),
        n=num("n", int, 1, 1, 128),
        seed=secrets.randbits(31) if seed is None else seed,
        stop=tuple(stop),
    )
    return name, Request([{"role": m["role"], "content": m["content"]} for m in msgs], sampling,
                         adapter=models[name])


def response_body(name: str, request: Request, completions: list[Completion]) -> dict[str, Any]:
    prompt_tokens = completions[0].prompt_tokens if completions else 0
    completion_tokens = sum(c.completion_tokens or 0 for c in completions)
    return {
        "id": "chatcmpl-" + stable_id(name, request.messages, request.sampling.to_dict(), time.time_ns()),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": name,
        "choices": [{"index": c.index, "message": {"role": "assistant", "content": c.raw or ""},
                     "finish_reason": "length" if c.finish_reason == "length" else "stop"}
                    for c in completions],
        "usage": {"prompt_tokens": prompt_tokens or 0, "completion_tokens": completion_tokens,
                  "total_tokens": (prompt_tokens or 0) + completion_tokens},
    }


def make_server(backend: Backend, *, host: str = "127.0.0.1", port: int = 8000, served_name: str | None = None,
                loras: dict[str, str] | None = None, api_key: str | None = None,
                max_batch: int = 32) -> ThreadingHTTPServer:
    """An HTTP server (not yet serving) that answers with `backend`; port 0 picks a free port."""
    batcher = Batcher(backend, max_batch=max_batch)
    served: dict[str, str | None] = {served_name or backend.model: None, **(loras or {})}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt: str, *args: Any) -> None:  # one line per request, on stderr
            sys.stderr.write(f"msm-server: {self.address_string()} {fmt % args}\n")

        def _send(self, status: int, obj: dict[str, Any]) -> None:
            data = json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status: int, message: str) -> None:
            kind = {400: "BadRequestError", 401: "AuthenticationError", 404: "NotFoundError"}.get(status, "ServerError")
            self._send(status, {"error": {"message": message, "type": kind, "code": status}})

        def _authorised(self) -> bool:
            if api_key is None or self.headers.get("Authorization") == f"Bearer {api_key}":
                return True
            self._error(401, "invalid or missing API key")
            return False

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            if not self._authorised():
                return
            if self.path.rstrip("/") != "/v1/models":
                return self._error(404, f"no route {self.path}")
            self._send(200, {"object": "list", "data": [
                {"id": m, "object": "model", "owned_by": "msmtools", "parent": None if a is None else served_name
                 or backend.model} for m, a in served.items()]})

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if not self._authorised():
                return
            if self.path.rstrip("/") != "/v1/chat/completions":
                return self._error(404, f"no route {self.path}")
            try:
                body = json.loads(raw or b"null")
                name, request = parse_request(body, served)
                if body.get("stream"):
                    raise BadRequest(400, "stream: streaming is not supported by this server")
            except json.JSONDecodeError as e:
                return self._error(400, f"body: not JSON ({e})")
            except BadRequest as e:
                return self._error(e.status, str(e))
            try:
                completions = batcher.submit(request)
            except Exception as e:  # a backend failure is the server's error, reported to this client
                return self._error(500, f"generation failed: {type(e).__name__}: {e}")
            self._send(200, response_body(name, request, completions))

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m msmtools.llm.server",
                                description="Serve a model through an OpenAI-compatible chat-completions API.")
    p.add_argument("--model", "-m", default="default",
                   help="'default' (embedded SmolLM2-135M-Instruct), a local HF folder, or a hub id.")
    p.add_argument("--backend", "-b", default="hf", choices=[n for n in backends.names() if backends.capabilities(n).local_weights],
                   help="Backend that generates (one that loads the model here).")
    p.add_argument("--host", default="127.0.0.1",
                   help="Address to bind (default loopback; anything else exposes the model to the network).")
    p.add_argument("--port", type=int, default=8000, help="Port (0 = any free port; the URL is printed on stderr).")
    p.add_argument("--served-model-name", default=None, help="Model name clients send (default: --model as given).")
    p.add_argument("--lora", action="append", default=[], metavar="NAME=PATH",
                   help="Also serve a LoRA adapter under model name NAME (repeatable; like vllm serve --lora-modules).")
    p.add_argument("--api-key-env", default=None, metavar="VAR",
                   help="Require 'Authorization: Bearer <key>' with the key read from this environment variable.")
    p.add_argument("--batch-size", type=int, default=16, help="hf backend: sequences per generate call.")
    p.add_argument("--max-batch", type=int, default=32, help="Most requests gathered into one backend call.")
    p.add_argument("--dtype", default="auto", choices=("auto", "bf16", "fp16", "fp32"), help="Weights dtype.")
    p.add_argument("--trust-remote-code", action="store_true", help="Allow the model repository to run its own code.")
    args = p.parse_args(argv)
    try:
        loras = {}
        for item in args.lora:
            name, sep, path = item.partition("=")
            if not sep or not name or not path:
                raise MsmError(f"--lora {item}: expected NAME=PATH")
            loras[name] = path
        api_key = None
        if args.api_key_env:
            api_key = os.environ.get(args.api_key_env)
            if not api_key:
                raise MsmError(f"--api-key-env {args.api_key_env}: that environment variable is empty or unset")
        if args.host not in LOOPBACK:
            print(f"msm-server: warning: binding {args.host}: anyone who can reach this address can use the model",
                  file=sys.stderr)
        from . import get_backend

        backend = get_backend(args.backend, args.model, batch_size=args.batch_size, dtype=args.dtype,
                              trust_remote_code=args.trust_remote_code, progress=False)
        # Load now, so that "listening" means "ready": a one-token warm-up request.
        backend.generate([Request([{"role": "user", "content": "hi"}], Sampling(max_tokens=1))])
        server = make_server(backend, host=args.host, port=args.port, served_name=args.served_model_name or args.model,
                             loras=loras, api_key=api_key, max_batch=args.max_batch)
    except MsmError as e:
        print(f"msm-server: error: {e}", file=sys.stderr)
        return 2
    host, port = server.server_address[:2]
    print(f"msm-server: listening on http://{host}:{port}/v1 (model {args.served_model_name or args.model})",
          file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
