"""Test helpers: a tiny random model with the embedded model's tokenizer, and a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MSM = [sys.executable, "-m", "msmtools"]
FAKE_MSM = [sys.executable, str(REPO / "tests" / "fake_msm.py")]  # `msm` with `--backend fake` (docgen_fake)


def make_tiny_model(path: Path, *, layers: int = 2, hidden: int = 64, seed: int = 0) -> Path:
    """A randomly initialised Llama-shaped model (about 3M parameters) saved as a normal HF folder."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from msmtools import models

    if (path / "model.safetensors").exists():
        return path
    tok = AutoTokenizer.from_pretrained(models.ensure_default_model())
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=hidden, intermediate_size=hidden * 2,
                      num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=2048, tie_word_embeddings=True,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(cfg)
    model.save_pretrained(path, safe_serialization=True)
    tok.save_pretrained(path)
    return path


def run_msm(*args: str, input: str | bytes | None = None, env: dict | None = None, timeout: float = 600,
            cwd: Path | None = None, msm: list[str] = MSM) -> subprocess.CompletedProcess:
    """Run `python -m msmtools ...` (or `msm`, e.g. FAKE_MSM) and capture bytes-free text output."""
    e = dict(os.environ)
    e.update(env or {})
    if isinstance(input, bytes):
        input = input.decode()
    return subprocess.run([*msm, *args], input=input, capture_output=True, text=True, env=e, timeout=timeout,
                          cwd=cwd or REPO)


# --- model families -----------------------------------------------------------------------------
# Tiny random models of the families the paper trains (Llama, Qwen2, Qwen3, Gemma 3), each with a chat
# template written here in that family's style, on the embedded tokenizer. No hub needed.

FAMILIES = ("llama", "qwen2", "qwen3", "gemma3")

