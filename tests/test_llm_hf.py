from msmtools.llm import Request, Sampling, get_backend, split_reasoning


def test_split_reasoning_cases():
    assert split_reasoning("<think>plan</think>\n\nanswer") == ("plan", "answer", True)
    assert split_reasoning("plan only</think>answer") == ("plan only", "answer", True)  # template opened it
    assert split_reasoning("<think>never closed") == ("never closed", "", False)
    assert split_reasoning("plain") == (None, "plain", True)


def _req(text, **kw):
    return Request([{"role": "user", "content": text}], Sampling(**kw))


def test_seeded_samples_do_not_depend_on_batch(tiny_model):
    b = get_backend("hf", str(tiny_model), batch_size=8, progress=False)
    reqs = [_req(f"prompt number {i} " * (i + 1), temperature=1.0, max_tokens=12, n=3, seed=100 * i) for i in range(3)]
    together = b.generate(reqs)
    alone = b.generate([reqs[1]])
    assert [c.raw for c in alone[0]] == [c.raw for c in together[1]]
    assert [c.seed for c in together[1]] == [100, 101, 102]
    assert len({c.raw for c in together[1]}) > 1  # different seeds, different samples


def test_samples_of_one_request_share_the_prefill_and_equal_single_draws(tiny_model):
    b = get_backend("hf", str(tiny_model), batch_size=8, progress=False)  # n=4 fills half a batch: shared prefill
    prompt = "a long shared prompt " * 20
    shared = b.generate([_req(prompt, temperature=1.0, max_tokens=10, n=4, seed=7)])[0]
    single = [b.generate([_req(prompt, temperature=1.0, max_tokens=10, n=1, seed=7 + j)])[0][0] for j in range(4)]
    assert [c.raw for c in shared] == [c.raw for c in single]
    assert [c.seed for c in shared] == [7, 8, 9, 10] and len({c.raw for c in shared}) > 1


def test_truncation_is_flagged(tiny_model):
    b = get_backend("hf", str(tiny_model), progress=False)
    [[c]] = b.generate([_req("hello", temperature=1.0, max_tokens=5, seed=1)])
    # a random tiny model almost never emits EOS within 5 tokens
    assert c.completion_tokens == 5 and c.truncated and c.finish_reason == "length"
