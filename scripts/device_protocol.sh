#!/usr/bin/env bash
# The GPU validation protocol (docs/gpu_protocol.md), one piece at a time, on the lent GPU machine.
#
# Before the first call, here (a machine with the repository's history):
#     bash scripts/device_protocol.sh --prepare      # builds + checks .protocol/corpus, writes .protocol/commit
# On the device (repository root; carry .protocol/corpus and .protocol/commit):
#     PLAN=gpu PIECE=pilot bash scripts/device_protocol.sh
# After the call, here: put the results back before the next call (and commit them):
#     tar -xzf <files_at>/protocol_results.tar.gz        # -> results/gpu_lm/protocol/<plan>/
# CPU check of the whole path:
#     OUT=/tmp/p PLAN=tiny DEVICE=cpu BUDGET_S=60 RESULTS=/tmp/p_results bash scripts/device_protocol.sh
#
# Each call runs the next runs of the piece (PIECE empty: the whole plan) for BUDGET_S seconds (default 500,
# inside a 540 s call), one worker per visible GPU (they share the queue through file locks), starting only
# runs expected to finish in the time left. Finished runs are the state carried between calls: their JSON
# files under results/gpu_lm/protocol/<plan>/runs travel back in $OUT/protocol_results.tar.gz. A run cut off
# by the limit loses its work (its checkpoint, hundreds of MB, cannot travel back through $OUT).
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
PLAN=${PLAN:-gpu}
PIECE=${PIECE:-}
BUDGET_S=${BUDGET_S:-500}
RESULTS=${RESULTS:-results/gpu_lm/protocol/$PLAN}
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}

if [ "${1:-}" = "--prepare" ]; then
    "$PY" -m paper_checks.gpu_lm.protocol corpus --plan "$PLAN" || exit 1
    mkdir -p .protocol
    commit=$(git rev-parse HEAD) || exit 1
    git diff --quiet HEAD -- algorithms synthetic paper_checks || commit="$commit+dirty"
    echo "$commit" > .protocol/commit
    echo "prepared: .protocol/corpus (carry it), .protocol/commit = $commit (carry it)"
    exit 0
fi

: "${OUT:?set OUT to the folder whose files come back}"
mkdir -p "$OUT"
if [ -z "${OPTVERIFY_GIT_COMMIT:-}" ] && [ -f .protocol/commit ]; then
    export OPTVERIFY_GIT_COMMIT=$(cat .protocol/commit)
fi
piece_arg=()
[ -n "$PIECE" ] && piece_arg=(--piece "$PIECE")
device_arg=()
[ -n "${DEVICE:-}" ] && device_arg=(--device "$DEVICE")
if [ "${DEVICE:-cuda}" = "cpu" ]; then
    gpus=1
else
    nvidia-smi --query-gpu=name,memory.total --format=csv 2>&1 | tee "$OUT/protocol.log"
    gpus=$("$PY" -c 'import torch; print(torch.cuda.device_count())')
    [ "$gpus" -ge 1 ] 2>/dev/null || { echo "no CUDA device visible (DEVICE=cpu for a CPU run)" | tee -a "$OUT/protocol.log"; exit 1; }
fi
echo "plan $PLAN piece ${PIECE:-all}: $gpus worker(s), ${BUDGET_S} s, commit ${OPTVERIFY_GIT_COMMIT:-unknown}" | tee -a "$OUT/protocol.log"

pids=()
for ((i = 0; i < gpus; i++)); do
    if [ "${DEVICE:-cuda}" = "cpu" ]; then visible=(); else visible=(env CUDA_VISIBLE_DEVICES=$i); fi
    "${visible[@]}" "$PY" -m paper_checks.gpu_lm.protocol run --plan "$PLAN" --out "$RESULTS" "${piece_arg[@]}" "${device_arg[@]}" \
        --seconds "$BUDGET_S" > "/tmp/protocol_worker$i.log" 2>&1 &
    pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
for ((i = 0; i < gpus; i++)); do
    echo "=== worker $i" >> "$OUT/protocol.log"
    cat "/tmp/protocol_worker$i.log" >> "$OUT/protocol.log"
done
"$PY" -m paper_checks.gpu_lm.protocol status --plan "$PLAN" --out "$RESULTS" 2>&1 | tee "$OUT/status.txt"
if [ -d "$RESULTS" ]; then
    tar -czf "$OUT/protocol_results.tar.gz" "$RESULTS" 2>/dev/null
    echo "results: $OUT/protocol_results.tar.gz ($(tar -tzf "$OUT/protocol_results.tar.gz" | grep -c 'runs/.*\.json$') run files)"
fi
tail -n 5 "$OUT/protocol.log"
exit $status
