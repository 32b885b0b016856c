import orjson
import pytest

from docgen_fake import Scripted
from msmtools.llm import Completion, Request, Sampling
from msmtools.llm.cache import CachedBackend, CallCache


def _req(text, seed=0, **kw):
    return Request([{"role": "user", "content": text}], Sampling(seed=seed, **kw))


class Echo(Scripted):
    """Replies with the prompt and seed, so every distinct request has a distinct, checkable answer."""

    def __init__(self, fail_on_call=None):
        super().__init__([])
        self.fail_on_call = fail_on_call
        self.batches = 0

    def generate(self, requests, *, desc=None):
        self.batches += 1
        if self.fail_on_call is not None and self.batches == self.fail_on_call:
            raise RuntimeError("engine died")
        self.calls += len(requests)
        return [[Completion(text=f"{r.messages[0]['content']}#{r.sampling.seed}", seed=r.sampling.seed)] for r in requests]


def test_rerun_makes_zero_calls_and_returns_the_same(tmp_path):
    reqs = [_req(f"q{i}", seed=i) for i in range(5)]
    first = CachedBackend(Echo(), tmp_path, progress=False)
    a = first.generate(reqs)
    first.close()
    assert first.calls == 5 and first.hits == 0
    again = CachedBackend(Echo(), tmp_path, progress=False)
    b = again.generate(reqs)
    assert again.calls == 0 and again.backend.calls == 0 and again.hits == 5
    assert [c[0].text for c in a] == [c[0].text for c in b] == [f"q{i}#{i}" for i in range(5)]


def test_key_covers_seed_and_sampling(tmp_path):
    llm = CachedBackend(Echo(), tmp_path, progress=False)
    llm.generate([_req("q", seed=1)])
    llm.generate([_req("q", seed=2), _req("q", seed=1, max_tokens=7), _req("q", seed=1)])
    assert llm.calls == 3 and llm.hits == 1


def test_duplicates_in_one_batch_are_asked_once(tmp_path):
    llm = CachedBackend(Echo(), tmp_path, progress=False)
    out = llm.generate([_req("same"), _req("same"), _req("other")])
    assert llm.calls == 2 and out[0][0].text == out[1][0].text


def test_each_chunk_is_saved_before_the_next_one_runs(tmp_path):
    llm = CachedBackend(Echo(fail_on_call=3), tmp_path, chunk_size=2, progress=False)
    with pytest.raises(RuntimeError):
        llm.generate([_req(f"q{i}") for i in range(6)])
    llm.close()
    resumed = CachedBackend(Echo(), tmp_path, chunk_size=2, progress=False)
    resumed.generate([_req(f"q{i}") for i in range(6)])
    assert resumed.hits == 4 and resumed.calls == 2


def test_errors_are_not_cached_but_truncations_are(tmp_path):
    replies = [Completion(text="", finish_reason="error", error="timeout"),
               Completion(text="cut", truncated=True, finish_reason="length")]
    llm = CachedBackend(Scripted(replies), tmp_path, progress=False)
    llm.generate([_req("a"), _req("b")])
    llm.close()
    again = CachedBackend(Scripted(["fine now"]), tmp_path, progress=False)
    out = again.generate([_req("a"), _req("b")])
    assert again.calls == 1 and out[0][0].text == "fine now" and out[1][0].truncated


def test_torn_tail_is_ignored_and_never_patched(tmp_path):
    llm = CachedBackend(Echo(), tmp_path, progress=False)
    llm.generate([_req("kept"), _req("torn")])
    llm.close()
    [path] = list(tmp_path.glob("calls-*.jsonl"))
    data = path.read_bytes()
    path.write_bytes(data[:-20])  # a SIGKILL in the middle of the second entry
    cache = CallCache(tmp_path)
    assert len(cache) == 1
    again = CachedBackend(Echo(), tmp_path, progress=False)
    again.generate([_req("kept"), _req("torn")])
    assert again.calls == 1 and again.hits == 1
    assert path.read_bytes() == data[:-20]  # the damaged file is left alone; new entries go to a new file
    for p in tmp_path.glob("calls-*.jsonl"):
        for line in p.read_bytes().splitlines()[:-1]:
            orjson.loads(line)


def test_two_processes_sharing_a_folder_see_each_others_entries(tmp_path):
    a = CachedBackend(Echo(), tmp_path, progress=False)
    b = CachedBackend(Echo(), tmp_path, progress=False)
    a.generate([_req("from a")])
    assert b.refresh() == 1
    b.generate([_req("from a")])
    assert b.calls == 0 and b.hits == 1
