"""``verify oracle --nproc N`` / :func:`verify.oracle.distributed.compare_distributed`: the candidate runs on 2
gloo ranks, its parameters and mapped states are gathered after every step and compared with the float64
reference. Our own FSDP2 path passes; a planted sharding bug (the SVD of the local shard at the second
refresh) is caught at the step it acts; DDP replicas that drift apart are caught at step 1."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch.distributed as dist

from verify.oracle.distributed import compare_distributed

pytestmark = pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()), reason="no gloo backend")
ROOT = Path(__file__).resolve().parents[2]
T = 5  # refresh period: refreshes at steps 1 and T + 1
GALORE = dict(strict=True, steps=2 * T + 1, kwargs={"update_proj_gap": T},
              state_map={"exp_avg": "exp_avg", "exp_avg_sq": "exp_avg_sq", "basis": "basis"})


def test_our_fsdp2_galore_matches_the_reference_on_every_step():
    report = compare_distributed("galore_adamw", "algorithms.galore_adamw:GaLoreAdamW", nproc=2, timeout=240, **GALORE)
    assert report.passed, report.summary(explain=True)
    assert report.compared_steps == list(range(1, 2 * T + 2))
    assert any("2 ranks (gloo), parameters sharded" in s for s in report.settings)
    assert set(report.series) == {"params", "state[exp_avg]", "state[exp_avg_sq]", "state[basis]"}


def test_verify_oracle_nproc_catches_the_svd_of_the_local_shard_at_the_second_refresh():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "verify", "oracle", "--nproc", "2", "--reference", "galore_adamw",
         "--candidate", "tests.verify.oracle_candidates:GaLoreLocalShardRefresh", "--strict", "--steps", str(2 * T + 1),
         "--kwargs", f'{{"update_proj_gap": {T}}}'],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 1, proc.stdout + proc.stderr[-2000:]
    assert f"FAIL at step {T + 1}" in proc.stdout.splitlines()[0], proc.stdout
    assert "first failure: step 6, params" in proc.stdout


def test_ddp_replicas_that_drift_apart_fail_at_step_one():
    good = compare_distributed("adam", "torch.optim:AdamW", nproc=2, layout="ddp", timeout=240, strict=True, steps=5,
                               kwargs={"lr": 1e-3}, candidate_kwargs={"foreach": False})
    assert good.passed, good.summary(explain=True)
    bad = compare_distributed("adam", "tests.verify.oracle_candidates:RankSkewedAdamW", nproc=2, layout="ddp",
                              timeout=240, strict=True, steps=5, kwargs={"lr": 1e-3}, candidate_kwargs={"foreach": False})
    assert not bad.passed and bad.failure.step == 1
    assert "differs between rank 0 and rank 1" in bad.failure.reason


def test_bad_distributed_settings_are_input_errors():
    from verify.oracle import OracleInputError

    with pytest.raises(OracleInputError, match="layout must be one of"):
        compare_distributed("adam", "torch.optim:AdamW", layout="zero3")
    with pytest.raises(OracleInputError, match="nproc must be an int >= 1"):
        compare_distributed("adam", "torch.optim:AdamW", nproc=0)
