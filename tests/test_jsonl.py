import os
import signal
import subprocess
import sys
import textwrap

import pytest

from msmtools import jsonl
from msmtools.errors import MsmError


def test_read_names_file_and_line(tmp_path):
    p = tmp_path / "in.jsonl"
    p.write_text('{"a": 1}\n\n{"a": 2}\n{"a": \n')
    it = jsonl.iter_lines(p)
    assert next(it) == (1, {"a": 1})
    assert next(it) == (3, {"a": 2})
    with pytest.raises(MsmError, match=rf"{p}:4: invalid JSON"):
        next(it)


def test_non_object_line_is_an_error(tmp_path):
    p = tmp_path / "in.jsonl"
    p.write_text("[1, 2]\n")
    with pytest.raises(MsmError, match=":1: expected a JSON object, got list"):
        list(jsonl.read(p))


def test_field_checks_type_and_presence():
    where = ("x.jsonl", 7)
    assert jsonl.field({"text": "hi"}, "text", str, where) == "hi"
    with pytest.raises(MsmError, match="x.jsonl:7: text: missing"):
        jsonl.field({}, "text", str, where)
    with pytest.raises(MsmError, match="x.jsonl:7: n: expected int, got bool"):
        jsonl.field({"n": True}, "n", int, where)
    assert jsonl.field({}, "n", int, where, default=3) == 3


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    p = tmp_path / "out.jsonl"
    jsonl.write(p, [{"v": 1}])
    with pytest.raises(RuntimeError):
        with jsonl.Writer(p) as w:
            w.write({"v": 2})
            raise RuntimeError("boom")
    assert list(jsonl.read(p)) == [{"v": 1}]
    assert [f for f in os.listdir(tmp_path) if f.endswith(".tmp")] == []


def test_append_repairs_torn_tail_and_resumes(tmp_path):
    p = tmp_path / "out.jsonl"
    p.write_bytes(b'{"id": "a"}\n{"id": "b"}\n{"id": "c", "te')  # killed mid-write
    assert jsonl.existing(p) == {"a", "b"}
    with jsonl.Writer(p, append=True) as w:
        w.write({"id": "c"})
    assert [r["id"] for r in jsonl.read(p)] == ["a", "b", "c"]


def test_second_writer_refused_before_first_writes_keeps_the_file(tmp_path):
    """The loser of a race on a new output must not remove the file the winner just created."""
    from msmtools.errors import MsmError

    p = tmp_path / "new.jsonl"
    with jsonl.Writer(p, append=True) as w:
        with pytest.raises(MsmError, match="another msm process"):
            jsonl.Writer(p, append=True)
        w.write({"id": "a"})
    assert [r["id"] for r in jsonl.read(p)] == ["a"]


def test_failed_append_run_keeps_an_empty_file_it_did_not_create(tmp_path):
    # (that it removes one it created: tests/test_reliability.py::test_a_failed_append_run_leaves_no_empty_file)
    q = tmp_path / "old.jsonl"
    q.write_text("")
    with pytest.raises(RuntimeError):
        with jsonl.Writer(q, append=True):
            raise RuntimeError("boom")
    assert q.exists()


def test_sigkill_during_append_never_tears_a_line(tmp_path):
    p = tmp_path / "out.jsonl"
    code = textwrap.dedent(f"""
        from msmtools import jsonl
        w = jsonl.Writer({str(p)!r}, append=True)
        i = 0
        while True:
            w.write({{"id": str(i), "pad": "x" * 5000}}); i += 1
    """)
    proc = subprocess.Popen([sys.executable, "-c", code])
    import time

    deadline = time.time() + 20
    while (not p.exists() or p.stat().st_size < 200_000) and time.time() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    ids = jsonl.existing(p)
    assert len(ids) > 10
    assert [r["id"] for r in jsonl.read(p)] == [str(i) for i in range(len(ids))]


def test_shard_partition_is_deterministic_and_complete():
    keys = [f"item-{i}" for i in range(1000)]
    shards = [jsonl.Shard(i, 4) for i in range(4)]
    owners = [[s.owns(k) for s in shards].count(True) for k in keys]
    assert owners == [1] * 1000
    sizes = [sum(s.owns(k) for k in keys) for s in shards]
    assert all(200 < n < 300 for n in sizes)
    assert jsonl.Shard.parse("2/4") == jsonl.Shard(2, 4)
    # select: the run's whole set dealt by hash rank, so sizes differ by at most one, whatever the input order
    conditions = [f"variant|condition-{i}" for i in range(27)]
    picked = [jsonl.Shard(i, 27).select(conditions) for i in range(27)]
    assert [len(p) for p in picked] == [1] * 27 and set().union(*picked) == set(conditions)
    assert jsonl.Shard(3, 27).select(reversed(conditions)) == picked[3]
    sizes = sorted(len(jsonl.Shard(i, 8).select(keys)) for i in range(8))
    assert sizes[-1] - sizes[0] <= 1 and sum(sizes) == 1000
    assert jsonl.Shard().select(keys) == set(keys)
    for bad in ("4/4", "x", "1/0", "-1/3"):
        with pytest.raises(MsmError, match="--shard"):
            jsonl.Shard.parse(bad)


def test_streaming_reads_big_file_in_constant_memory(tmp_path):
    import resource

    p = tmp_path / "big.jsonl"
    line = jsonl.dumps({"id": "x", "text": "y" * 1000})
    with p.open("wb") as f:
        for _ in range(100_000):  # ~100 MB
            f.write(line)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    n = sum(1 for _ in jsonl.read(p))
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert n == 100_000
    assert (after - before) < 50_000  # KiB: far less than the 100 MB file
