"""`msm` with the test-double backend registered as `--backend fake`: a real CLI process whose model
calls the test controls (docgen_fake). Run: python tests/fake_msm.py ARGS..."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import docgen_fake  # noqa: E402
from msmtools.llm import backends  # noqa: E402

backends.register("fake", docgen_fake.factory, capabilities=docgen_fake.CAPABILITIES, summary="test double")

from msmtools.cli import main  # noqa: E402

main()
