#!/usr/bin/env bash
# The fast paths on the lent GPU (issue 17 part B): step times of every optimizer on its reference and fast
# paths next to torch AdamW and the third-party packages (verify/gpu_bench.py), and the float32 oracle of
# every fast path against the float64 reference (verify/fast_oracle.py). Everything is written under $OUT,
# one file per part, each as soon as its part ends, so a call that runs out of time keeps what it finished.
#
#   bash scripts/device_fast.sh PART...        (on the device, in the repository root; $OUT set)
#   bash scripts/device_fast.sh --tiny PART... (the same parts on the CPU, tiny shapes: the CI-free self-test)
#
# Parts (estimated H100 seconds, from results/bench/gpu_step.json's reference step times):
#   steps60       llama-60m step table: reference + fast rows, torch AdamW, third parties   ~110
#   train60       llama-60m training throughput, reference + fast rows, fused AdamW          ~100
#   oracle        float32 oracle of every fast path (fast=True) vs the float64 reference      ~60-120
#   steps350ref   llama-350m step table: reference rows, torch AdamW, third parties         ~340
#   steps350fast  llama-350m step table: fast rows                                           ~100-200
#   compile60     llama-60m step table: fast="compile" rows of the elementwise methods       ~150-300 (compiles)
#   oracle-compile  float32 oracle of fast="compile" (elementwise methods)                   ~100-200 (compiles)
# Suggested calls (each <= 540 s): "steps60 train60 oracle", "steps350ref", "steps350fast compile60".
# Then, locally: python -m verify.gpu_bench --merge <the part_*.json files> --json results/bench/gpu_step.json \
#                  --markdown results/bench/gpu_step.md --readme-table llama-350m
# The third-party wheels are installed from .whl/ when it is carried (as scripts/device_bench.sh does).
set -u
export PYTHONUNBUFFERED=1
: "${OUT:?set OUT to the output directory}"
mkdir -p "$OUT"
BUDGET_S=${BUDGET_S:-540}
START=$(date +%s)
TINY=0
if [ "${1:-}" = "--tiny" ]; then TINY=1; shift; fi
if [ $# -eq 0 ]; then sed -n '2,22p' "$0"; exit 2; fi

if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        && export PYTHONPATH=/tmp/site:$PWD
else
    export PYTHONPATH=$PWD
fi
PY=${PYTHON:-python3}

if [ $TINY -eq 1 ]; then
    DEV="--device cpu"; M60=tiny; M350=tiny; STEADY="--steady 2 --train-steps 1"; TRAIN_MODEL=tiny
    ORACLE="--device cpu --steps 4 --refresh 2 --names adam,lion,galore_adamw,adarankgrad,mars_shampoo"
    ORACLE_C="--device cpu --steps 3 --refresh 2 --names lion"; COMPILE_NAMES="--names lion"
    THIRD="--no-third-party"
else
    nvidia-smi --query-gpu=name,memory.total --format=csv
    DEV="--device cuda"; M60=llama-60m; M350=llama-350m; STEADY=""; TRAIN_MODEL=llama-60m
    ORACLE="--device cuda"; ORACLE_C="--device cuda --names adam,sgd,lion,adagrad_norm,adagrad_coordinate,adagrad_subset_norm,adam_sn,rmsprop_sn"
    COMPILE_NAMES=""; THIRD=""
fi
BENCH="$PY -m verify.gpu_bench $DEV $STEADY"

run_part() {  # name, command...: bounded by what is left of the budget; logs its time and exit status
    local name=$1; shift
    local left=$(( BUDGET_S - ($(date +%s) - START) ))
    if [ $left -le 10 ]; then echo "$name: skipped (budget spent)" | tee -a "$OUT/device_fast.log"; return; fi
    local t0=$(date +%s)
    timeout $left "$@" > "$OUT/$name.out" 2>&1
    local rc=$?
    echo "$name: rc=$rc, $(( $(date +%s) - t0 )) s" | tee -a "$OUT/device_fast.log"
    tail -n 3 "$OUT/$name.out"
}

for part in "$@"; do
    case $part in
        steps60) run_part steps60 $BENCH --models $M60 --no-training --paths reference,fast $THIRD \
                     --json "$OUT/part_steps60.json" --markdown "$OUT/part_steps60.md" ;;
        train60) run_part train60 $BENCH --models "" --train-model $TRAIN_MODEL --paths reference,fast \
                     --json "$OUT/part_train60.json" --markdown "$OUT/part_train60.md" ;;
        oracle) run_part oracle $PY -m verify.fast_oracle $ORACLE --modes fast \
                     --json "$OUT/fast_oracle.json" --markdown "$OUT/fast_oracle.md" ;;
        steps350ref) run_part steps350ref $BENCH --models $M350 --no-training --paths reference $THIRD \
                     --json "$OUT/part_steps350ref.json" --markdown "$OUT/part_steps350ref.md" ;;
        steps350fast) run_part steps350fast $BENCH --models $M350 --no-training --paths fast --no-third-party \
                     --json "$OUT/part_steps350fast.json" --markdown "$OUT/part_steps350fast.md" ;;
        compile60) run_part compile60 $BENCH --models $M60 --no-training --paths compile --no-third-party $COMPILE_NAMES \
                     --json "$OUT/part_compile60.json" --markdown "$OUT/part_compile60.md" ;;
        oracle-compile) run_part oracle_compile $PY -m verify.fast_oracle $ORACLE_C --modes compile \
                     --json "$OUT/fast_oracle_compile.json" --markdown "$OUT/fast_oracle_compile.md" ;;
        *) echo "unknown part: $part" | tee -a "$OUT/device_fast.log" ;;
    esac
done
echo "total: $(( $(date +%s) - START )) s" | tee -a "$OUT/device_fast.log"
