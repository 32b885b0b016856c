"""am-eval sampling: 8 samples of one condition in one batched request vs 8 separate calls (target >= 4x).

Both sides use the hf backend on the embedded model, the same rendered prompt, the same seeds
(sample j = seed + j) and the same number of generated tokens (end-of-sequence ignored, so every
sample runs to --max-tokens), back to back in one process after a warm-up. It also
times a prefill-only call (max_tokens=1) to show how much of a sample's cost is reading the ~1.5-2k
token prompt: the batched call reads it once for all samples and its decode steps attend to that one
copy of the prompt's KV cache (`msmtools.llm.shared_prefix`), the separate calls read it once each.

    python benchmarks/am_batching.py [--condition murder_none-none_replacement] [--samples 8] [--max-tokens 128]

Wall time is what users see; process CPU time is printed too because shared machines make wall
time noisy. On a machine shared with other jobs, OMP_NUM_THREADS=1 avoids thread oversubscription,
which otherwise slows the many small matrix products of decoding by an order of magnitude.
"""

from __future__ import annotations

import argparse
import time


def timed(fn):
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--condition", default="murder_none-none_replacement")
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    from msmtools.am.conditions import parse
    from msmtools.am.render import render
    from msmtools.llm import Request, Sampling, get_backend

    r = render(parse(args.condition))
    # ignore_eos: every sample runs to --max-tokens on both sides, so both do the same work
    b = get_backend("hf", "default", batch_size=args.samples, progress=False, ignore_eos=True)
    b.generate([Request([{"role": "user", "content": "warm up"}], Sampling(max_tokens=2))])
    # the same batched call with the prompt's cache copied to every row (the hf backend before
    # shared_prefix), run first: in one process the later of two batched calls measured slower
    copied = get_backend("hf", "default", batch_size=args.samples, progress=False, ignore_eos=True,
                         share_prefix=False)
    copied.generate([Request([{"role": "user", "content": "warm up"}], Sampling(max_tokens=2))])

    def sampling(n: int, seed: int, max_tokens: int = args.max_tokens) -> Sampling:
        return Sampling(temperature=0.7, max_tokens=max_tokens, n=n, seed=seed)

    [[pre]], pre_w, pre_c = timed(lambda: b.generate([Request(r.messages, sampling(1, args.seed, 1))]))
    batched_copy, cw, cc = timed(lambda: copied.generate([Request(r.messages, sampling(args.samples, args.seed))])[0])
    batched, bw, bc = timed(lambda: b.generate([Request(r.messages, sampling(args.samples, args.seed))])[0])
    single, sw, sc = timed(lambda: [b.generate([Request(r.messages, sampling(1, args.seed + j))])[0][0]
                                    for j in range(args.samples)])
    toks_b = sum(c.completion_tokens or 0 for c in batched)
    toks_s = sum(c.completion_tokens or 0 for c in single)
    same = sum(a.raw == s.raw for a, s in zip(batched, single))
    import torch

    print(f"condition {args.condition}: prompt {pre.prompt_tokens} tokens, {args.samples} samples x up to "
          f"{args.max_tokens} tokens; torch threads {torch.get_num_threads()}")
    print(f"prefill only (1 sample, max_tokens=1): {pre_w:7.2f} s wall {pre_c:7.2f} s cpu")
    print(f"one batched call (n={args.samples}):        {bw:7.2f} s wall {bc:7.2f} s cpu  {toks_b} tokens")
    print(f"  same, prompt cache copied per row: {cw:7.2f} s wall {cc:7.2f} s cpu  "
          f"{sum(c.completion_tokens or 0 for c in batched_copy)} tokens")
    print(f"{args.samples} separate calls (n=1):          {sw:7.2f} s wall {sc:7.2f} s cpu  {toks_s} tokens")
    print(f"speed-up batched vs separate: {sw / bw:.2f}x wall, {sc / bc:.2f}x cpu (target >= 4x)")
    print(f"  the copied-cache batch: {sw / cw:.2f}x wall; one shared prompt copy vs copies: {cw / bw:.2f}x")
    print(f"identical samples (same seed, batched vs alone): {same}/{args.samples}; "
          f"copied-cache batch vs alone: {sum(a.raw == s.raw for a, s in zip(batched_copy, single))}/{args.samples}")
    share = args.samples * pre_w / sw
    print(f"prefill share of the separate calls: {share:.0%} (the batched call reads the prompt once, so this "
          "part shrinks by the number of samples)")


if __name__ == "__main__":
    main()
