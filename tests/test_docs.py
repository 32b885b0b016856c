import subprocess
import sys

from helpers import REPO


def test_cli_reference_is_current():
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "gen_cli_docs.py"), "--check"],
                       capture_output=True, text=True, env={"COLUMNS": "100", "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
