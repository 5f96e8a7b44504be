#!/usr/bin/env bash
# Rate sweeps on a many-core machine (the lent GPU machine's 16 CPU cores; no GPU is used): the full
# grid with power. Resumable: earlier partial results in .device_state/ are restored first, and
# whatever finishes inside the time limit is archived to $OUT (full.tgz) with the log.
#   usage (on the device): bash scripts/device_rates.sh SECONDS
set -u
LIMIT="${1:-540}"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD" OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
export OPTVERIFY_GIT_COMMIT="$(cat .device_state/commit 2>/dev/null)"
mkdir -p /tmp/rr
[ -f .device_state/full.tgz ] && tar xzf .device_state/full.tgz -C /tmp
nproc; python3 -c "import torch, scipy, sympy; print(torch.__version__, scipy.__version__, sympy.__version__)"
timeout "$LIMIT" python3 -m verify rates --power --jobs 15 --no-progress --out /tmp/rr > /tmp/full.log 2>&1
echo "full grid exit $?"
ls /tmp/rr/full | wc -l
tar czf "$OUT/full.tgz" -C /tmp rr
cp /tmp/full.log "$OUT/"
tail -5 /tmp/full.log
