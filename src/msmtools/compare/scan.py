"""Rollout/tagged JSONL -> counts per (variant, split, training seed): polars does the reading.

Each file is scanned lazily with a schema of only the columns compare needs (the response text is
never materialised) and aggregated by the streaming engine, so memory grows with the number of groups,
not records. polars cannot say which line broke, so validation is lazy: when polars fails, or its
counts show something that needs a closer look (a null label, a kind other than rollout/tagged, a null
`harmful` that might be a missing key), a line-by-line pass over that file finds the record and names
it as file:line: field.
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

from .. import jsonl
from ..errors import MsmError, at

KINDS = ("rollout", "tagged")
HEAD = 1000  # records read per file to discover tag names
VARIANT, ROW = "variant", "_row"
SEED = "training_seed"  # the field in the records
CLUSTER = "_seed"  # its column in the counts: the cluster of the seed bootstrap
HARMFUL = "harmful"
SELF = "_self_graded"  # records whose grader was the evaluated model (grader.self)


@dataclass
class Source:
    """One input file; `label` overrides every record's label (`--variant NAME=FILE`)."""

    name: str  # as the user wrote it, for messages
    path: Path  # what is read (a spooled copy for stdin)
    label: str | None = None
    tags: list[str] = dc_field(default_factory=list)
    rules: list[str] = dc_field(default_factory=list)  # scoring rules in `harmful_by`
    records: int = 0
    harmful_null: int = 0


@dataclass
class Counts:
    """One row per (variant, split values, training seed): `rows`, `<metric>:k` (true) and `<metric>:null`."""

    frame: pl.DataFrame
    by: list[str]
    metrics: list[str]  # "harmful" first, then tag names
    sources: list[Source]
    duplicates_dropped: int = 0  # records whose id was already counted
    rule_disagreements: dict[str, int] = dc_field(default_factory=dict)  # per variant, where two rules exist


def metric_cols(metric: str) -> tuple[str, str]:
    return f"{metric}:k", f"{metric}:null"


@contextmanager
def sources(paths: list[str], labels: dict[str, str]) -> Iterator[list[Source]]:
    """Resolve inputs (positional files plus `--variant NAME=FILE` files), spooling stdin to a temp file."""
    order = [*paths, *(p for p in labels if p not in paths)]  # a labelled file may also be listed once
    seen: dict[str, str] = {}
    spool = None
    out = []
    try:
        for name in order:
            if name == jsonl.STDIO:
                if spool:
                    raise MsmError("'-' given twice: stdin can be read once")
                fd, spool = tempfile.mkstemp(prefix="msm-compare-stdin.", suffix=".jsonl")
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
            out.append(Source(jsonl.display_name(name), path, labels.get(name)))
        yield out
    finally:
        if spool:
            os.unlink(spool)


RULES = "harmful_by"  # the rollout's harmful value under each scoring rule am-eval could compute
RULE_METRIC = "harmful:"  # metric name prefix of a scoring rule's rate
DISAGREE = "_rules_disagree"  # records whose rules (grader; gate-and-grader) disagree


def _discover_rules(src: Source) -> list[str]:
    """Scoring rules (keys of `harmful_by`) in the first HEAD records."""
    names: dict[str, None] = {}
    for i, (_, rec) in enumerate(jsonl.iter_lines(src.path)):
        if i >= HEAD:
            break
        if isinstance(rec.get(RULES), dict):
            names.update(dict.fromkeys(k for k, v in rec[RULES].items() if v is None or isinstance(v, bool)))
    return list(names)


def _discover_tags(src: Source) -> list[str]:
    """Tag names (boolean-valued keys of `tags`) in the first HEAD records, in first-seen order."""
    names: dict[str, None] = {}
    for i, (_, rec) in enumerate(jsonl.iter_lines(src.path)):
        if i >= HEAD:
            break
        tags = rec.get("tags")
        if isinstance(tags, dict):
            for t, v in tags.items():
                if v is None or isinstance(v, bool):
                    names.setdefault(t, None)
    return list(names)


