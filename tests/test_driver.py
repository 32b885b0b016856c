"""The one stage loop: resuming, final and retried errors, shards, atomic mode, thread-safe writes."""

import threading

import pytest

from msmtools import jsonl
from msmtools.driver import Stage, rejects_path


def _solve(bad: set[int], final: set[int]):
    def solve(chunk):
        for i in chunk:
            if i in bad:
                yield {"kind": "error", "id": f"e{i}", "input": i, "message": "backend down", "retry": True}
            elif i in final:
                yield {"kind": "error", "id": f"e{i}", "input": i, "message": "no text", "retry": False}
            else:
                yield {"kind": "item", "id": f"r{i}", "i": i}
    return solve


def _run(out, items, solve, **kw):
    with Stage("test", str(out), kinds=("item",), progress=False, chunk_size=3, **kw) as st:
        st.resume()
        todo = st.todo(items, key=str, record_id=lambda i: (f"r{i}", f"e{i}"))
        st.run(todo, solve)
    return st.counts


def test_rerun_retries_backend_failures_but_not_bad_items(tmp_path):
    out = tmp_path / "out.jsonl"
    c = _run(out, range(10), _solve(bad={2, 5}, final={7}))
    assert (c.inputs, c.written, c.rejected, c.retry) == (10, 7, 3, 2)
    assert rejects_path(str(out)) == str(tmp_path / "out.rejects.jsonl")
    again = _run(out, range(10), _solve(bad=set(), final={7}))
    assert (again.written, again.done_before, again.rejected) == (2, 8, 0)  # 2 and 5 retried, 7 not
    ids = [r["id"] for r in jsonl.read(out)]
    assert sorted(ids) == sorted(f"r{i}" for i in range(10) if i != 7) and len(ids) == len(set(ids))


def test_shards_partition_and_balance(tmp_path):
    seen = []
    for k in range(4):
        c = _run(tmp_path / f"s{k}.jsonl", range(27), _solve(set(), set()), shard=jsonl.Shard(k, 4))
        assert c.written + c.other_shard == 27 and c.written in (6, 7)
        seen += [r["i"] for r in jsonl.read(tmp_path / f"s{k}.jsonl")]
    assert sorted(seen) == list(range(27))


def test_atomic_stage_leaves_nothing_on_failure_and_writes_whole_on_success(tmp_path):
    out = tmp_path / "docs.jsonl"
    with pytest.raises(RuntimeError):
        with Stage("gen", str(out), append=False, progress=False) as st:
            st.emit({"kind": "doc", "id": "a"})
            raise RuntimeError("killed")
    assert not out.exists() and not (tmp_path / "docs.rejects.jsonl").exists()
    with Stage("gen", str(out), append=False, progress=False) as st:
        st.emit({"kind": "doc", "id": "a"})
        st.emit({"kind": "error", "id": "b", "message": "bad"})
    assert [r["id"] for r in jsonl.read(out)] == ["a"]
    [err] = jsonl.read(tmp_path / "docs.rejects.jsonl")
    assert err["stage"] == "gen" and err["retry"] is True


def test_writes_from_threads_are_whole_records(tmp_path):
    out = tmp_path / "t.jsonl"
    with Stage("t", str(out), progress=False) as st:
        threads = [threading.Thread(target=lambda k=k: [st.write({"kind": "x", "id": f"{k}-{j}", "pad": "y" * 500})
                                                         for j in range(200)]) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    recs = list(jsonl.read(out))
    assert len(recs) == st.counts.written == 800 and len({r["id"] for r in recs}) == 800


def test_second_writer_is_refused(tmp_path):
    from msmtools.errors import MsmError

    out = tmp_path / "o.jsonl"
    with Stage("a", str(out), progress=False) as st:
        st.write({"kind": "x", "id": "1"})
        with pytest.raises(MsmError, match="another msm process"):
            with Stage("b", str(out), progress=False):
                pass
    assert [r["id"] for r in jsonl.read(out)] == ["1"]
