"""Scored JSONL -> counts per (variant, split, training seed) of every unpaired rate score: polars reads.

compare knows no score by name: each input's declarations (`scorers`, see msmtools.scores) say which scores
exist and how they aggregate. This module counts the unpaired rates (the `rate` scores without `pair`);
`paired.py` reads the paired scores and the means. Each file is scanned lazily with a schema of only the
columns needed (the response text is never materialised) and aggregated by the streaming engine, so memory
grows with the number of groups, not records. polars cannot say which line broke, so validation is lazy:
when polars fails, or its counts show something that needs a closer look (a null label, a null score that
might be a missing key), a line-by-line pass over that file names the record as file:line: field.

Records written before scores existed are upgraded on reading (`msmtools.scores.upgrade`), into a
temporary copy.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field as dc_field
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from .. import jsonl, scores
from ..errors import MsmError, at
from ..scores import Scorer

VARIANT, ROW = "variant", "_row"
SEED = "training_seed"  # the field in the records
CLUSTER = "_seed"  # its column in the counts: the cluster of the seed bootstrap
SELF_FIELD = "self_judged"  # a judge or grader of the record was the evaluated model itself
SELF = "_self_judged"


@dataclass
class Source:
    """One input file; `label` overrides every record's label (`--variant NAME=FILE`)."""

    name: str  # as the user wrote it, for messages
    path: Path  # what is read (a spooled or upgraded copy where needed)
    label: str | None = None
    scorers: dict[str, Scorer] = dc_field(default_factory=dict)  # declared in this file
    records: int = 0  # records counted for its unpaired rates
    nulls: dict[str, int] = dc_field(default_factory=dict)  # undecided records per score
    upgraded: int = 0  # records without scores, upgraded on reading
    id_hashes: Any = None  # hashes of the file's ids: a repeat (or a collision) sends compare to the duplicates pass
    suspect_labels: bool = False  # a label reads like a number: the exact scan checks it was written as text


@dataclass
class Counts:
    """One row per (variant, split values, training seed): `rows`, `<metric>:k` (true) and `<metric>:null`."""

    frame: pl.DataFrame | None
    by: list[str]
    metrics: list[str]  # unpaired rate scores, in order of first declaration
    sources: list[Source]
    duplicates_dropped: int = 0  # records whose id was already counted


def metric_cols(metric: str) -> tuple[str, str]:
    return f"{metric}:k", f"{metric}:null"


@contextmanager
def sources(paths: list[str], labels: dict[str, str]) -> Iterator[list[Source]]:
    """Resolve inputs (positional files plus `--variant NAME=FILE` files), spooling stdin to a temp file,
    and read each file's score declarations (upgrading records from before scores into a temp copy)."""
    order = [*paths, *(p for p in labels if p not in paths)]  # a labelled file may also be listed once
    seen: dict[str, str] = {}
    temps: list[str] = []
    out = []
    try:
        for name in order:
            if name == jsonl.STDIO:
                if any(s.name == jsonl.display_name(jsonl.STDIO) for s in out):
                    raise MsmError("'-' given twice: stdin can be read once")
                fd, spool = tempfile.mkstemp(prefix="msm-compare-stdin.", suffix=".jsonl")
                temps.append(spool)
                with os.fdopen(fd, "wb") as f:
                    shutil.copyfileobj(sys.stdin.buffer, f, 1 << 20)
                path = Path(spool)
            else:
                path = Path(name)
                if not path.exists():
                    raise MsmError(f"{name}: no such file")
                if path.is_dir():
                    raise MsmError(f"{name}: is a folder, expected a JSONL file")
                key = str(path.resolve())
                if key in seen:
                    raise MsmError(f"{name}: given twice (as {seen[key]!r} too); each file counts once")
                seen[key] = name
            src = Source(jsonl.display_name(name), path, labels.get(name))
            _declarations(src, temps)
            out.append(src)
        yield out
    finally:
        for t in temps:
            with_suppress_unlink(t)


