#!/usr/bin/env bash
# Rate sweeps on a many-core machine (the lent GPU machine's 16 CPU cores; no GPU is used):
# the full grid with power, and the false-alarm reruns of the quick grid's asserted checks over
# master seeds 1..59. Resumable: earlier partial results in .device_state/ are restored first, and
# whatever finishes inside the time limit is archived to $OUT (fa.tgz, full.tgz) with the logs.
#   usage (on the device): bash scripts/device_rates.sh SECONDS
set -u
LIMIT="${1:-540}"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD" OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
export OPTVERIFY_GIT_COMMIT="$(cat .device_state/commit 2>/dev/null)"
mkdir -p /tmp/fa /tmp/rr
[ -f .device_state/fa.tgz ] && tar xzf .device_state/fa.tgz -C /tmp
[ -f .device_state/full.tgz ] && tar xzf .device_state/full.tgz -C /tmp
nproc; python3 -c "import torch, scipy, sympy; print(torch.__version__, scipy.__version__, sympy.__version__)"
(seq 1 59 | timeout "$LIMIT" xargs -P 5 -I{} python3 -m verify rates --quick --asserted-only --master-seed {} \
    --jobs 1 --no-progress --out /tmp/fa > /tmp/fa.log 2>&1) &
timeout "$LIMIT" python3 -m verify rates --power --jobs 11 --no-progress --out /tmp/rr > /tmp/full.log 2>&1
echo "full grid exit $?"
wait
ls /tmp/fa/quick | wc -l; ls /tmp/rr/full | wc -l
tar czf "$OUT/fa.tgz" -C /tmp fa; tar czf "$OUT/full.tgz" -C /tmp rr
cp /tmp/fa.log /tmp/full.log "$OUT/"
tail -5 /tmp/full.log
