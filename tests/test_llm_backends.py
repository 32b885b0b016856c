"""The backend registry (llm/backends.py): names, lazy built-ins, capabilities instead of names, and scoring
through the call cache."""

import subprocess
import sys
import threading

import pytest
import typer.testing
from helpers import REPO

from msmtools.errors import MsmError
from msmtools.llm import Completion, backends, get_backend
from msmtools.llm.options import GenOptions


def test_unknown_backend_is_one_line_listing_the_registered_names():
    with pytest.raises(MsmError) as e:
        get_backend("nope", "m")
    assert str(e.value) == "--backend nope: expected one of hf, vllm, openai"
    with pytest.raises(MsmError, match="^--grader-backend nope: expected one of hf, vllm, openai$"):
        GenOptions(backend="nope").check("grader")
    with backends.registered("extra", lambda model, **kw: None, capabilities=backends.Capabilities()):
        with pytest.raises(MsmError, match="expected one of hf, vllm, openai, extra$"):
            backends.capabilities("nope")
    assert backends.names() == ("hf", "vllm", "openai")  # restored


def test_registered_restores_a_replaced_backend():
    before = backends.capabilities("hf")
    with backends.registered("hf", lambda model, **kw: "fake", capabilities=backends.Capabilities(server=True)):
        assert backends.capabilities("hf").server and get_backend("hf", "m") == "fake"
    assert backends.capabilities("hf") == before