def with_suppress_unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _declarations(src: Source, temps: list[str]) -> None:
    """Every distinct `scorers` object in the file (polars reads it as text: a few distinct values), and
    whether any id repeats, in one pass."""
    import numpy as np

    q = pl.scan_ndjson(src.path, schema={"id": pl.String, "scorers": pl.String, "label": pl.String})
    try:
        decl = (q.group_by("scorers").agg(pl.len(), pl.col("id").drop_nulls().hash().alias("h"),
                                          pl.col("label").drop_nulls().unique().alias("labels"))
                .collect(engine="streaming"))
    except pl.exceptions.PolarsError as e:
        _locate(src, str(e))
        raise  # unreachable
    hashes = [np.asarray(h, dtype=np.uint64) for h in decl["h"].to_list()]
    src.id_hashes = np.concatenate(hashes) if hashes else np.zeros(0, dtype=np.uint64)
    # polars reads a label 7 as "7": only a label that reads like a number or a boolean needs the exact look
    src.suspect_labels = any(_LOOKS_NUMERIC.fullmatch(x) for ls in decl["labels"].to_list() for x in ls)
    if decl["scorers"].null_count():
        _upgrade(src, temps)
        return _declarations(src, temps)
    for text in decl["scorers"].to_list():
        try:
            obj = orjson.loads(text)
            if not isinstance(obj, dict):
                raise ValueError("expected an object")
            for name, d in obj.items():
                s = Scorer.read(name, d)
                if name in src.scorers and src.scorers[name] != s:
                    raise ValueError(f"{name}: declared two ways in one file")
                src.scorers[name] = s
        except (ValueError, orjson.JSONDecodeError):
            _locate(src, "a bad score declaration")


def _upgrade(src: Source, temps: list[str]) -> None:
    """Records without scores (from before scores existed): add them by kind, into a temporary copy."""
    fd, tmp = tempfile.mkstemp(prefix="msm-compare-upgraded.", suffix=".jsonl")
    temps.append(tmp)
    n = 0
    with os.fdopen(fd, "wb") as f:
        for line, rec in jsonl.iter_lines(src.path):
            if rec.get("scorers") is None:
                new = scores.upgrade(rec)
                if new is None:
                    raise at(src.name, line, "scores", "missing: not a record of an msm evaluator (rollout, tagged "
                             f"or value; got kind {rec.get('kind')!r}); is this the right file?")
                rec, n = new, n + 1
            f.write(orjson.dumps(rec) + b"\n")
    src.path, src.upgraded = Path(tmp), n


def unpaired_rates(srcs: list[Source]) -> list[str]:
    """The unpaired rate scores declared by any input, in order of first declaration."""
    out: dict[str, None] = {}
    for s in srcs:
        out.update((n, None) for n, d in s.scorers.items() if d.aggregate == "rate" and d.pair is None)
    return list(out)


def _check(rec: dict[str, Any], where: tuple[str, int], src: Source) -> None:
    """Raise MsmError naming the first problem with one record (the rules polars enforces, spelled out)."""
    decl = rec.get("scorers")
    if not isinstance(decl, dict):
        raise at(*where, "scorers", "missing: the record does not say what it scores")
    for name, d in decl.items():
        try:
            Scorer.read(name, d)
        except ValueError as e:
            raise at(*where, f"scorers.{name}", str(e)) from None
    if src.label is None:
        if rec.get("label") is None:
            raise at(*where, "label", "missing (give --variant NAME=FILE to name the variant of a whole file)")
        if not isinstance(rec["label"], str):
            raise at(*where, "label", f"expected a string, got {type(rec['label']).__name__}")
    seed = rec.get(SEED)
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise at(*where, SEED, f"expected an integer or null, got {type(seed).__name__}")
    judged = rec.get(SELF_FIELD)
    if judged is not None and not isinstance(judged, bool):
        raise at(*where, SELF_FIELD, f"expected true, false or null, got {type(judged).__name__}")
    values = rec.get("scores")
    if not isinstance(values, dict):
        raise at(*where, "scores", "missing (expected an object of the declared scores)")
    for name, d in decl.items():
        if name not in values:
            raise at(*where, f"scores.{name}", "missing (declared in scorers; null if undecided)")
        why = scores.check_value(Scorer.read(name, d), values[name])
        if why:
            raise at(*where, f"scores.{name}", f"{why}, got {orjson.dumps(values[name]).decode()[:40]}")