QWEN2_TEMPLATE = (
    "{%- if messages[0]['role'] == 'system' %}"
    "{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
    "{%- else %}{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{%- endif %}"
    "{%- for message in messages %}{%- if message['role'] != 'system' or not loop.first %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endif %}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)


def _qwen3_template(open_think: bool) -> str:
    """Qwen3's ChatML: reasoning kept only in the turns after the last user message; `enable_thinking=False`
    closes an empty think block in the prompt. `open_think`: the thinking-only variant (Qwen3-*-Thinking-2507),
    whose generation prompt itself opens `<think>\\n`, so the model's output starts inside the reasoning."""
    gen = ("{{- '<|im_start|>assistant\\n<think>\\n' }}" if open_think else
           "{{- '<|im_start|>assistant\\n' }}"
           "{%- if enable_thinking is defined and enable_thinking is false %}{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}")
    return (
        "{%- if messages[0]['role'] == 'system' %}"
        "{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}{%- endif %}"
        "{%- set ns = namespace(last_query_index=-1) %}"
        "{%- for message in messages %}{%- if message['role'] == 'user' %}"
        "{%- set ns.last_query_index = loop.index0 %}{%- endif %}{%- endfor %}"
        "{%- for message in messages %}"
        "{%- if message['role'] == 'user' or (message['role'] == 'system' and not loop.first) %}"
        "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
        "{%- elif message['role'] == 'assistant' %}"
        "{%- set content = message['content'] %}{%- set reasoning_content = '' %}"
        "{%- if '</think>' in content %}"
        "{%- set reasoning_content = content.split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') %}"
        "{%- set content = content.split('</think>')[-1].lstrip('\\n') %}{%- endif %}"
        "{%- if loop.index0 > ns.last_query_index and (loop.last or reasoning_content) %}"
        "{{- '<|im_start|>assistant\\n<think>\\n' + reasoning_content.strip('\\n') + '\\n</think>\\n\\n'"
        " + content.lstrip('\\n') }}"
        "{%- else %}{{- '<|im_start|>assistant\\n' + content }}{%- endif %}"
        "{{- '<|im_end|>\\n' }}"
        "{%- endif %}{%- endfor %}"
        "{%- if add_generation_prompt %}" + gen + "{%- endif %}"
    )


GEMMA_TEMPLATE = (
    "{{ bos_token }}"
    "{%- if messages[0]['role'] == 'system' -%}"
    "{%- set first_user_prefix = messages[0]['content'] + '\\n\\n' -%}{%- set loop_messages = messages[1:] -%}"
    "{%- else -%}{%- set first_user_prefix = '' -%}{%- set loop_messages = messages -%}{%- endif -%}"
    "{%- for message in loop_messages -%}"
    "{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{%- endif -%}"
    "{%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}"
    "{{ '<start_of_turn>' + role + '\\n' + (first_user_prefix if loop.first else '') + message['content'] | trim"
    " + '<end_of_turn>\\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<start_of_turn>model\\n' }}{%- endif -%}"
)


def make_family_model(path: Path, family: str, *, hidden: int = 64, seed: int = 0) -> Path:
    """A tiny random model of `family` (llama, qwen2, qwen3, qwen3-thinking, gemma3, gemma2) saved as safetensors, with
    the embedded tokenizer dressed as that family's: its special tokens, chat template and generation EOS ids.

    - llama: the embedded SmolLM2 (Llama) model's own ChatML template; what make_tiny_model builds.
    - qwen2: attention biases on q/k/v; ChatML with Qwen's default system prompt; EOS <|im_end|>, pad <|endoftext|>.
    - qwen3: q/k RMS norms, no biases; `<think>`/`</think>` as added (non-special) tokens; template with the
      `enable_thinking` switch. qwen3-thinking: the same model, template whose generation prompt opens `<think>\\n`.
    - gemma3: q/k norms, embeddings scaled, 3 layers of which 2 use an 8-token sliding window; Gemma's
      <bos>/<start_of_turn>/<end_of_turn> tokens (added, embeddings sized to fit), role `model`, and
      generation stops at <end_of_turn> as well as <eos>. gemma2: Gemma 2's soft-capped attention scores
      and logits (local and global layers), same tokenizer and template.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    from msmtools import models

    if (path / "model.safetensors").exists():
        return path
    tok = AutoTokenizer.from_pretrained(models.ensure_default_model())
    small = dict(hidden_size=hidden, intermediate_size=hidden * 2, num_attention_heads=4, num_key_value_heads=2,
                 max_position_embeddings=2048, tie_word_embeddings=True)
    eos = [tok.eos_token_id]
    if family == "llama":
        from transformers import LlamaConfig

        cfg_cls, extra = LlamaConfig, dict(num_hidden_layers=2)
    elif family == "qwen2":
        from transformers import Qwen2Config

        tok.pad_token = "<|endoftext|>"
        tok.chat_template = QWEN2_TEMPLATE
        eos.append(tok.convert_tokens_to_ids("<|endoftext|>"))
        cfg_cls, extra = Qwen2Config, dict(num_hidden_layers=2)
    elif family in ("qwen3", "qwen3-thinking"):
        from transformers import Qwen3Config

        tok.pad_token = "<|endoftext|>"
        tok.add_tokens(["<think>", "</think>"])  # as in Qwen3: added tokens, not special (decoding keeps them)
        tok.chat_template = _qwen3_template(open_think=family == "qwen3-thinking")
        eos.append(tok.convert_tokens_to_ids("<|endoftext|>"))
        cfg_cls, extra = Qwen3Config, dict(num_hidden_layers=2, head_dim=32)  # vLLM's CPU kernels need >= 32
    elif family in ("gemma3", "gemma2"):
        from transformers import Gemma2Config, Gemma3TextConfig

        tok.add_special_tokens({"bos_token": "<bos>", "eos_token": "<eos>", "pad_token": "<pad>",
                                "additional_special_tokens": ["<start_of_turn>", "<end_of_turn>"]})
        tok.add_bos_token = True  # Gemma's tokenizer starts every text with <bos> (documents in midtrain)
        tok.update_post_processor()
        tok.chat_template = GEMMA_TEMPLATE
        eos = [tok.eos_token_id, tok.convert_tokens_to_ids("<end_of_turn>")]
        if family == "gemma3":
            cfg_cls, extra = Gemma3TextConfig, dict(
                num_hidden_layers=3, head_dim=32, query_pre_attn_scalar=32, sliding_window=8,
                layer_types=["sliding_attention", "sliding_attention", "full_attention"])
        else:  # Gemma 2: alternating local/global layers, soft-capped attention scores and logits
            cfg_cls, extra = Gemma2Config, dict(
                num_hidden_layers=2, head_dim=32, query_pre_attn_scalar=32, sliding_window=8,
                layer_types=["sliding_attention", "full_attention"], attn_logit_softcapping=50.0,
                final_logit_softcapping=30.0)
    else:
        raise ValueError(f"unknown family {family!r}")
    cfg = cfg_cls(vocab_size=len(tok), **small, **extra, bos_token_id=tok.bos_token_id, eos_token_id=eos[0],
                  pad_token_id=tok.pad_token_id)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(cfg)
    model.generation_config = GenerationConfig(bos_token_id=tok.bos_token_id, pad_token_id=tok.pad_token_id,
                                               eos_token_id=eos if len(eos) > 1 else eos[0])
    model.save_pretrained(path, safe_serialization=True)
    tok.save_pretrained(path)
    return path
