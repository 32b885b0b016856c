import subprocess
import sys

from helpers import REPO


def test_cli_reference_is_current():
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "gen_cli_docs.py"), "--check"],
                       capture_output=True, text=True, env={"COLUMNS": "100", "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr


def test_backend_flag_defaults_in_the_docs_are_current():
    """docs/backends.md's table of backend flags and defaults is generated from GenOptions (the flags' source)."""
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "gen_backend_docs.py"), "--check"],
                       capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