def test_built_ins_import_nothing_heavy_until_built():
    code = ("import sys; from msmtools.cli import app; from msmtools.llm import backends; "
            "from msmtools.llm.options import GenOptions; GenOptions(backend='vllm').check(); "
            "print(sorted(m for m in ('torch', 'vllm', 'transformers', 'openai') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stderr


def test_factory_gets_only_the_options_its_backend_takes():
    seen = {}

    class Mine:
        def __init__(self, model, *, batch_size=1, progress=True):
            seen.update(model=model, batch_size=batch_size, progress=progress)

    import types
    mod = types.ModuleType("msm_test_mine")
    mod.Mine = Mine
    sys.modules["msm_test_mine"] = mod
    try:
        with backends.registered("mine", backends.lazy("msm_test_mine", "Mine"), capabilities=backends.Capabilities()):
            get_backend("mine", "m", batch_size=3, concurrency=9, base_url=None, progress=False)
    finally:
        del sys.modules["msm_test_mine"]
    assert seen == {"model": "m", "batch_size": 3, "progress": False}


def test_a_registered_fake_runs_a_real_command_in_process(tmp_path):
    """`--backend fake` is accepted by the CLI's own check once registered, and the command uses the fake."""
    import docgen_fake
    from msmtools.cli import app

    runner = typer.testing.CliRunner()
    spec = tmp_path / "spec.jsonl"
    assert runner.invoke(app, ["spec-render", "rules", "-o", str(spec)]).exit_code == 0
    out = tmp_path / "docs.jsonl"
    args = ["docgen", str(spec), "--backend", "fake", "--model", "rules", "-o", str(out), "--domains", "1",
            "--subdomains", "1", "--doc-types", "1", "--ideas", "1", "-q"]
    docgen_fake.BUILT.clear()
    with docgen_fake.registered("fake"):
        r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    assert out.read_text().strip() and docgen_fake.BUILT and docgen_fake.BUILT[0].model == "rules"
    r = runner.invoke(app, args)  # unregistered again
    assert r.exit_code != 0 and "--backend fake: expected one of hf, vllm, openai" in (r.output + str(r.exception))


# -- capabilities, not names ---------------------------------------------------------------------------------

def test_logprob_mode_is_refused_by_capability():
    from msmtools.am.variants import Variant
    from msmtools.valueeval import items as I
    from msmtools.valueeval.run import ValueConfig

    items = I.load(["america"])[:2]
    cfg = ValueConfig(variants=[Variant("m", None, "m")], items=items, mode="logprob", gen=GenOptions(backend="served"),
                      output="-", progress=False)
    with backends.registered("served", lambda model, **kw: None, capabilities=backends.Capabilities(server=True)):
        with pytest.raises(MsmError, match="^--mode logprob reads the model's own probabilities: use the hf or vllm "
                                           "backend, or --mode generate for a served model$"):
            cfg.check()
    with backends.registered("served", lambda model, **kw: None, capabilities=backends.Capabilities(scores_text=True)):
        cfg.check()


class _Gen:
    name, model = "gen", "g"

    def __init__(self, model, **_):
        pass

    def generate(self, requests, desc=None):
        return [[Completion(text=f"reply {j}", seed=r.sampling.seed + j, index=j) for j in range(r.sampling.n)]
                for r in requests]

    def describe(self):
        return {"backend": self.name, "model": self.model}

    def close(self):
        pass


class _Grader(_Gen):
    name = "grader"
    threads: list = []

    def generate(self, requests, desc=None):
        _Grader.threads.append(threading.current_thread().name)
        return [[Completion(text="<reasoning>r</reasoning><answer>no</answer>", seed=r.sampling.seed)] for r in requests]


@pytest.mark.parametrize("server", [False, True])
def test_grading_overlaps_generation_only_when_both_backends_are_servers(tmp_path, server):
    from msmtools.am import conditions as C
    from msmtools.am import rollouts
    from msmtools.am.variants import Variant

    caps = backends.Capabilities(server=server)
    _Grader.threads = []
    cfg = rollouts.EvalConfig(variants=[Variant("m", None, "g")], conditions=C.paper27()[:1], samples=2,
                              gen=GenOptions(backend="gen"), grader_model="j", grader_gen=GenOptions(backend="grader"),
                              output=str(tmp_path / "out.jsonl"), progress=False, chunk_size=2)
    with backends.registered("gen", _Gen, capabilities=caps), backends.registered("grader", _Grader, capabilities=caps):
        rollouts.run(cfg)
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 2
    assert _Grader.threads and all((t != threading.main_thread().name) is server for t in _Grader.threads)


def test_default_chunk_follows_fixed_batches():
    from msmtools.am.config import default_chunk

    assert default_chunk(GenOptions(backend="hf", batch_size=5)) == 5
    assert default_chunk(GenOptions(backend="openai", concurrency=100)) == 400
    assert default_chunk(GenOptions(backend="vllm")) == 256


def test_models_are_checked_only_for_backends_with_local_weights():
    from msmtools.llm import registry

    with pytest.raises(MsmError):
        registry.check_models([(GenOptions(backend="hf"), "/no/such/model/folder")])
    registry.check_models([(GenOptions(backend="openai"), "/no/such/model/folder")])  # a served name: not checked


# -- scoring ---------------------------------------------------------------------------------------------------

class _Scorer(_Gen):
    name = "scorer"

    def continuation_logprobs(self, items, *, batch_size=None):
        return [(-float(len(c)), len(c)) for _, c, _ in items]

    def option_logprobs(self, asks, *, batch_size=None):
        return [([-1.0] * len(letters), [(-float(len(t)), len(t)) for t in texts]) for _, letters, texts, _ in asks]


def test_scoring_passes_through_the_call_cache(tmp_path):
    from msmtools.llm.cache import CachedBackend
    from msmtools.llm.scoring import continuation_logprobs, option_logprobs

    msgs = [{"role": "user", "content": "q"}]
    with backends.registered("scorer", _Scorer, capabilities=backends.Capabilities(scores_text=True)):
        b = CachedBackend(get_backend("scorer", "s"), tmp_path / "cache", progress=False)
        assert continuation_logprobs(b, [(msgs, "abc", None)]) == [(-3.0, 3)]
        assert option_logprobs(b, [(msgs, ("A", "B"), ("x", "yy"), None)]) == [([-1.0, -1.0], [(-1.0, 1), (-2.0, 2)])]
        assert b.calls == 0 and len(b.cache) == 0  # scores are not generations: nothing cached
    with backends.registered("scorer", _Scorer, capabilities=backends.Capabilities()):
        with pytest.raises(MsmError, match=r"^value-eval --mode logprob needs a local model \(hf or vllm backend\), "
                                           r"not scorer: use --mode generate$"):
            continuation_logprobs(CachedBackend(_Scorer("s"), tmp_path / "c2", progress=False), [(msgs, "a", None)])


def test_hf_scores_the_same_through_the_cache(tiny_model, tmp_path):
    from msmtools.llm.cache import CachedBackend
    from msmtools.llm.scoring import option_logprobs

    b = get_backend("hf", str(tiny_model), progress=False, batch_size=2)
    asks = [([{"role": "user", "content": f"Pick {i}: A) tea B) coffee"}], ("A", "B"), ("tea", "hot coffee"), None)
            for i in range(3)]
    assert option_logprobs(CachedBackend(b, tmp_path / "c", progress=False), asks) == option_logprobs(b, asks)
