"""verify/memory/gpu.py on CPU with a tiny model: plumbing, predictions, the bookkeeping of the
CUDA statistics (through a fake probe), the JSON it writes. The CUDA run itself is done by the lead."""

from __future__ import annotations

import json

import pytest
import torch

from verify.memory import gpu as gm
from verify.memory.formulas import param_memory


class FakeProbe:
    """Deterministic stand-in for torch.cuda statistics: allocated() and peak() follow a script."""

    def __init__(self):
        self.calls = []
        self.level = 1000

    def allocated(self):
        self.calls.append("allocated")
        self.level += 10
        return self.level

    def reset_peak(self):
        self.calls.append("reset")

    def peak(self):
        self.calls.append("peak")
        return self.level + 500


def test_tiny_run_writes_json_with_exact_states(tmp_path):
    rc = gm.main(["--tiny", "--device", "cpu", "--out", str(tmp_path), "--steps", "3", "--batch", "2",
                  "--algorithms", "adam,galore_adamw,adam_sn_sm"])
    assert rc == 0
    data = json.loads((tmp_path / "gpu_memory.json").read_text())
    assert [r["algorithm"] for r in data["results"]] == ["adam", "galore_adamw", "adam_sn_sm"]
    assert data["errors"] == {}
    for r in data["results"]:
        assert r["state_exact"], r["state_mismatches"]
        assert len(r["steps"]) == 3 and r["steps"][0]["peak_bytes"] is None  # no CUDA statistics on CPU
        assert r["steps"][-1]["predicted_state_bytes"] > 0
    galore = data["results"][1]
    method, dense = galore["groups"]
    assert method["update_proj_gap"] == 3 and method["rank"] == 64 and method["lowrank"]  # rank capped at dim
    assert dense["lowrank"] is False


def test_fake_probe_bookkeeping():
    probe = FakeProbe()
    out = gm.measure_algorithm("adam", gm.TINY, device=torch.device("cpu"), steps=2, batch=2, rank=8, seed=0, probe=probe)
    assert probe.calls == ["allocated", "reset", "peak", "allocated"] * 2
    for rec in out["steps"]:
        assert rec["transient_bytes"] == rec["peak_bytes"] - rec["before_bytes"] == 500
        assert rec["peak_above_weights_and_grads_bytes"] == rec["peak_bytes"] - rec["weights_bytes"] - rec["grads_bytes"]
        assert rec["state_growth_bytes"] == 10
        assert rec["tensor_peak_bytes"] == rec["predicted_transient_bytes"] or rec["step"] == 1  # Adam: exact
        assert rec["predicted_peak_above_weights_and_grads_bytes"] == (
            rec["predicted_state_bytes_allocator_rounded"] + rec["predicted_transient_bytes"])
    s = out["summary"]
    assert s["max_transient_bytes"] == 500
    assert s["transient_ratio_measured_to_predicted"] == pytest.approx(500 / s["predicted_transient_bytes"])


def test_predictions_follow_the_formulas():
    model = gm.Llama(gm.TINY)
    from verify.memory.models import table_groups
    import algorithms

    opt = algorithms.make("galore_adamw", table_groups("galore_adamw", model, 8), lr=1e-4)
    pred = gm.predicted(opt, "galore_adamw")
    want = rounded = 0
    for g in opt.param_groups:
        for p in g["params"]:
            fm = param_memory("galore_adamw", tuple(p.shape), g)
            for t in fm.terms:
                if not t.host:
                    nb = fm.count(t) * t.element_size(4)
                    want += nb
                    rounded += -(-nb // 512) * 512 if nb else 0
    assert pred["state_bytes"] == want and pred["state_bytes_allocator_rounded"] == rounded
    assert pred["transient_bytes"] > 0


def test_bad_arguments():
    with pytest.raises(SystemExit, match="no registered optimizer"):
        gm.main(["--tiny", "--device", "cpu", "--out", "/tmp/unused", "--algorithms", "nope"])
    with pytest.raises(SystemExit, match="OUT"):
        gm.main(["--tiny", "--device", "cpu", "--out", ""])


def test_committed_gpu_memory_groups_are_the_routing_declared_on_the_classes():
    """results/memory/gpu_memory.json was measured before the routing moved onto the optimizer classes; its
    meta says so, and its groups (sizes and the routing's options) must still be the ones the classes give."""
    from pathlib import Path

    from algorithms.grouping import routing_of
    from synthetic.llama import Llama, LlamaConfig
    from verify.memory.models import table_groups

    data = json.loads((Path(__file__).resolve().parents[2] / "results" / "memory" / "gpu_memory.json").read_text())
    assert "PAPER_ROUTING" in data["meta"]["routing_note"]
    with torch.device("meta"):
        model = Llama(LlamaConfig(**data["meta"]["config"]))
    for row in data["results"]:
        name = row["algorithm"]
        groups = table_groups(name, model, data["meta"]["rank"], method_options=gm.EXTRA.get(name))
        assert [g["size"] for g in row["groups"]] == [len(g["params"]) for g in groups], name
        for recorded, group in zip(row["groups"], groups):
            declared = {k: v for k, v in group.items() if k not in ("params", "param_names")}
            assert {k: recorded[k] for k in declared} == declared, name
        assert routing_of(name).rule in (row["routing"], "single" if row["routing"] == "dense" else None), name
