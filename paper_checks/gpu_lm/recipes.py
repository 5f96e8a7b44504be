"""Per-method recipes for the GPU run: registry name, learning rate, hyperparameters, routing.

Routing follows each paper (gpu-validation.md "Pitfalls"):
* ``dense``   — every parameter in one group (Adam/AdamW baseline);
* ``blocks``  — attention and MLP linear weights in the method's low-rank group; embeddings,
  lm_head and norms in a dense AdamW group (GaLore, Fira, LDAdam, AdaRankGrad);
* ``linear``  — every nn.Linear weight including lm_head in the method's group; the rest Adam (SN-SM);
* ``mars``    — 2-D tensors MARS, everything else AdamW with the 1-D settings (official MARS rule).

Learning rates are the papers' 60M-scale choices where they exist (cited per entry); no per-method
tuning was done here, which the results file states.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

import algorithms

RECIPES: dict[str, dict[str, Any]] = {
    "adam": {"registry": "adam", "lr": 1e-3, "hyper": {"betas": (0.9, 0.999), "weight_decay": 0.0},
             "routing": "dense", "source": "GaLore Table 2 full-rank baseline lr 1e-3"},
}


def block_linear_weights(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(attention/MLP linear weights inside the blocks, everything else)."""
    lowrank = [m.weight for name, m in model.named_modules() if isinstance(m, nn.Linear) and name.startswith("layers.")]
    ids = {id(p) for p in lowrank}
    return lowrank, [p for p in model.parameters() if id(p) not in ids]


def build_optimizer(name: str, model: nn.Module) -> tuple[torch.optim.Optimizer, str]:
    recipe = RECIPES[name]
    if recipe["routing"] == "dense":
        opt = algorithms.make(recipe["registry"], model.parameters(), lr=recipe["lr"], **recipe["hyper"])
        return opt, "dense"
    raise ValueError(f"unknown routing {recipe['routing']!r}")