def _locate(src: Source, why: str) -> None:
    """The slow pass: find and name the first bad record; if none is found, report polars' own words."""
    for lineno, rec in jsonl.iter_lines(src.path):
        _check(rec, (src.name, lineno), src)
    raise MsmError(f"{src.name}: could not be read ({why.strip().splitlines()[0][:200]})")


_NON_STRING_LABEL = re.compile(rb'"label"\s*:\s*[^"\s]')
_LOOKS_NUMERIC = re.compile(r"-?\d+(\.\d+)?([eE][+-]?\d+)?|true|false")


def _check_labels(src: Source) -> None:
    """polars would read a numeric label as a string: find any top-level label that is not a string.

    A byte search in large blocks; each matching line is parsed (the match may be a nested key)."""
    if src.label is not None or not src.suspect_labels:
        return
    lineno, carry = 0, b""
    with src.path.open("rb") as f:
        while True:
            block = f.read(1 << 24)
            buf = carry + block
            end = len(buf) if not block else buf.rfind(b"\n") + 1
            pos = 0
            for m in _NON_STRING_LABEL.finditer(buf, 0, end):
                start = buf.rfind(b"\n", 0, m.start()) + 1
                if start < pos:
                    continue
                stop = buf.find(b"\n", m.start(), end)
                stop = end if stop < 0 else stop
                line = lineno + buf.count(b"\n", 0, start) + 1
                try:
                    rec = orjson.loads(buf[start:stop])
                except orjson.JSONDecodeError:
                    rec = None
                if isinstance(rec, dict) and "label" in rec and not isinstance(rec["label"], str):
                    _check(rec, (src.name, line), src)
                pos = stop
            lineno += buf.count(b"\n", 0, end)
            carry = buf[end:]
            if not block:
                return


def _path(name: str) -> str:
    """The JSONPath of a top-level key, quoted (score names may hold ':' or '-')."""
    return "$['" + name.replace("\\", "\\\\").replace("'", "\\'") + "']"


def _key(name: str) -> str:
    """A regex for the key `name` in a flat JSON object's text (its values are true, false, null or numbers)."""
    return re.escape(orjson.dumps(name).decode()) + r"\s*:"