def _check(rec: dict[str, Any], where: tuple[str, int], src: Source) -> None:
    """Raise MsmError naming the first problem with one record (the rules polars enforces, spelled out)."""
    kind = rec.get("kind")
    if kind is not None and kind not in KINDS:
        raise at(*where, "kind", f"expected rollout or tagged records, got {kind!r} (is this the right file?)")
    if src.label is None:
        if rec.get("label") is None:
            raise at(*where, "label", "missing (give --variant NAME=FILE to name the variant of a whole file)")
        if not isinstance(rec["label"], str):
            raise at(*where, "label", f"expected a string, got {type(rec['label']).__name__}")
    if HARMFUL not in rec:
        raise at(*where, HARMFUL, "missing (expected true, false or null)")
    if rec[HARMFUL] is not None and not isinstance(rec[HARMFUL], bool):
        raise at(*where, HARMFUL, f"expected true, false or null, got {orjson.dumps(rec[HARMFUL]).decode()[:40]}")
    seed = rec.get(SEED)
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise at(*where, SEED, f"expected an integer or null, got {type(seed).__name__}")
    tags = rec.get("tags")
    if src.tags and tags is not None:
        if not isinstance(tags, dict):
            raise at(*where, "tags", f"expected an object, got {type(tags).__name__}")
        for t in src.tags:
            v = tags.get(t)
            if v is not None and not isinstance(v, bool):
                raise at(*where, f"tags.{t}", f"expected true, false or null, got {type(v).__name__}")


def _locate(src: Source, why: str) -> None:
    """The slow pass: find and name the first bad record; if none is found, report polars' own words."""
    for lineno, rec in jsonl.iter_lines(src.path):
        _check(rec, (src.name, lineno), src)
    raise MsmError(f"{src.name}: could not be read ({why.strip().splitlines()[0][:200]})")


NULL_PATTERNS = (b'"harmful":null', b'"harmful": null')  # as orjson and json.dumps write it


def _explicit_nulls(path: Path, pattern: bytes) -> int:
    """Records whose top-level `harmful` is present and null, written as `pattern`.

    A byte search in large blocks (fast); each line with a match is parsed to be sure the key is
    top-level. A null written some other way is not counted, which only sends the caller to the exact pass.
    """
    count, carry = 0, b""
    with path.open("rb") as f:
        while True:
            block = f.read(1 << 24)
            buf = carry + block
            end = len(buf) if not block else buf.rfind(b"\n") + 1
            i = buf.find(pattern, 0, end)
            while i >= 0:
                start = buf.rfind(b"\n", 0, i) + 1
                stop = buf.find(b"\n", i, end)
                stop = end if stop < 0 else stop
                try:
                    rec = orjson.loads(buf[start:stop])
                    count += isinstance(rec, dict) and rec.get(HARMFUL, False) is None
                except orjson.JSONDecodeError:
                    pass
                i = buf.find(pattern, stop, end)
            carry = buf[end:]
            if not block:
                return count


_NON_STRING_LABEL = re.compile(rb'"label"\s*:\s*[^"\s]')


def _check_labels(src: Source) -> None:
    """polars would read a numeric label as a string: find any top-level label that is not a string.

    A byte search in large blocks; each matching line is parsed (the match may be a nested key)."""
    if src.label is not None:
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


def _nulls_are_explicit(path: Path, nulls: int) -> bool:
    """True when every record polars read as `harmful` null has the key (null), none lacks it."""
    found = 0
    for pattern in NULL_PATTERNS:
        found += _explicit_nulls(path, pattern)
        if found >= nulls:
            return found == nulls
    return False


