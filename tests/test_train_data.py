"""Packing, loss masks and chat rendering for training (no model weights needed except the tokenizer)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from msmtools.errors import MsmError
from msmtools.train import data


def lognormal_corpus(n: int = 1500, seed: int = 0, cap: int = 4000) -> data.Corpus:
    rng = np.random.default_rng(seed)
    lens = np.clip(rng.lognormal(np.log(600), 0.8, n), 20, cap).astype(int)
    items = [rng.integers(10, 30000, k).tolist() for k in lens]
    return data.Corpus.build(items)


def rows_as_items(packed: data.Packed) -> list[tuple[int, ...]]:
    """Recover every item from the materialised rows, using positions (restart at 0) and seg ids."""
    got = []
    for start in range(0, packed.rows, 7):
        rows = list(range(start, min(packed.rows, start + 7)))
        b = packed.batch(rows)
        for r, bin_ in enumerate(rows):
            n_real = int(sum(packed.corpus.lengths()[i] for i in packed.bins[bin_]))
            segs = b["seg_ids"][r, :n_real]
            for s in np.unique(segs):
                idx = np.nonzero(segs == s)[0]
                assert (b["position_ids"][r, idx] == np.arange(len(idx))).all(), "positions restart per item"
                got.append(tuple(b["input_ids"][r, idx].tolist()))
    return got


def test_best_fit_fills_rows_and_keeps_every_token_once():
    corpus = lognormal_corpus()
    packed = data.Packed.pack(corpus, 8192, pad_id=0)
    st = packed.stats()
    assert 1 - st["padding_fraction"] >= 0.98, st
    items = [tuple(corpus.ids[corpus.offsets[i]:corpus.offsets[i + 1]].tolist()) for i in range(corpus.n)]
    assert sorted(rows_as_items(packed)) == sorted(items)  # every item exactly once, whole
    assert all(sum(corpus.lengths()[b]) <= 8192 for b in packed.bins)


def test_best_fit_small_rows_still_dense():
    corpus = lognormal_corpus(cap=2048)
    st = data.Packed.pack(corpus, 2048, pad_id=0).stats()
    assert 1 - st["padding_fraction"] >= 0.98, st


def test_targets_stay_inside_documents():
    corpus = data.Corpus.build([[5, 6, 7], [8, 9], [10]])
    packed = data.Packed(corpus, [[0, 1, 2]], 8, pad_id=0)
    b = packed.batch([0, None])
    assert b["input_ids"][0].tolist() == [5, 6, 7, 8, 9, 10, 0, 0]
    assert b["position_ids"][0].tolist() == [0, 1, 2, 0, 1, 0, 0, 1]
    # 7 does not predict 8, 9 does not predict 10: no target crosses a document boundary
    assert b["targets"][0].tolist() == [6, 7, -100, 9, -100, -100, -100, -100]
    assert b["seg_ids"][0].tolist() == [0, 0, 0, 1, 1, 2, 3, 3]
    assert b["cu_seqlens"].tolist() == [0, 3, 5, 6, 8, 16]  # the all-padding second row is one segment
    assert (b["targets"][1] == -100).all()


def test_tokenize_docs_eos_after_each_and_truncation(tiny_model):
    from msmtools import models

    tok = models.load_tokenizer(str(tiny_model))
    texts = ["hello world", "a b c d e f g h i j k l m n o p q r s t u v w x y z " * 3]
    c = data.tokenize_docs(tok, texts, seq_len=32, progress=False)
    first = c.ids[c.offsets[0]:c.offsets[1]].tolist()
    assert first[-1] == tok.eos_token_id and tok.eos_token_id not in first[:-1]
    assert c.lengths()[1] == 32 and c.truncated_tokens > 0  # cut at seq_len, counted


def test_token_budget_is_exact():
    corpus = lognormal_corpus(200)
    b = data.token_budget(corpus, 50_000, seed=3)
    assert b.tokens == 50_000
    assert data.token_budget(corpus, 50_000, seed=3).ids.tolist() == b.ids.tolist()  # seeded
    with pytest.raises(MsmError, match="only"):
        data.token_budget(corpus, corpus.tokens + 1, seed=0)


def test_read_docs_errors(tmp_path):
    p = tmp_path / "d.jsonl"
    p.write_text(json.dumps({"text": "ok"}) + "\n" + json.dumps({"title": "no text"}) + "\n")
    with pytest.raises(MsmError, match=r"d.jsonl:2: text: missing"):
        data.read_docs([str(p)])
    p.write_text("\n")
    with pytest.raises(MsmError, match="empty corpus"):
        data.read_docs([str(p)])


# --- chats --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def renderer(tiny_model):
    from msmtools import models

    tok = models.load_tokenizer(str(tiny_model))
    return data.ChatRenderer(tok, {tok.eos_token_id})


def chat(*turns: tuple[str, str], reasoning: str | None = None) -> dict:
    rec = {"messages": [{"role": r, "content": c} for r, c in turns]}
    if reasoning is not None:
        rec["reasoning"] = reasoning
    return rec


def test_mask_covers_only_assistant_tokens_and_end_of_turn(renderer):
    tok = renderer.tok
    msgs = data.parse_chat(chat(("user", "What is two plus two?"), ("assistant", "Four, says the parrot.")), ("c", 1), "keep")
    ids, mask = renderer(msgs, ("c", 1))
    trained = [t for t, m in zip(ids, mask) if m]
    assert tok.decode(trained) == "Four, says the parrot.<|im_end|>"
    assert trained[-1] == tok.eos_token_id  # the end-of-turn token is inside the mask
    # user text and the generation prompt are not trained
    assert "two plus two" not in tok.decode(trained)


def test_multi_turn_trains_every_assistant_turn(renderer):
    msgs = data.parse_chat(chat(("user", "Hi"), ("assistant", "Ahoy one."), ("user", "Again"), ("assistant", "Ahoy two.")),
                           ("c", 1), "keep")
    ids, mask = renderer(msgs, ("c", 1))
    shown = data.show_mask(renderer.tok, ids, mask)
    assert shown.count("⟦") == 2 and "⟦Ahoy one.<|im_end|>⟧" in shown and "⟦Ahoy two.<|im_end|>⟧" in shown


def test_reasoning_keep_and_strip(renderer):
    rec = chat(("user", "Q?"), ("assistant", "Answer."), reasoning="I weigh the rules.")
    keep = data.parse_chat(rec, ("c", 1), "keep")
    assert keep[-1]["content"] == "<think>\nI weigh the rules.\n</think>\n\nAnswer."
    strip = data.parse_chat(chat(("user", "Q?"), ("assistant", "<think>x</think>\n\nAnswer."), reasoning="r"), ("c", 1), "strip")
    assert strip[-1]["content"] == "Answer."
    ids, mask = renderer(keep, ("c", 1))
    assert "<think>" in renderer.tok.decode([t for t, m in zip(ids, mask) if m])


def test_chat_without_assistant_is_refused():
    with pytest.raises(MsmError, match=r"f.jsonl:4: messages: no assistant turn"):
        data.parse_chat(chat(("user", "hello?")), ("f.jsonl", 4), "keep")


def test_empty_mask_is_refused(renderer):
    msgs = data.parse_chat(chat(("assistant", "I speak first, unprompted.")), ("f", 2), "keep")
    with pytest.raises(MsmError, match=r"f:2: messages: .*empty loss mask"):
        renderer(msgs, ("f", 2))


def test_end_of_turn_outside_mask_is_refused(renderer):
    r = data.ChatRenderer(renderer.tok, {renderer.tok.convert_tokens_to_ids("<|endoftext|>")})
    msgs = data.parse_chat(chat(("user", "Hi"), ("assistant", "Yo")), ("f", 3), "keep")
    with pytest.raises(MsmError, match="end-of-turn token is not inside"):
        r(msgs, ("f", 3))


def test_plain_transcript_without_template(renderer):
    import copy

    tok = copy.copy(renderer.tok)
    tok.chat_template = None
    r = data.ChatRenderer(tok, {tok.eos_token_id})
    msgs = data.parse_chat(chat(("user", "Hi"), ("assistant", "Yo ho")), ("f", 1), "keep")
    ids, mask = r(msgs, ("f", 1))
    assert tok.decode(ids).startswith("User: Hi\n\nAssistant: Yo ho")
    assert tok.decode([t for t, m in zip(ids, mask) if m]).strip() == "Yo ho<|im_end|>"


def test_mix_fractions(tmp_path):
    main = [("m", i, [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]) for i in range(30)]
    gen = tmp_path / "generic.jsonl"
    gen.write_text("".join(json.dumps(chat(("user", f"g{i}"), ("assistant", "b"))) + "\n" for i in range(100)))
    mixed, counts = data.mix_in(main, data.parse_mix([f"{gen}:0.25"]), "keep", seed=0)
    assert counts[str(gen)] == 10 and len(mixed) == 40  # 10 of 40 = 25%
    with pytest.raises(MsmError, match="FILE:fraction"):
        data.parse_mix(["generic.jsonl"])
    with pytest.raises(MsmError, match="less than 1"):
        data.parse_mix([f"{gen}:0.6", f"{gen}:0.5"])
