"""hf backend: generated tokens/s with 16 prompts in one batch vs the same 16 prompts one at a time.

    python benchmarks/hf_batching.py                  # embedded SmolLM2-135M on CPU, 16 x 64 tokens
    python benchmarks/hf_batching.py --repeats 3      # best of 3 for each mode (noisy shared machines)

Target (issue 3): batched throughput at least 5x one-at-a-time. Both modes sample with the same
per-row seeds, and the hf backend's samples do not depend on batching, so both produce the very same
texts and token counts (checked). By default EOS is ignored (hf backend `ignore_eos`), so every
sequence generates exactly --max-tokens real tokens in both modes: equal work. With --stop-at-eos,
sequences stop at EOS as in normal use; then a batch keeps computing rows that have finished until its
longest row is done, which lowers the batched figure by however much the lengths vary.
CPU seconds are printed too: on a machine shared with other jobs they are steadier than wall time.
"""

from __future__ import annotations

import argparse
import sys
import time

TOPICS = ["the tide", "a lighthouse keeper", "bread baking", "a chess opening", "winter in a city", "bees",
          "a broken clock", "the first snow", "a train journey", "tea ceremonies", "an old map", "volcanoes",
          "a library at night", "learning to swim", "paper airplanes", "the moon landing", "street markets",
          "a lost glove", "thunderstorms", "a violin maker"]


def prompts(k: int) -> list[str]:
    styles = ["Write a short story about {t}.", "Describe {t} in a few vivid sentences.",
              "Explain to a child what is interesting about {t}, step by step, with an example.",
              "Give three surprising facts about {t}."]
    return [styles[i % len(styles)].format(t=TOPICS[i % len(TOPICS)]) for i in range(k)]


def run(backend, requests, batch_size: int) -> tuple[float, float, int, list[str]]:
    backend.batch_size = batch_size
    t0, c0 = time.perf_counter(), time.process_time()
    out = backend.generate(requests)
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    return dt, cpu, sum(c.completion_tokens for row in out for c in row), [c.raw for row in out for c in row]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default", help="Model ('default' = embedded SmolLM2-135M-Instruct).")
    ap.add_argument("--prompts", type=int, default=16, help="Number of prompts (and the batch size).")
    ap.add_argument("--max-tokens", type=int, default=64, help="New tokens per prompt.")
    ap.add_argument("--repeats", type=int, default=1, help="Timed runs per mode; the best is reported.")
    ap.add_argument("--dtype", default="auto", choices=("auto", "bf16", "fp32"), help="Weights dtype.")
    ap.add_argument("--seed", type=int, default=0, help="Base seed; prompt i samples with seed + 1000 i.")
    ap.add_argument("--stop-at-eos", action="store_true", help="Stop sequences at EOS (unequal work per row).")
    args = ap.parse_args()

    import torch

    from msmtools.llm import Request, Sampling, get_backend

    b = get_backend("hf", args.model, dtype=args.dtype, progress=False, ignore_eos=not args.stop_at_eos)
    reqs = [Request([{"role": "user", "content": p}],
                    Sampling(temperature=1.0, max_tokens=args.max_tokens, seed=args.seed + 1000 * i))
            for i, p in enumerate(prompts(args.prompts))]
    run(b, reqs[:2], 2)  # load and warm up
    best: dict[str, tuple[float, float, int, list[str]]] = {}
    for _ in range(args.repeats):
        for mode, bs in (("one at a time", 1), (f"batch {args.prompts}", args.prompts)):
            res = run(b, reqs, bs)
            if mode not in best or res[0] < best[mode][0]:
                best[mode] = res
    (t1, c1, n1, texts1), (tb, cb, nb, textsb) = best.values()
    print(f"model {b.describe()['model']}  device {b.device}  dtype {args.dtype}  torch threads "
          f"{torch.get_num_threads()}  {args.prompts} prompts x {args.max_tokens} new tokens (temperature 1.0, "
          f"{'stop at EOS' if args.stop_at_eos else 'EOS ignored: equal work'})")
    for mode, (dt, cpu, n, _) in best.items():
        print(f"{mode:>14}: {n} tokens in {dt:6.2f} s = {n / dt:7.1f} tokens/s  (cpu {cpu:6.2f} s)")
    print(f"same samples in both modes: {'yes' if texts1 == textsb else 'NO'}")
    print(f"batched / one-at-a-time throughput: {(nb / tb) / (n1 / t1):.2f}x (target >= 5x); "
          f"per cpu second: {(nb / cb) / (n1 / c1):.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