def _query(index: int, src: Source, by: list[str]) -> tuple[pl.LazyFrame, list[pl.Expr], list[pl.Expr]]:
    """(this file's records with a variant column, grouping keys, aggregations)."""
    schema: dict[str, Any] = {"kind": pl.String, "id": pl.String, HARMFUL: pl.Boolean, SEED: pl.Int64,
                              "grader": pl.Struct({"self": pl.Boolean})}
    if src.label is None:
        schema["label"] = pl.String
    for b in by:
        schema.setdefault(b, pl.String)
    if src.tags:
        schema["tags"] = pl.Struct({t: pl.Boolean for t in src.tags})
    if src.rules:
        schema[RULES] = pl.Struct({r: pl.Boolean for r in src.rules})
    variant = pl.lit(src.label, pl.String) if src.label is not None else pl.col("label")
    aggs = [
        pl.len().alias("rows"),
        pl.col(ROW).min().alias("_first"),
        pl.col("kind").is_in(KINDS).not_().fill_null(False).sum().alias("_bad_kind"),
        pl.col(HARMFUL).sum().alias(f"{HARMFUL}:k"),
        pl.col(HARMFUL).null_count().alias(f"{HARMFUL}:null"),
        pl.col(SELF).fill_null(False).sum().alias(SELF),
    ]
    # flat columns (not the tags struct), so that files with different tags can be read as one query
    flat = [pl.col("tags").struct.field(t).alias(f"tag:{t}") for t in src.tags]
    for t in src.tags:
        aggs += [pl.col(f"tag:{t}").sum().alias(f"{t}:k"), pl.col(f"tag:{t}").null_count().alias(f"{t}:null")]
    flat += [pl.col(RULES).struct.field(r).alias(f"rule:{r}") for r in src.rules]
    for r in src.rules:
        m = RULE_METRIC + r
        aggs += [pl.col(f"rule:{r}").sum().alias(f"{m}:k"), pl.col(f"rule:{r}").null_count().alias(f"{m}:null")]
    if len(src.rules) >= 2:
        a, b = (pl.col(f"rule:{r}") for r in src.rules[:2])
        aggs.append((a != b).fill_null(False).sum().alias(DISAGREE))
    frame = pl.scan_ndjson(src.path, schema=schema, row_index_name=ROW).with_columns(
        variant.alias(VARIANT), pl.lit(index, pl.Int64).alias("_file"),
        pl.col("grader").struct.field("self").alias(SELF), *flat).drop(["grader", *(["tags"] if src.tags else []), *([RULES] if src.rules else [])])
    keys = [pl.col(VARIANT), *(pl.col(b).cast(pl.String) for b in by), pl.col(SEED).alias(CLUSTER), pl.col("_file")]
    return frame, keys, aggs


def _checked(frame: pl.DataFrame, src: Source) -> pl.DataFrame:
    """Validate one file's aggregated counts (naming the bad record) and note its totals."""
    if frame.height and (frame[VARIANT].null_count() or frame["_bad_kind"].sum()):
        _locate(src, "null label or unexpected kind")
    nulls = int(frame[f"{HARMFUL}:null"].sum()) if frame.height else 0
    if nulls and not _nulls_are_explicit(src.path, nulls):
        _locate(src, "harmful missing")
    src.records = int(frame["rows"].sum()) if frame.height else 0
    src.harmful_null = nulls
    return frame.drop("_bad_kind")


def _collect(query: pl.LazyFrame, src: Source) -> pl.DataFrame:
    try:
        return query.collect(engine="streaming")
    except pl.exceptions.PolarsError as e:
        _locate(src, str(e))
        raise  # unreachable: _locate always raises


def _scan_file(index: int, src: Source, by: list[str]) -> pl.DataFrame:
    frame, keys, aggs = _query(index, src, by)
    return _checked(_collect(frame.group_by(keys).agg(aggs), src), src)


@dataclass
class Duplicates:
    """Records whose `id` appeared before (in the same file or an earlier one): counted once."""

    dropped: int = 0


def _duplicates(srcs: list[Source]) -> Duplicates:
    """Find repeated ids across all inputs; refuse ids whose copies disagree on `harmful`."""
    frames = [pl.scan_ndjson(s.path, schema={"id": pl.String, HARMFUL: pl.Boolean}).with_columns(
        pl.lit(i, pl.Int64).alias("_file")) for i, s in enumerate(srcs)]
    ids = pl.concat(frames).filter(pl.col("id").is_not_null())
    try:
        rep = (ids.group_by("id").agg(pl.len().alias("copies"), pl.col(HARMFUL).n_unique().alias("values"),
                                      pl.col("_file").min().alias("first"))
               .filter(pl.col("copies") > 1).collect(engine="streaming"))
    except pl.exceptions.PolarsError:
        return Duplicates()  # a malformed file: the main pass names the bad record
    out = Duplicates()
    if not rep.height:
        return out
    bad = rep.filter(pl.col("values") > 1)
    if bad.height:
        rid = bad["id"][0]
        raise MsmError(f"id {rid} appears {bad['copies'][0]} times with different harmful values "
                       f"({bad.height} such id(s)); the inputs overlap (a file given twice under two names, or "
                       "re-graded records beside the originals?): give each record once")
    out.dropped = int((rep["copies"] - 1).sum())
    return out


