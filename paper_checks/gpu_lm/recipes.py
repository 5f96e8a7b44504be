"""Per-method recipes for the GPU run: registry name, learning rate, hyperparameters, routing.

Routing follows each paper through :func:`algorithms.grouping.paper_param_groups` (the routing each
optimizer class declares): GaLore, Fira, LDAdam and AdaRankGrad project the attention and MLP linear
weights and keep embeddings, lm_head and norms on dense AdamW; SN-SM puts every nn.Linear weight (lm_head
included) in its SN(+SM) group and the rest on Adam; MARS routes inside the optimizer (exactly 2-D
tensors get MARS, everything else AdamW with the 1-D settings, the official rule); Adam is one group.

Learning rates and method settings are the papers' 60M-scale choices where they exist, cited per
entry. No per-method tuning was done here, and the results file says so: a ranking at this budget
is an early-training comparison, not a reproduction of any paper's table.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn as nn

import algorithms
from algorithms.grouping import paper_param_groups

RECIPES: dict[str, dict[str, Any]] = {
    "adam": {
        "registry": "adam", "lr": 1e-3, "hyper": {"betas": (0.9, 0.999)}, "group": {},
        "source": "GaLore Table 2 full-rank baseline (lr 1e-3, betas (0.9, 0.999))",
    },
    "galore_adamw": {
        "registry": "galore_adamw", "lr": 1e-2, "hyper": {"variant": "official"},
        "group": {"rank": 128, "update_proj_gap": 200, "scale": 0.25},
        "source": "GaLore §5 / Table 2 (60M): rank 128, T 200, alpha 0.25, lr 1e-2; authors' code conventions",
    },
    "fira_adamw": {
        "registry": "fira_adamw", "lr": 1e-2, "hyper": {"variant": "official"},
        "group": {"rank": 128, "update_proj_gap": 200, "scale": 0.25},
        "source": "Fira follows GaLore's 60M setting (rank 128, T 200, alpha 0.25, lr 1e-2); authors' code",
    },
    "ldadam": {
        "registry": "ldadam", "lr": 1e-3, "hyper": {"variant": "official", "betas": (0.908, 0.99)},
        "group": {"rank": 128, "rho": 0.908},
        "source": "LDAdam C4 script (lr 1e-3, betas (0.908, 0.99), rho 0.908); rank 128 as GaLore 60M (the script's 8 is for 350M)",
    },
    "adarankgrad": {
        "registry": "adarankgrad", "lr": 1e-2, "hyper": {},
        "group": {"max_rank": 128, "min_rank": 8, "scale": 0.25, "max_steps_per_subspace": 200},
        "source": "no verified paper values (docs/methods.md §6.1): GaLore's 60M lr/alpha/T with max rank 128; toolkit defaults otherwise",
    },
    "adam_sn": {
        "registry": "adam_sn", "lr": 5e-2, "hyper": {}, "group": {"subset_size": "heuristics"},
        "source": "SN-SM examples.sh LLaMA-60M AdamSN lr 5e-2, heuristic subsets",
    },
    "adam_sn_sm": {
        "registry": "adam_sn_sm", "lr": 5e-2, "hyper": {},
        "group": {"rank": 128, "update_proj_gap": 100, "subset_size": "heuristics"},
        "source": "SN-SM examples.sh LLaMA-60M AdamSNSM lr 5e-2, rank 128, gap 100 (the effective one), heuristics",
    },
    "mars_adamw": {
        "registry": "mars_adamw", "lr": 6e-3,
        "hyper": {"variant": "official", "betas": (0.95, 0.99), "gamma": 0.025, "lr_1d": 3e-3, "weight_decay_1d": 0.0},
        "group": {},
        "source": "MARS GPT-2 small config (lr 6e-3, betas (0.95, 0.99), gamma 0.025, approximate, lr_1d = lr/2); "
                  "weight decay 0 everywhere (also wd_1d, official 0.1) like every other recipe here",
    },
}


RANK_KEYS = ("rank", "max_rank")
#: the group options that set how many steps a subspace lives (refresh gap)
GAP_KEYS = ("update_proj_gap", "max_steps_per_subspace")
#: hyperparameters that are learning rates besides ``lr`` (scaled with it in a learning-rate sweep)
LR_KEYS = ("lr_1d",)


def build_optimizer(name: str, model: nn.Module, rank: int | None = None, *, lr_scale: float = 1.0,
                    refresh_gap: int | None = None) -> tuple[torch.optim.Optimizer, str]:
    """The optimizer of recipe ``name`` on ``model``, with its paper routing; returns (optimizer, routing label).

    ``rank`` overrides the recipe's rank (``rank``/``max_rank``; ``min_rank`` is capped by it), for models
    narrower than the recipe's rank (the CPU plumbing run). ``lr_scale`` multiplies the recipe's learning
    rate and every other learning rate of the recipe (:data:`LR_KEYS`: MARS's ``lr_1d`` keeps its ratio to
    ``lr``), for learning-rate sweeps. ``refresh_gap`` overrides the steps between subspace refreshes
    (:data:`GAP_KEYS`) of the recipes that have one (tiny test runs that must refresh within a few steps)."""
    if not (isinstance(lr_scale, (int, float)) and math.isfinite(lr_scale) and lr_scale > 0):
        raise ValueError(f"lr_scale must be a positive finite number, got {lr_scale!r}")
    recipe = RECIPES[name]
    group = dict(recipe["group"])
    if rank is not None:
        group.update({k: rank for k in RANK_KEYS if k in group})
        if "min_rank" in group:
            group["min_rank"] = min(group["min_rank"], rank)
    if refresh_gap is not None:
        group.update({k: refresh_gap for k in GAP_KEYS if k in group})
    hyper = {k: v * lr_scale if k in LR_KEYS else v for k, v in recipe["hyper"].items()}
    groups = paper_param_groups(recipe["registry"], model, **group)
    opt = algorithms.make(recipe["registry"], groups, lr=recipe["lr"] * lr_scale, **hyper)
    label = " | ".join(f"{len(g['params'])} tensors {({k: v for k, v in g.items() if k in ('lowrank', 'rank', 'max_rank')}) or ''}".strip() for g in groups)
    return opt, label
