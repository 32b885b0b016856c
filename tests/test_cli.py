import subprocess
import sys

from helpers import run_msm


def test_help_does_not_import_heavy_libraries():
    code = ("import sys; from msmtools.cli import app; import typer.testing as t; "
            "r = t.CliRunner().invoke(app, ['--help']); assert r.exit_code == 0, r.output; "
            "heavy = [m for m in ('torch', 'transformers', 'vllm', 'polars', 'scipy') if m in sys.modules]; "
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_every_subcommand_help_is_light():
    from msmtools.cli import app
    import typer.main

    names = list(typer.main.get_command(app).commands)
    assert "spec-render" in names
    for name in names:
        code = (f"import sys; from msmtools.cli import app; import typer.testing as t; "
                f"r = t.CliRunner().invoke(app, ['{name}', '--help']); assert r.exit_code == 0, r.output; "
                "print([m for m in ('torch', 'transformers', 'vllm') if m in sys.modules])")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        assert out.strip() == "[]", name


def test_bad_jsonl_line_is_one_line_exit_2(tmp_path):
    # any JSONL-reading command gets this from msmtools.jsonl; exercised through the library entry
    p = tmp_path / "broken.jsonl"
    p.write_text('{"a": 1}\n{"a": 2}\n{"a": oops}\n')
    code = f"from msmtools import jsonl; list(jsonl.read({str(p)!r}))"
    r = subprocess.run([sys.executable, "-c", "import msmtools.cli as c, sys; sys.argv=['msm']; "
                        "from msmtools.errors import MsmError\ntry:\n    " + code + "\nexcept MsmError as e:\n    print(e)"],
                       capture_output=True, text=True)
    assert f"{p}:3: invalid JSON" in r.stdout


def test_version():
    r = run_msm("--version")
    assert r.returncode == 0 and r.stdout.strip() == "0.1.0"
