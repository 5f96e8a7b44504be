"""paper_checks/gpu_lm/claims.py: the asserted claims pass on the committed results and fail on planted
bad results; paper claims measured off their setting are only ever reported (MEASURED)."""

from __future__ import annotations

import json
import os

import pytest

import paper_checks
from verify import claims as _claims
from verify.verdicts import Outcome
from paper_checks.gpu_lm import claims as gpu


def run_file(tmp_path, name, runs, seed=0):
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({"meta": {"args": {"seed": seed}, "h_star": 2.0}, "results": runs}))
    return path


def a_run(optimizer, gaps, diverged=False):
    curve = [{"step": 100 * (i + 1), "train_loss": 2 + g, "eval_loss": 2 + g, "gap": g} for i, g in enumerate(gaps)]
    return {"optimizer": optimizer, "curve": curve, "final_gap": gaps[-1] if gaps else None, "diverged": diverged}


def claim(cid):
    return next(c for c in _claims.load_claims(paper_checks) if c.key == cid)


def test_committed_results_pass_the_asserted_claims():
    for cid in ("gpu.trains-without-divergence", "gpu.state-equals-formula"):
        assert _claims.run_claim(claim(cid))["verdict"] == "PASS"


@pytest.mark.parametrize("bad", ["diverged", "no_improvement", "nan"])
def test_training_claim_fails_on_bad_runs(tmp_path, monkeypatch, bad):
    good = a_run("adam", [0.5, 0.1])
    broken = {
        "diverged": a_run("galore_adamw", [0.5], diverged=True),
        "no_improvement": a_run("galore_adamw", [0.1, 0.2]),
        "nan": a_run("galore_adamw", [0.5, float("nan")]),
    }[bad]
    run_file(tmp_path, "s0", [good, broken])
    real_load = gpu.load_runs
    monkeypatch.setattr(gpu, "load_runs", lambda pattern=None: real_load(os.path.join(str(tmp_path), "*.json")))
    out = _claims.run_claim(claim("gpu.trains-without-divergence"))
    assert out["verdict"] == "FAIL" and "galore_adamw" in out["reason"]


def _load(tmp_path):
    runs = {}
    for path in sorted(tmp_path.glob("*.json")):
        data = json.loads(path.read_text())
        for r in data["results"]:
            runs.setdefault(r["optimizer"], []).append({**r, "seed": data["meta"]["args"]["seed"]})
    return runs  # the same shape as gpu.load_runs, read from tmp_path


def test_state_claim_fails_when_a_state_differs(tmp_path, monkeypatch):
    with open(gpu.GPU_MEMORY) as fh:
        data = json.load(fh)
    data["results"][3]["state_exact"] = False
    path = tmp_path / "gpu_memory.json"
    path.write_text(json.dumps(data))
    monkeypatch.setattr(gpu, "GPU_MEMORY", str(path))
    out = _claims.run_claim(claim("gpu.state-equals-formula"))
    assert out["verdict"] == "FAIL" and data["results"][3]["algorithm"] in out["reason"]


def test_paper_claims_off_their_setting_are_reports(tmp_path, monkeypatch):
    run_file(tmp_path, "s0", [a_run("adam", [0.5, 0.10]), a_run("galore_adamw", [0.5, 0.05])])
    monkeypatch.setattr(gpu, "load_runs", lambda pattern=None: _load(tmp_path))
    out = _claims.run_claim(claim("galore.table2-60m"))
    assert out["verdict"] == "MEASURED" and not out["asserted"] and "galore_adamw is lower" in out["reason"]
    out = _claims.run_claim(claim("mars.beats-adamw"))
    assert out["verdict"] == "INCONCLUSIVE"


def test_an_unverified_claim_can_never_pass():
    c = _claims.Claim("x", "p", "w", "[U]", "s", "gpu", lambda quick: Outcome("PASS", "fine"))
    out = _claims.run_claim(c)
    assert out["verdict"] == "CONSISTENT" and not out["asserted"]


def test_a_crashing_check_is_an_asserted_error():
    def boom(quick):
        raise RuntimeError("no file")

    out = _claims.run_claim(_claims.Claim("x", "p", "w", "[P]", "s", "gpu", boom))
    assert out["verdict"] == "ERROR" and out["asserted"] and "no file" in out["reason"]


def test_committed_runs_used_the_current_routing_or_say_they_did_not():
    """Each committed GPU run recorded its groups; a run whose groups differ from what the recipe builds today
    must carry ``routing_superseded`` (and the claims that read it say so)."""
    import ast
    import glob
    import warnings

    import torch

    from paper_checks.gpu_lm.recipes import build_optimizer
    from synthetic.llama import Llama, LlamaConfig

    def groups(label):
        out = []
        for part in label.split(" | "):
            size, _, options = part.partition(" tensors")
            parsed = ast.literal_eval(options.strip()) if options.strip() else {}
            out.append((int(size), {k: v for k, v in parsed.items() if not (k == "lowrank" and v is True)}))
        return out

    superseded = 0
    for path in sorted(glob.glob(os.path.join(gpu.RUNS, "*.json"))):
        data = json.load(open(path))
        with torch.device("meta"):
            model = Llama(LlamaConfig(**data["meta"]["config"]))
        for run in data["results"]:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                _, label = build_optimizer(run["optimizer"], model, rank=data["meta"]["args"]["rank"])
            if groups(label) != groups(run["routing"]):
                assert "routing_superseded" in run and "routing_note" in data["meta"], (path, run["optimizer"])
                superseded += 1
    assert superseded == 2  # adam_sn, seeds 0 and 1
    outcome = claim("snsm.adamsn-matches-adam").check(True)
    assert "no longer the paper's" in outcome.reason
