"""openai backend against a real local server (msmtools.llm.server over the hf backend, tiny model).

Failure modes are produced by real sockets: a port nobody listens on, a server that accepts and never
answers, and a small forwarding proxy that fails, stalls, drops `n` or counts requests in flight
before passing them on to the real server.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from msmtools.errors import MsmError
from msmtools.llm import Request, Sampling, get_backend
from msmtools.llm.openai import OpenAIBackend, choice_completion

KEY = "sk-test-7f3a9c1e5b2d4f6a8c0e"  # the client's key; must never show up in messages or records


def _msgs(text):
    return [{"role": "user", "content": text}]


def _req(text, **kw):
    return Request(_msgs(text), Sampling(**kw))


@pytest.fixture(scope="module")
def server(tiny_model, tmp_path_factory):
    """`python -m msmtools.llm.server` on a free loopback port, requiring KEY."""
    log = tmp_path_factory.mktemp("server") / "stderr.log"
    env = dict(os.environ, MSM_TEST_SERVER_KEY=KEY)
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "msmtools.llm.server", "--model", str(tiny_model),
                                 "--port", "0", "--api-key-env", "MSM_TEST_SERVER_KEY", "--batch-size", "16"],
                                stdout=subprocess.DEVNULL, stderr=err, env=env)
    try:
        deadline = time.monotonic() + 180
        url = None
        while url is None:
            text = log.read_text()
            for line in text.splitlines():
                if "listening on " in line:
                    url = line.split("listening on ")[1].split()[0]
            if proc.poll() is not None:
                pytest.fail(f"server exited:\n{text}")
            if time.monotonic() > deadline:
                pytest.fail(f"server did not start:\n{text}")
            time.sleep(0.2)
        assert url.startswith("http://127.0.0.1:")  # loopback by default
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.delenv("MSM_OPENAI_BASE_URL", raising=False)


class Proxy:
    """A loopback HTTP proxy to `target` whose `hook(number, body)` may rewrite, fail or stall a request."""

    def __init__(self, target: str, hook=None, delay: float = 0.0):
        self.target, self.hook, self.delay = target.rstrip("/"), hook, delay
        self.count = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()
        self.release = threading.Event()  # set at teardown: stalled handlers return
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with proxy.lock:
                    proxy.count += 1
                    number = proxy.count
                    proxy.in_flight += 1
                    proxy.max_in_flight = max(proxy.max_in_flight, proxy.in_flight)
                done = False

                def leave():  # before the reply goes out: the client may send its next request at once
                    nonlocal done
                    if not done:
                        done = True
                        with proxy.lock:
                            proxy.in_flight -= 1

                try:
                    action = proxy.hook(number, body, self.headers) if proxy.hook else None
                    if action == "stall":
                        proxy.release.wait(60)
                        return
                    if isinstance(action, tuple):  # (status, payload)
                        status, payload = action
                    else:
                        time.sleep(proxy.delay)
                        status, payload = proxy.forward(body, self.headers.get("Authorization"))
                    data = json.dumps(payload).encode()
                    leave()
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                finally:
                    leave()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def forward(self, body, auth):
        req = urllib.request.Request(self.target + "/chat/completions", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json", "Authorization": auth or ""})
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def close(self):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def proxy(server):
    made = []

    def make(hook=None, delay=0.0):
        p = Proxy(server, hook, delay)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()


@pytest.fixture
def make(tiny_model):
    """An openai backend for `url`, asking for the served tiny model unless told otherwise."""

    def make(url, **kw):
        b = OpenAIBackend(kw.pop("model", str(tiny_model)), base_url=url, progress=False, **kw)
        b.backoff_s = 0.05  # keep retry tests quick: the same schedule, scaled down
        return b

    return make


# -- real completions ----------------------------------------------------------------------------

def test_completions_match_the_hf_backend_and_carry_seeds(server, key, tiny_model, make):
    b = make(server)
    reqs = [_req("tell me a story", temperature=1.0, max_tokens=8, n=3, seed=40),
            _req("another prompt, longer than the first one", temperature=1.0, max_tokens=8, seed=7)]
    got = b.generate(reqs)
    assert [len(r) for r in got] == [3, 1]
    assert [c.seed for c in got[0]] == [40, 41, 42] and [c.index for c in got[0]] == [0, 1, 2]
    assert len({c.raw for c in got[0]}) == 3  # distinct seeds, distinct samples
    assert all(c.text and c.prompt_tokens and c.prompt_tokens > 5 for r in got for c in r)
    # The server samples with the hf backend: same seeds, same text as running hf here.
    local = get_backend("hf", str(tiny_model), progress=False).generate(reqs)
    assert [[c.raw for c in r] for r in got] == [[c.raw for c in r] for r in local]
    assert b.describe() == {"backend": "openai", "model": str(tiny_model), "base_url": server}


def test_truncation_is_flagged(server, key, make):
    [[c]] = make(server).generate([_req("hello", max_tokens=3, seed=1)])
    assert c.truncated and c.finish_reason == "length" and c.completion_tokens == 3


def test_server_that_ignores_n_gets_single_requests_with_seed_plus_j(server, key, proxy, make):
    def drop_n(number, body, headers):
        body.pop("n", None)  # forwarded as a single-sample request, like a server without n support

    p = proxy(drop_n)
    req = _req("same prompt", temperature=1.0, max_tokens=6, n=3, seed=100)
    via_proxy = make(p.url).generate([req])[0]
    direct = make(server).generate([req])[0]
    assert p.count == 3  # one request with n=3 (answered with one choice), then samples 1 and 2 singly
    assert [c.seed for c in via_proxy] == [100, 101, 102]
    assert [c.raw for c in via_proxy] == [c.raw for c in direct]


def test_concurrency_is_bounded(server, key, proxy, make):
    p = proxy(delay=0.3)  # hold each request so that concurrent ones overlap
    got = make(p.url, concurrency=2).generate([_req(f"q{i}", max_tokens=2, seed=i) for i in range(6)])
    assert len(got) == 6 and all(r[0].error is None for r in got)
    assert p.max_in_flight == 2


# -- failures ------------------------------------------------------------------------------------

def test_retries_on_5xx_then_succeeds(server, key, proxy, make):
    p = proxy(lambda number, body, headers: (503, {"error": {"message": "overloaded"}}) if number <= 2 else None)
    [[c]] = make(p.url, retries=3).generate([_req("hi", max_tokens=3, seed=2)])
    assert c.error is None and c.text and p.count == 3


def test_persistent_5xx_becomes_an_error_completion_not_a_crash(server, key, proxy, make):
    def fail_one(number, body, headers):
        if body["messages"][0]["content"] == "bad":
            return 500, {"error": {"message": "boom"}}

    p = proxy(fail_one)
    good, bad = make(p.url, retries=1).generate([_req("good", max_tokens=3, seed=1), _req("bad", max_tokens=3, seed=1, n=2)])
    assert good[0].error is None
    assert [c.finish_reason for c in bad] == ["error", "error"] and [c.seed for c in bad] == [1, 2]
    assert "HTTP 500: boom (2 tries)" in bad[0].error and p.count == 1 + 2 * 2  # each sample is a request, tried twice


def test_unreachable_server_is_one_clear_error(key, make):
    with socket.socket() as s:  # a port that nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    with pytest.raises(MsmError, match=f"cannot reach server at {url}: .*refused.*\\(2 tries\\)"):
        make(url, retries=1).generate([_req("hi", max_tokens=3)])


def test_stuck_server_times_out_instead_of_hanging(key, make):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)  # accepts connections (the kernel does), never answers
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
    try:
        t0 = time.monotonic()
        with pytest.raises(MsmError, match="accepted the connection but sent no answer within 0.5 s \\(2 tries\\)"):
            make(url, timeout=0.5, retries=1).generate([_req("hi", max_tokens=3)])
        assert time.monotonic() - t0 < 30  # bounded, not a hang (2 x 0.5 s plus backoff)
    finally:
        listener.close()


def test_one_stalled_request_does_not_stop_the_others(server, key, proxy, make):
    p = proxy(lambda number, body, headers: "stall" if body["messages"][0]["content"] == "stall" else None)
    b = make(p.url, timeout=1.0, retries=1)
    b.generate([_req("warm", max_tokens=2)])  # the server has answered: it is alive
    ok, stalled = b.generate([_req("fine", max_tokens=3, seed=3), _req("stall", max_tokens=3, seed=3)])
    assert ok[0].error is None and ok[0].text
    assert stalled[0].finish_reason == "error" and "no answer within 1 s (2 tries)" in stalled[0].error


def test_api_key_never_reaches_errors_or_records(server, monkeypatch, proxy, make):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-key-0123456789")
    with pytest.raises(MsmError) as e:
        make(server).generate([_req("hi", max_tokens=2)])
    assert "HTTP 401" in str(e.value) and "$OPENAI_API_KEY" in str(e.value)
    assert "sk-wrong-key" not in str(e.value) and "sk-wrong-key" not in repr(e.value.__context__)

    # A server that echoes the Authorization header in its errors: the key is scrubbed from the record.
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    p = proxy(lambda number, body, headers: (400, {"error": {"message": f"bad request from {headers['Authorization']}"}}))
    b = make(p.url)
    [[c]] = b.generate([_req("hi", max_tokens=2)])
    assert c.finish_reason == "error" and "Bearer [redacted]" in c.error
    assert KEY not in json.dumps(c.to_dict()) and KEY not in json.dumps(b.describe())
    # and a good exchange records nothing of it either
    [[c]] = make(server).generate([_req("hi", max_tokens=2)])
    assert c.error is None and KEY not in json.dumps(c.to_dict())


def test_key_env_name_is_an_option(server, monkeypatch, make):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("MY_SERVER_KEY", KEY)
    [[c]] = make(server, api_key_env="MY_SERVER_KEY").generate([_req("hi", max_tokens=2)])
    assert c.error is None


def test_unknown_model_and_missing_url(server, key, monkeypatch, make):
    with pytest.raises(MsmError, match="HTTP 404: The model `nope` does not exist.*--base-url"):
        make(server, model="nope").generate([_req("hi", max_tokens=2)])
    with pytest.raises(MsmError, match="no server URL"):
        OpenAIBackend("m")
    monkeypatch.setenv("MSM_OPENAI_BASE_URL", server)
    assert OpenAIBackend("m").describe()["base_url"] == server
    with pytest.raises(MsmError, match="adapters are chosen on the server"):
        OpenAIBackend("m").generate([Request(_msgs("hi"), adapter="/some/lora")])


def test_reasoning_field_and_think_tags():
    c = choice_completion({"message": {"content": "answer", "reasoning_content": "plan"}, "finish_reason": "stop"},
                          index=0, seed=1, prompt_tokens=3, completion_tokens=4)
    assert (c.reasoning, c.text, c.truncated) == ("plan", "answer", False)
    c = choice_completion({"message": {"content": "<think>plan</think> answer"}, "finish_reason": "stop"},
                          index=0, seed=1, prompt_tokens=3, completion_tokens=4)
    assert (c.reasoning, c.text) == ("plan", "answer")
    c = choice_completion({"message": {"content": "<think>still planning"}, "finish_reason": "length"},
                          index=0, seed=1, prompt_tokens=3, completion_tokens=4)
    assert c.truncated and c.finish_reason == "length" and c.text == ""
    c = choice_completion({"message": {"content": "x"}, "finish_reason": "content_filter"},
                          index=0, seed=1, prompt_tokens=3, completion_tokens=4)
    assert c.finish_reason == "error" and c.truncated


def test_server_rejects_bad_requests(server, tiny_model):
    def post(body):
        req = urllib.request.Request(server + "/chat/completions", data=body,
                                     headers={"Authorization": f"Bearer {KEY}"}, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    assert post(b"{not json")[0] == 400
    status, body = post(json.dumps({"messages": [{"role": "user"}]}).encode())
    assert status == 400 and "messages" in body["error"]["message"]
    status, body = post(json.dumps({"messages": _msgs("x"), "max_tokens": -1}).encode())
    assert status == 400 and "max_tokens" in body["error"]["message"]
    req = urllib.request.Request(server + "/models", headers={"Authorization": f"Bearer {KEY}"})
    with urllib.request.urlopen(req, timeout=30) as r:
        assert [m["id"] for m in json.loads(r.read())["data"]] == [str(tiny_model)]


# -- the installed client, whatever its generation, and failures inside the worker ------------------
# `just test` runs this file again with the oldest and the newest openai 2.x (httpx) on top of the
# locked 3.x (httpx2): see requirements/openai-*.in.

def test_http_types_come_from_the_installed_client(make, server):
    import openai

    from msmtools.llm.openai import http_module  # noqa

    httpx = http_module()
    assert issubclass(openai.DefaultAsyncHttpxClient, httpx.AsyncClient)
    assert openai.__version__.startswith("2.") == (httpx.__name__ == "httpx")


def _timed(fn, bound_s):
    """Run fn in a thread; fail (instead of hanging the suite) if it has not returned within bound_s."""
    box = {}

    def target():
        try:
            box["value"] = fn()
        except BaseException as e:  # noqa: BLE001
            box["error"] = e

    t = threading.Thread(target=target, daemon=True)
    start = time.monotonic()
    t.start()
    t.join(bound_s)
    assert not t.is_alive(), f"still running after {bound_s} s: a hang"
    return box, time.monotonic() - start


def test_a_client_that_cannot_be_built_fails_the_run_at_once(server, key, make, monkeypatch):
    def broken(self, connections):
        raise TypeError("Invalid timeout: expected a number, got httpx.Timeout")  # what openai 3.x said

    monkeypatch.setattr(OpenAIBackend, "_new_client", broken)
    box, took = _timed(lambda: make(server).generate([_req("hi", max_tokens=4)]), 20)
    assert isinstance(box.get("error"), MsmError) and took < 10
    assert "TypeError" in str(box["error"]) and "Invalid timeout" in str(box["error"])


def test_an_exception_inside_a_request_coroutine_fails_the_run_at_once(server, key, make, monkeypatch):
    async def boom(self, client, payload):
        raise RuntimeError("injected inside the event loop")

    monkeypatch.setattr(OpenAIBackend, "_post", boom)
    reqs = [_req(f"q{i}", max_tokens=4, n=2) for i in range(20)]
    box, took = _timed(lambda: make(server, concurrency=4).generate(reqs), 20)
    assert isinstance(box.get("error"), MsmError) and took < 10
    assert "RuntimeError: injected inside the event loop" in str(box["error"])


def test_a_stream_abandoned_by_its_consumer_ends_its_thread(server, key, make):
    b = make(server, concurrency=2)
    before = {t.ident for t in threading.enumerate()}
    it = b.stream([_req(f"q{i}", max_tokens=4) for i in range(8)])
    next(it)
    it.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(t.name == "openai-loop" and t.ident not in before
                                              for t in threading.enumerate()):
        time.sleep(0.05)
    assert not [t for t in threading.enumerate() if t.name == "openai-loop" and t.ident not in before]


# -- through `msm am-eval`, end to end, with the real client --------------------------------------

INJECT = """
import sys
from msmtools.llm.openai import OpenAIBackend
limit, max_tokens = int(sys.argv[1]), int(sys.argv[2])
calls = {"n": 0}
real = OpenAIBackend._post
async def post(self, client, payload):
    if payload["max_tokens"] == max_tokens:
        calls["n"] += 1
        if calls["n"] > limit:
            raise RuntimeError("injected fault in the worker")
    return await real(self, client, payload)
