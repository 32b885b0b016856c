"""hf generation in am-eval's access pattern, on the GPU: batched vs one at a time, shared prefix on and off.

am-eval asks, per condition, for many samples of one long prompt. This times that pattern through
msmtools' HFBackend: 8 of the paper's conditions x 32 samples, 512-token replies (every sequence runs to
the limit: random weights, `ignore_eos`), at Qwen2.5-0.5B and -7B shapes (random init, bf16):

- batched: one call, each condition one request of 32 samples (the backend reads each prompt once and,
  with the shared-prefix cache, keeps one copy of its keys and values for all 32 rows);
- the same with `share_prefix=False` (each row a copy of the prompt's cache: what transformers does);
- one at a time: single-sample requests, one after another (timed on a few, reported per token).

    PYTHONPATH=src python benchmarks/gen_gpu.py --tokenizer DIR [--shapes 0.5b,7b] [--out DIR]
    PYTHONPATH=src python benchmarks/gen_gpu.py --tokenizer DIR --tiny        # CPU smoke test
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

CONDITIONS = ["murder_none-none_replacement", "murder_explicit-america_replacement", "leaking_none-none_replacement",
              "leaking_explicit-safety_replacement", "exfiltration_none-none_replacement",
              "exfiltration_explicit-ethical_replacement", "leaking_explicit-individualism_replacement",
              "murder_explicit-global_replacement"]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def build(args: argparse.Namespace, shape: str) -> Path:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from train_gpu import qwen_config

    out = Path(args.out) / f"model-{shape}"
    if not any(out.glob("*.safetensors")):
        tok = AutoTokenizer.from_pretrained(args.tokenizer)
        cfg = qwen_config(len(tok), shape == "tiny", shape)
        cfg.bos_token_id, cfg.eos_token_id, cfg.pad_token_id = tok.bos_token_id, tok.eos_token_id, tok.pad_token_id
        torch.manual_seed(0)
        AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16).save_pretrained(out, safe_serialization=True)
        tok.save_pretrained(out)
    return out


def timed(backend, requests) -> tuple[float, int]:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    outs = backend.generate(requests)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - t0, sum(c.completion_tokens or 0 for o in outs for c in o)


def bench(args: argparse.Namespace, shape: str) -> list[dict]:
    import torch

    from msmtools.am.conditions import parse
    from msmtools.am.render import render
    from msmtools.llm import Request, Sampling
    from msmtools.llm.hf import HFBackend

    model = build(args, shape)
    conds = CONDITIONS[: args.conditions]
    msgs = [render(parse(c)).messages for c in conds]
    samp = lambda n, s: Sampling(temperature=0.7, top_p=1.0, max_tokens=args.max_tokens, n=n, seed=s)  # noqa: E731
    dtype = "bf16" if torch.cuda.is_available() else "fp32"
    rows = []
    for share in (True, False):
        b = HFBackend(str(model), batch_size=args.batch, dtype=dtype, progress=False, ignore_eos=True, share_prefix=share)
        b.generate([Request(msgs[0], samp(2, 0))])  # load and warm up
        wall, toks = timed(b, [Request(m, samp(args.samples, 0)) for m in msgs])
        rows.append({"shape": shape, "mode": f"batched, shared prefix {'on' if share else 'off'}", "sequences": len(msgs) * args.samples,
                     "tokens": toks, "wall_s": round(wall, 2), "tokens_per_s": round(toks / wall, 1),
                     "peak_mem_gb": round(torch.cuda.max_memory_allocated() / 2**30, 2) if torch.cuda.is_available() else None})
        log(json.dumps(rows[-1]))
        if share:
            single = [Request(msgs[k % len(msgs)], samp(1, k)) for k in range(args.single)]
            t_all, n_all = 0.0, 0
            for r in single:
                w, n = timed(b, [r])
                t_all, n_all = t_all + w, n_all + n
            rows.append({"shape": shape, "mode": "one at a time", "sequences": len(single), "tokens": n_all,
                         "wall_s": round(t_all, 2), "tokens_per_s": round(n_all / t_all, 1)})
            log(json.dumps(rows[-1]))
        b.close() if hasattr(b, "close") else None
        del b
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
    base = next(r for r in rows if r["mode"] == "one at a time")["tokens_per_s"]
    for r in rows:
        r["vs_one_at_a_time"] = round(r["tokens_per_s"] / base, 2)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--out", default="/tmp/msm-gpu-gen")
    ap.add_argument("--shapes", default="0.5b,7b")
    ap.add_argument("--conditions", type=int, default=8)
    ap.add_argument("--samples", type=int, default=32)
    ap.add_argument("--max-tokens", type=int, default=512)
    ap.add_argument("--batch", type=int, default=256, help="hf batch size (sequences)")
    ap.add_argument("--single", type=int, default=3, help="single-sample requests timed one after another")
    ap.add_argument("--tiny", action="store_true", help="tiny model, 2 conditions x 4 samples x 16 tokens: CPU smoke test")
    args = ap.parse_args()
    if args.tiny:
        args.shapes, args.conditions, args.samples, args.max_tokens, args.batch, args.single = "tiny", 2, 4, 16, 8, 2
    Path(args.out).mkdir(parents=True, exist_ok=True)
    import torch

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    rows = [r for shape in args.shapes.split(",") for r in bench(args, shape)]
    from msmtools.report import table

    print(f"device: {device}; {args.conditions} conditions x {args.samples} samples, {args.max_tokens}-token replies")
    print(table(["shape", "mode", "sequences", "tokens/s", "vs one at a time", "peak GB"],
                [[r["shape"], r["mode"], r["sequences"], f"{r['tokens_per_s']:,.0f}", f"{r['vs_one_at_a_time']:.2f}x",
                  "" if r.get("peak_mem_gb") is None else r["peak_mem_gb"]] for r in rows]))
    (Path(args.out) / "gen_summary.json").write_text(json.dumps({"device": device, "results": rows}, indent=1))


if __name__ == "__main__":
    main()
