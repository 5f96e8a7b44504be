"""verify/oracle.py: passes a correct implementation, fails planted bugs."""

from __future__ import annotations

import pytest
import torch

from verify.cli import main
from verify.oracle import compare


class AdamWrongBiasCorrection(torch.optim.Optimizer):
    """A planted bug: the second-moment bias correction uses β1 instead of β2."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for p in group["params"]:
                st = self.state[p]
                if not st:
                    st["t"], st["m"], st["v"] = 0, torch.zeros_like(p), torch.zeros_like(p)
                st["t"] += 1
                st["m"].lerp_(p.grad, 1 - b1)
                st["v"].mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
                denom = (st["v"] / (1 - b1 ** st["t"])).sqrt() + group["eps"]
                p.add_(st["m"] / (1 - b1 ** st["t"]) / denom, alpha=-group["lr"])


@pytest.mark.parametrize("gradients", ["random", "loss"])
def test_torch_adamw_passes_in_float32(gradients):
    rep = compare("adam", torch.optim.AdamW, reference_kwargs=dict(lr=1e-2, weight_decay=0.1),
                  candidate_kwargs=dict(lr=1e-2, weight_decay=0.1, foreach=False), steps=30,
                  gradients=gradients, state_map={"exp_avg": "exp_avg", "exp_avg_sq": "exp_avg_sq"})
    assert rep.passed, rep.summary()
    assert 0 < max(rep.param_err) < 1e-5  # float32 rounding is visible but small


def test_float64_candidate_is_held_to_round_off():
    rep = compare("adam", torch.optim.AdamW, reference_kwargs=dict(lr=1e-2), dtype=torch.float64,
                  candidate_kwargs=dict(lr=1e-2, weight_decay=0.0, foreach=False), steps=30)
    assert rep.passed and max(rep.param_err) < 1e-12


def test_planted_bias_correction_bug_fails():
    rep = compare("adam", AdamWrongBiasCorrection, reference_kwargs=dict(lr=1e-2),
                  candidate_kwargs=dict(lr=1e-2), steps=30)
    assert not rep.passed and rep.first_failure == 1


def test_wrong_hyperparameter_fails():
    rep = compare("adam", torch.optim.AdamW, reference_kwargs=dict(lr=1e-2, weight_decay=0.0),
                  candidate_kwargs=dict(lr=1e-2, weight_decay=0.01, foreach=False), steps=10)
    assert not rep.passed


def test_bfloat16_candidate_uses_bf16_tolerance():
    rep = compare("sgd", torch.optim.SGD, reference_kwargs=dict(lr=1e-2, momentum=0.9),
                  candidate_kwargs=dict(lr=1e-2, momentum=0.9), dtype=torch.bfloat16, steps=20)
    assert rep.rtol == 2e-2 and rep.passed, rep.summary()


def test_cli_exit_codes(tmp_path, capsys):
    ok = main(["oracle", "--reference", "adam", "--candidate", "torch.optim:AdamW", "--kwargs", '{"lr": 0.01}',
               "--candidate-kwargs", '{"weight_decay": 0.0, "foreach": false}', "--steps", "10",
               "--json", str(tmp_path / "r.json")])
    assert ok == 0 and (tmp_path / "r.json").exists()
    bad = main(["oracle", "--reference", "adam", "--candidate", "tests.verify.test_oracle:AdamWrongBiasCorrection",
                "--kwargs", '{"lr": 0.01}', "--steps", "10"])
    assert bad == 1
    assert "FAIL" in capsys.readouterr().out


def test_bad_arguments():
    with pytest.raises(ValueError, match="reference"):
        compare("nope", torch.optim.AdamW)
    with pytest.raises(ValueError, match="steps"):
        compare("adam", torch.optim.AdamW, steps=0)