OpenAIBackend._post = post
sys.argv = ["msm", *sys.argv[3:]]
from msmtools.cli import main
main()
"""


def _am_eval(server, tiny_model, out, *extra, inject=None, timeout=120):
    args = ["am-eval", "--backend", "openai", "--base-url", server, "-m", str(tiny_model), "-c",
            "murder_none-none_replacement", "--samples", "6", "--max-tokens", "8", "--concurrency", "1",
            "-o", str(out), "-q", *extra]
    env = dict(os.environ, OPENAI_API_KEY=KEY)
    cmd = [sys.executable, "-m", "msmtools", *args] if inject is None else \
        [sys.executable, "-c", INJECT, str(inject[0]), str(inject[1]), *args]
    start = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    return r, time.monotonic() - start


def _ids(path):
    return [json.loads(x)["id"] for x in path.read_text().splitlines()] if path.exists() else []


def test_am_eval_through_the_real_client_end_to_end(server, tiny_model, tmp_path):
    out = tmp_path / "r.jsonl"
    r, _ = _am_eval(server, tiny_model, out, "--grade", "none")
    assert r.returncode == 0, r.stderr
    recs = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(recs) == 6 and len(set(_ids(out))) == 6
    assert all(x["response"] is not None and x["model"]["base"] for x in recs)
    assert KEY not in out.read_text() and KEY not in r.stderr


def test_am_eval_ends_on_a_fault_in_its_generation_worker_and_resumes(server, tiny_model, tmp_path):
    out = tmp_path / "r.jsonl"
    r, took = _am_eval(server, tiny_model, out, "--grade", "none", inject=(3, 8))
    assert r.returncode != 0 and took < 30, (took, r.stderr)
    errors = [x for x in r.stderr.splitlines() if x.startswith("msm: error:")]
    assert len(errors) == 1 and "RuntimeError: injected fault in the worker" in errors[0], r.stderr
    assert "Traceback" not in r.stderr
    kept = _ids(out)
    assert len(kept) <= 3  # what was written before the fault stays
    r, _ = _am_eval(server, tiny_model, out, "--grade", "none")
    assert r.returncode == 0, r.stderr
    ids = _ids(out)
    assert len(ids) == 6 and len(set(ids)) == 6 and ids[:len(kept)] == kept


def test_am_eval_ends_on_a_fault_in_its_overlapping_grader(server, tiny_model, tmp_path):
    out = tmp_path / "r.jsonl"
    grade = ["--grade", "all", "--grader-backend", "openai", "--grader-model", str(tiny_model),
             "--grader-max-tokens", "9", "--grader-retries", "0"]
    r, took = _am_eval(server, tiny_model, out, *grade, inject=(0, 9))
    assert r.returncode != 0 and took < 30, (took, r.stderr)
    errors = [x for x in r.stderr.splitlines() if x.startswith("msm: error:")]
    assert len(errors) == 1 and "injected fault in the worker" in errors[0], r.stderr
    assert _ids(out) == [] and not out.exists()  # nothing graded, nothing written, no empty file
