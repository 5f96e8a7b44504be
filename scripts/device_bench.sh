#!/usr/bin/env bash
# GPU optimizer benchmark on the lent machine (verify bench --gpu), with the third-party packages carried
# as wheels in .whl/ (galore-torch, fira, pytorch-optimizer, lion-pytorch; see README "GPU").
set -u
export PYTHONUNBUFFERED=1
if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        && export PYTHONPATH=/tmp/site:$PWD
else
    export PYTHONPATH=$PWD
fi
nvidia-smi --query-gpu=name,memory.total --format=csv
python3 -m verify bench --gpu --json "$OUT/gpu_step.json" --markdown "$OUT/gpu_step.md"