def _scan_dedup(srcs: list[Source], by: list[str]) -> pl.DataFrame:
    """All inputs as one query in which each id counts once (records without an id are all kept)."""
    parts = [_query(i, s, by) for i, s in enumerate(srcs)]
    keys, aggs = parts[0][1], parts[0][2]
    for _, _, a in parts[1:]:
        names = {e.meta.output_name() for e in aggs}
        aggs = aggs + [e for e in a if e.meta.output_name() not in names]
    frame = pl.concat([p[0] for p in parts], how="diagonal_relaxed")
    once = pl.concat([frame.filter(pl.col("id").is_null()),
                      frame.filter(pl.col("id").is_not_null()).unique(subset=["id"], keep="any")],
                     how="diagonal_relaxed")
    try:
        agg = once.group_by(keys).agg(aggs).collect(engine="streaming")
    except pl.exceptions.PolarsError as e:
        for i, s in enumerate(srcs):  # find and name the bad record
            _scan_file(i, s, by)
        raise MsmError(f"inputs could not be read ({str(e).strip().splitlines()[0][:200]})") from None
    out = []
    for i, s in enumerate(srcs):
        part = agg.filter(pl.col("_file") == i)
        out.append(_checked(part, s) if part.height else part.drop("_bad_kind"))
    return pl.concat([f for f in out if f.height], how="diagonal_relaxed") if any(f.height for f in out) else agg.clear()


def scan(srcs: list[Source], by: list[str], tags: list[str] | None) -> Counts:
    """Counts per group over all inputs; `tags` = None means every tag found, [] means none."""
    found: dict[str, None] = {}
    rules: dict[str, None] = {}
    for src in srcs:
        _check_labels(src)
        src.rules = _discover_rules(src)
        rules.update(dict.fromkeys(src.rules))
    if len(rules) < 2:  # one rule is the harmful column itself: no second table to show
        rules = {}
        for src in srcs:
            src.rules = []
    for src in srcs:
        if tags != []:
            discovered = _discover_tags(src)
            found.update(dict.fromkeys(discovered))
            src.tags = [t for t in discovered if tags is None or t in tags]
    dup = _duplicates(srcs)
    if dup.dropped:
        frames = [_scan_dedup(srcs, by)]
    else:
        frames = [_scan_file(i, src, by) for i, src in enumerate(srcs)]
    if tags:
        unknown = [t for t in tags if t not in found]
        if unknown:
            known = ", ".join(found) or "none: no input has tags"
            raise MsmError(f"--tags: unknown tag {', '.join(unknown)} (known: {known})")
    metrics = [HARMFUL, *(RULE_METRIC + r for r in rules), *(tags if tags else found)]
    frame = pl.concat([f for f in frames if f.height], how="diagonal_relaxed") if any(f.height for f in frames) else None
    if frame is None:
        raise MsmError(f"no records in {', '.join(s.name for s in srcs)}")
    for m in metrics:
        k, null = metric_cols(m)
        if k not in frame.columns:  # a file without this tag: all its records count as null for it
            frame = frame.with_columns(pl.lit(0).alias(k), pl.col("rows").alias(null))
        else:
            frame = frame.with_columns(pl.col(k).fill_null(0), pl.col(null).fill_null(pl.col("rows")))
    keys = [VARIANT, *by, CLUSTER]
    # the same group can come from several files (shards): add them up; order = first appearance
    order = (pl.col("_file") * (1 << 40) + pl.col("_first")).min().alias("_order")
    sums = [pl.col(c).sum() for m in metrics for c in metric_cols(m)]
    if DISAGREE not in frame.columns:
        frame = frame.with_columns(pl.lit(0).alias(DISAGREE))
    frame = frame.group_by(keys).agg(pl.col("rows").sum(), pl.col(SELF).sum(), pl.col(DISAGREE).fill_null(0).sum(),
                                     order, *sums)
    for b in by:
        if frame[b].null_count() == frame.height:
            raise MsmError(f"--by {b}: no record has this field")
    disagree = {}
    if any(m.startswith(RULE_METRIC) for m in metrics):
        per = frame.group_by(VARIANT).agg(pl.col(DISAGREE).sum())
        disagree = dict(zip(per[VARIANT].to_list(), (int(x) for x in per[DISAGREE].to_list())))
    return Counts(frame, by, metrics, srcs, dup.dropped, disagree)
