#!/usr/bin/env bash
# Idempotent setup: creates .venv (seeing system packages, so an existing torch is reused),
# installs torch only if none is importable, then installs optverify in editable mode.
#   scripts/setup.sh            runtime deps
#   scripts/setup.sh test       + the test, cluster (dask) and hf (transformers) extras
#   scripts/setup.sh lint       + lint extra (ruff, from PyPI)
#   scripts/setup.sh crosscheck + those test extras and the third-party cross-check packages (--no-deps)
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRA="${1:-}"
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv --system-site-packages .venv
fi
VPY=.venv/bin/python
if ! "$VPY" -c "import torch" >/dev/null 2>&1; then
    # Pinned CPU build: on the project's machines this is a local file. An unpinned `torch`
    # would pull a multi-GB CUDA build. GPU users: install your CUDA torch first; it is reused.
    "$VPY" -m pip install -q "torch==${OPTVERIFY_TORCH:-2.13.0}"
fi
case "$EXTRA" in
    "") SPEC="." ;;
    test|crosscheck) SPEC=".[test,cluster,hf]" ;;
    lint) SPEC=".[lint]" ;;
    *) echo "unknown extra: $EXTRA" >&2; exit 2 ;;
esac
"$VPY" -m pip install -q -e "$SPEC"
if [ "$EXTRA" = crosscheck ]; then
    # The third-party oracles declare transformers, bitsandbytes and tensorly, which they import but do
    # not use (the cross-check tests stub them); --no-deps keeps those, and any other torch, out.
    "$VPY" -m pip install -q --no-deps $("$VPY" - <<'PY'
import tomllib
print(" ".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["crosscheck"]))
PY
)
fi
