"""Checks in the default suite: oracle identities against torch.optim."""

from __future__ import annotations

import torch

from verify.oracle import compare
from verify.suite import check
from verify.verdicts import judged


@check("adam == torch.optim.AdamW (float64, 50 steps)", "oracle")
def _adam_vs_torch(quick: bool):
    rep = compare("adam", torch.optim.AdamW, reference_kwargs=dict(lr=1e-2, weight_decay=0.1),
                  candidate_kwargs=dict(lr=1e-2, weight_decay=0.1, foreach=False), dtype=torch.float64,
                  gradients="loss", rtol=1e-12, state_map={"exp_avg": "exp_avg", "exp_avg_sq": "exp_avg_sq"})
    return judged(rep.passed, f"max rel err {max(rep.param_err):.1e}")


@check("sgd == torch.optim.SGD heavy ball (float64, 50 steps)", "oracle")
def _sgd_vs_torch(quick: bool):
    rep = compare("sgd", torch.optim.SGD, reference_kwargs=dict(lr=1e-2, momentum=0.9),
                  candidate_kwargs=dict(lr=1e-2, momentum=0.9, foreach=False), dtype=torch.float64,
                  gradients="loss", rtol=1e-12)
    return judged(rep.passed, f"max rel err {max(rep.param_err):.1e}")
