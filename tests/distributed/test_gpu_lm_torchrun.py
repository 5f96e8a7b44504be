"""The GPU LM harness (paper_checks/gpu_lm/train.py) under torchrun with DDP, on CPU with gloo and a tiny
model: the 2-rank run keeps bit-identical replicas and equals the single-process run on the same global
batches (up to float32 round-off of the gradient averaging)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ARGS = ["--tiny", "--device", "cpu", "--steps", "3", "--batch", "4", "--eval-seqs", "4", "--eval-every", "3",
        "--warmup", "1", "--optimizers", "galore_adamw", "--rank", "4"]


def run(prefix: list[str], out: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([*prefix, "-m", "paper_checks.gpu_lm.train", *ARGS, "--out", str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((out / "gpu_lm.json").read_text())["results"][0]


def test_torchrun_ddp_equals_the_single_process_run(tmp_path):
    single = run([sys.executable], tmp_path / "single")
    ddp = run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"], tmp_path / "ddp")
    assert single["world_size"] == 1 and ddp["world_size"] == 2
    assert ddp["replicas_identical"] is True
    assert ddp["routing"] == single["routing"]
    for a, b in zip(single["curve"], ddp["curve"]):
        assert a["step"] == b["step"]
        assert abs(a["eval_loss"] - b["eval_loss"]) <= 1e-5 * abs(a["eval_loss"]), (a, b)
