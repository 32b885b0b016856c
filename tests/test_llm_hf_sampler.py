"""The hf backend's per-row sampler draws from softmax(logits / T), restricted to the top-p nucleus."""

import pytest
import torch
from scipy.stats import chisquare

from msmtools.llm.hf import _row_sampler

LOGITS = torch.tensor([2.0, 1.0, 0.0, -1.0, -30.0, 0.5])


def _expected(temperature, top_p):
    p = torch.softmax(LOGITS / temperature, -1)
    if top_p < 1.0:
        sp, idx = torch.sort(p, descending=True)
        keep = (sp.cumsum(0) - sp) <= top_p
        q = torch.zeros_like(p)
        q[idx[keep]] = sp[keep]
        p = q / q.sum()
    return p


@pytest.mark.parametrize("temperature,top_p", [(1.0, 1.0), (0.7, 1.0), (1.0, 0.8)])
def test_sampler_matches_the_distribution(temperature, top_p):
    rows, draws = 40, 500  # 40 rows with their own seeds, sampled together: 20,000 draws
    sampler = _row_sampler(list(range(100, 100 + rows)), temperature, top_p, "cpu")
    counts = torch.zeros(len(LOGITS))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: waking other threads costs more than the work
    try:
        for _ in range(draws):
            out = sampler(None, LOGITS.repeat(rows, 1))
            assert torch.isfinite(out).sum(-1).eq(1).all()  # one chosen token per row, the rest -inf
            counts += torch.nn.functional.one_hot(out.argmax(-1), len(LOGITS)).sum(0)
    finally:
        torch.set_num_threads(threads)
    p = _expected(temperature, top_p)
    live = p > 1e-9
    assert counts[~live].sum() == 0  # tokens outside the nucleus (or with ~0 probability) never drawn
    assert chisquare(counts[live], p[live] * counts.sum()).pvalue > 0.001


def test_rows_use_their_own_seeds():
    logits = torch.randn(1, 1000)
    a = _row_sampler([1, 2, 3], 1.0, 1.0, "cpu")(None, logits.repeat(3, 1)).argmax(-1)
    b = _row_sampler([2], 1.0, 1.0, "cpu")(None, logits.clone()).argmax(-1)
    assert a[1] == b[0]  # row 1 (seed 2) draws as seed 2 alone does