def _query(index: int, src: Source, by: list[str], metrics: list[str]
           ) -> tuple[pl.LazyFrame, list[pl.Expr], list[pl.Expr]]:
    """(this file's records that declare an unpaired rate, with a variant column; grouping keys; aggregations).

    A record of that population that does not declare a score (an untagged rollout beside tagged ones)
    counts as null for it: present, not measured."""
    mine = [m for m in metrics if m in src.scorers]
    # scores and scorers are read as their JSON text: one JSON-path lookup per score gives its value ("true",
    # "false"; null when null or absent) and whether the record declares it, and a key search tells a null
    # from a missing key, all inside the one scan (no byte pass over the file)
    schema: dict[str, Any] = {"id": pl.String, SEED: pl.Int64, SELF_FIELD: pl.Boolean, "scores": pl.String,
                              "scorers": pl.String}
    if src.label is None:
        schema["label"] = pl.String
    for b in by:
        schema.setdefault(b, pl.String)
    variant = pl.lit(src.label, pl.String) if src.label is not None else pl.col("label")
    declared = [pl.col("scorers").str.json_path_match(_path(m) + ".aggregate").is_not_null().alias(f"decl:{m}")
                for m in mine]
    values = [pl.col("scores").str.json_path_match(_path(m)).alias(f"score:{m}") for m in mine]
    present = [pl.col("scores").str.contains(_key(m)).fill_null(False).alias(f"has:{m}") for m in mine]
    aggs = [pl.len().alias("rows"), pl.col(ROW).min().alias("_first"), pl.col(SELF_FIELD).fill_null(False).sum().alias(SELF)]
    for m in mine:
        k, null = metric_cols(m)
        s, d, h = pl.col(f"score:{m}"), pl.col(f"decl:{m}"), pl.col(f"has:{m}")
        decided = s.is_in(["true", "false"]) & d
        aggs += [((s == "true") & d).sum().alias(k), (pl.len() - decided.sum()).alias(null),
                 (d & ~h).sum().alias(f"{m}:missing"),
                 (d & s.is_not_null() & ~s.is_in(["true", "false"])).sum().alias(f"{m}:invalid")]
    frame = (pl.scan_ndjson(src.path, schema=schema, row_index_name=ROW)
             .with_columns(*declared, *values, *present)
             .filter(pl.any_horizontal([pl.col(f"decl:{m}") for m in mine]) if mine else pl.lit(False))
             .with_columns(variant.alias(VARIANT), pl.lit(index, pl.Int64).alias("_file"))
             .drop(["scores", "scorers"]))
    keys = [pl.col(VARIANT), *(pl.col(b).cast(pl.String) for b in by), pl.col(SEED).alias(CLUSTER), pl.col("_file")]
    return frame, keys, aggs


def _checked(frame: pl.DataFrame, src: Source, metrics: list[str]) -> pl.DataFrame:
    """Validate one file's aggregated counts (naming the bad record) and note its totals."""
    if frame.height and frame[VARIANT].null_count():
        _locate(src, "null label")
    for m in metrics:
        if f"{m}:missing" not in frame.columns:
            continue
        if frame.height and (frame[f"{m}:missing"].sum() or frame[f"{m}:invalid"].sum()):
            _locate(src, f"scores.{m} missing or not true, false or null")
        src.nulls[m] = int(frame[metric_cols(m)[1]].sum()) if frame.height else 0
    src.records = int(frame["rows"].sum()) if frame.height else 0
    return frame.drop([c for c in frame.columns if c.endswith((":missing", ":invalid"))])


def _collect(query: pl.LazyFrame, src: Source) -> pl.DataFrame:
    try:
        return query.collect(engine="streaming")
    except pl.exceptions.PolarsError as e:
        _locate(src, str(e))
        raise  # unreachable: _locate always raises


def _scan_file(index: int, src: Source, by: list[str], metrics: list[str]) -> pl.DataFrame:
    frame, keys, aggs = _query(index, src, by, metrics)
    return _checked(_collect(frame.group_by(keys).agg(aggs), src), src, metrics)


def _duplicates(srcs: list[Source]) -> int:
    """Records whose id appeared before (counted once); ids whose copies disagree on their scores are refused."""
    frames = [pl.scan_ndjson(s.path, schema={"id": pl.String, "scores": pl.String}) for s in srcs]
    ids = pl.concat(frames).filter(pl.col("id").is_not_null())
    try:
        rep = (ids.group_by("id").agg(pl.len().alias("copies"), pl.col("scores").n_unique().alias("values"))
               .filter(pl.col("copies") > 1).collect(engine="streaming"))
    except pl.exceptions.PolarsError:
        return 0  # a malformed file: the main pass names the bad record
    if not rep.height:
        return 0
    bad = rep.filter(pl.col("values") > 1)
    if bad.height:
        raise MsmError(f"id {bad['id'][0]} appears {bad['copies'][0]} times with different scores ({bad.height} "
                       "such id(s)); the inputs overlap (a file given twice under two names, or re-graded records "
                       "beside the originals?): give each record once")
    return int((rep["copies"] - 1).sum())


