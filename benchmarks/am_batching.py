"""am-eval sampling: 8 samples of one condition in one batched request vs 8 separate calls (target >= 4x).

Both sides use the hf backend on the embedded model, the same rendered prompt, the same seeds
(sample j = seed + j) and the same number of generated tokens (end-of-sequence ignored, so every
sample runs to --max-tokens), back to back in one process after a warm-up. The batched call reads
the prompt once for all samples and its decode steps attend to that one copy of the prompt's KV
cache (`msmtools.llm.shared_prefix`); the separate calls read it once each. It also times:

- the same batched call with the prompt's cache copied to every row (the hf backend before
  shared_prefix), to show what the single copy buys;
- a prefill-only call (max_tokens=1), to show how much of a sample's cost is reading the ~1.5-2k
  token prompt.

    python benchmarks/am_batching.py [--condition murder_none-none_replacement] [--samples 8] [--max-tokens 128]
    python benchmarks/am_batching.py --conditions 8 --samples 2   # am-eval --samples 2: 8 conditions per batch

With --conditions N, the first N conditions of `paper27` share one call (as am-eval sends them when
the samples per condition are few), and the separate side is N x samples calls.

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
    ap.add_argument("--conditions", type=int, default=1, help="N > 1: the first N conditions of paper27")
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import torch

    from msmtools.am.conditions import paper27, parse
    from msmtools.am.render import render
    from msmtools.llm import Request, Sampling, get_backend

    conds = paper27()[:args.conditions] if args.conditions > 1 else [parse(args.condition)]
    messages = [render(c).messages for c in conds]
    rows = len(conds) * args.samples

    def sampling(n: int, seed: int, max_tokens: int = args.max_tokens) -> Sampling:
        return Sampling(temperature=0.7, max_tokens=max_tokens, n=n, seed=seed)

    def batch(backend):
        return backend.generate([Request(m, sampling(args.samples, args.seed + 1000 * i))
                                 for i, m in enumerate(messages)])

    # ignore_eos: every sample runs to --max-tokens on every side, so all do the same work
    def backend(share: bool):
        b = get_backend("hf", "default", batch_size=rows, progress=False, ignore_eos=True, share_prefix=share)
        b.generate([Request([{"role": "user", "content": "warm up"}], Sampling(max_tokens=2))])
        return b

    b, copied = backend(True), backend(False)
    pre, pre_w, pre_c = timed(lambda: [b.generate([Request(m, sampling(1, args.seed, 1))])[0][0] for m in messages])
    batched, bw, bc = timed(lambda: batch(b))
    single, sw, sc = timed(lambda: [[b.generate([Request(m, sampling(1, args.seed + 1000 * i + j))])[0][0]
                                     for j in range(args.samples)] for i, m in enumerate(messages)])
    # last, as an aside: after the copying path's large allocations, a later batched call in the same
    # process measured ~15% slower, which would bias the headline ratio
    batched_copy, cw, cc = timed(lambda: batch(copied))

    def tokens(out) -> int:
        return sum(c.completion_tokens or 0 for row in out for c in row)

    def same(out) -> int:
        return sum(a.raw == s.raw for ra, rs in zip(out, single) for a, s in zip(ra, rs))

    names = ", ".join(c.id for c in conds) if len(conds) < 3 else f"{len(conds)} conditions of paper27"
    print(f"{names}: prompts {min(p.prompt_tokens for p in pre)}-{max(p.prompt_tokens for p in pre)} tokens, "
          f"{args.samples} samples each x {args.max_tokens} tokens; torch threads {torch.get_num_threads()}")
    print(f"prefill only (1 sample per prompt, max_tokens=1): {pre_w:7.2f} s wall {pre_c:7.2f} s cpu")
    print(f"one batched call ({rows} rows):                {bw:7.2f} s wall {bc:7.2f} s cpu  {tokens(batched)} tokens")
    print(f"  same, prompt cache copied to every row:    {cw:7.2f} s wall {cc:7.2f} s cpu  {tokens(batched_copy)} tokens")
    print(f"{rows} separate calls (n=1):                    {sw:7.2f} s wall {sc:7.2f} s cpu  {tokens(single)} tokens")
    print(f"speed-up batched vs separate: {sw / bw:.2f}x wall, {sc / bc:.2f}x cpu (target >= 4x)")
    print(f"  copied-cache batch vs separate: {sw / cw:.2f}x wall; one prompt copy vs copies: {cw / bw:.2f}x")
    print(f"identical samples (same seeds) batched vs alone: {same(batched)}/{rows}; "
          f"copied-cache batch vs alone: {same(batched_copy)}/{rows}")
    print(f"prefill share of the separate calls: {args.samples * pre_w / sw:.0%} (the batched call reads each "
          "prompt once, so this part shrinks by the number of samples)")


if __name__ == "__main__":
    main()