def _ids_may_repeat(srcs: list[Source]) -> bool:
    """Whether any id occurs twice among the inputs, from the hashes the declarations pass kept: no repeat
    means none (the exact duplicates pass is skipped); a repeat, or a hash collision, runs it."""
    import numpy as np

    hashes = [s.id_hashes for s in srcs if s.id_hashes is not None and len(s.id_hashes)]
    if not hashes:
        return False
    allh = np.concatenate(hashes)
    return len(np.unique(allh)) != len(allh)


def _scan_dedup(srcs: list[Source], by: list[str], metrics: list[str]) -> pl.DataFrame:
    """All inputs as one query in which each id counts once (records without an id are all kept)."""
    parts = [_query(i, s, by, metrics) for i, s in enumerate(srcs)]
    keys = parts[0][1]
    aggs: list[pl.Expr] = []
    for _, _, a in parts:
        names = {e.meta.output_name() for e in aggs}
        aggs += [e for e in a if e.meta.output_name() not in names]
    frame = pl.concat([p[0] for p in parts], how="diagonal_relaxed")
    once = pl.concat([frame.filter(pl.col("id").is_null()),
                      frame.filter(pl.col("id").is_not_null()).unique(subset=["id"], keep="any")],
                     how="diagonal_relaxed")
    try:
        agg = once.group_by(keys).agg(aggs).collect(engine="streaming")
    except pl.exceptions.PolarsError as e:
        for i, s in enumerate(srcs):  # find and name the bad record
            _scan_file(i, s, by, metrics)
        raise MsmError(f"inputs could not be read ({str(e).strip().splitlines()[0][:200]})") from None
    out = [_checked(agg.filter(pl.col("_file") == i), s, metrics) for i, s in enumerate(srcs)]
    return pl.concat([f for f in out if f.height], how="diagonal_relaxed") if any(f.height for f in out) else agg.clear()


def scan(srcs: list[Source], by: list[str], only: list[str] | None = None) -> Counts:
    """Counts per group of every unpaired rate score (`only`: those of them to report)."""
    metrics = [m for m in unpaired_rates(srcs) if only is None or m in only]
    srcs_r = [s for s in srcs if any(m in s.scorers for m in metrics)]
    if not metrics or not srcs_r:
        return Counts(None, by, [], srcs)
    for src in srcs_r:
        _check_labels(src)
    dropped = _duplicates(srcs_r) if _ids_may_repeat(srcs_r) else 0
    if dropped:
        frames = [_scan_dedup(srcs_r, by, metrics)]
    else:
        frames = [_scan_file(i, src, by, metrics) for i, src in enumerate(srcs_r)]
    frames = [f for f in frames if f.height]
    if not frames:
        raise MsmError(f"no scored records in {', '.join(s.name for s in srcs_r)}")
    frame = pl.concat(frames, how="diagonal_relaxed")
    for m in metrics:
        k, null = metric_cols(m)
        if k not in frame.columns:  # a file without this score: all its records count as null for it
            frame = frame.with_columns(pl.lit(0).alias(k), pl.col("rows").alias(null))
        else:
            frame = frame.with_columns(pl.col(k).fill_null(0), pl.col(null).fill_null(pl.col("rows")))
    keys = [VARIANT, *by, CLUSTER]
    # the same group can come from several files (shards): add them up; order = first appearance
    order = (pl.col("_file") * (1 << 40) + pl.col("_first")).min().alias("_order")
    sums = [pl.col(c).sum() for m in metrics for c in metric_cols(m)]
    frame = frame.group_by(keys).agg(pl.col("rows").sum(), pl.col(SELF).sum(), order, *sums)
    return Counts(frame, by, metrics, srcs, dropped)
