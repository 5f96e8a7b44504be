"""Parameter groups for either side: per-group options (e.g. ``rank``, ``update_proj_gap``) as JSON.

Many optimizers take their method-specific options per group: galore-torch and fira project only
parameters in a group with a ``rank`` key (a flat list silently runs plain AdamW), pytorch-optimizer's
AdamWSN applies subset-norm only in groups with ``sn=True``. A group spec is a list of dicts; each
dict's ``"params"`` selects the oracle's parameters and every other key is passed in the group:

==================  =============================================================
``"params"``        selects
==================  =============================================================
``"matrices"``      2-D parameters (``tall``, ``wide``, ``square``)
``"tensors"``       parameters with 3 or more dimensions
``"vectors"``       1-D parameters
``"scalars"``       0-D parameters
``"non-matrices"``  everything that is not 2-D
``"all"``           every parameter
``"rest"``          every parameter no other group selected (also when ``"params"`` is left out)
a list              parameter indices or names, e.g. ``[0, "square"]``
==================  =============================================================

Example (galore-torch): ``[{"params": "matrices", "rank": 4, "update_proj_gap": 200, "scale": 1.0,
"proj_type": "std"}, {"params": "rest"}]``. Every parameter must land in exactly one group; a group
that selects nothing is dropped (and reported).
"""

from __future__ import annotations

import json
from typing import Any, Sequence

import torch

from .errors import OracleInputError

__all__ = ["SELECTORS", "parse_groups", "build_groups"]

SELECTORS = {
    "matrices": lambda shape: len(shape) == 2,
    "tensors": lambda shape: len(shape) >= 3,
    "vectors": lambda shape: len(shape) == 1,
    "scalars": lambda shape: len(shape) == 0,
    "non-matrices": lambda shape: len(shape) != 2,
    "all": lambda shape: True,
}


def parse_groups(spec: str | Sequence[dict[str, Any]] | None, option: str = "--groups") -> list[dict[str, Any]] | None:
    """A JSON string or a list of dicts -> a validated list of group dicts (``None`` stays ``None``)."""
    if spec is None or spec == "":
        return None
    if isinstance(spec, str):
        try:
            spec = json.loads(spec)
        except json.JSONDecodeError as exc:
            raise OracleInputError(f"{option}: invalid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(spec, (list, tuple)) or not spec or not all(isinstance(g, dict) for g in spec):
        raise OracleInputError(f"{option}: expected a non-empty JSON list of objects, e.g. "
                               '[{"params": "matrices", "rank": 4}, {"params": "rest"}]')
    return [dict(g) for g in spec]


def _select(selector: Any, shapes: Sequence[tuple[int, ...]], names: Sequence[str], option: str) -> list[int]:
    if isinstance(selector, str):
        if selector not in SELECTORS:
            valid = ", ".join([*SELECTORS, "rest"])
            raise OracleInputError(f"{option}: unknown params selector {selector!r}; valid: {valid}, or a list of "
                                   f"indices/names ({', '.join(names)})")
        return [i for i, s in enumerate(shapes) if SELECTORS[selector](s)]
    items = selector if isinstance(selector, (list, tuple)) else [selector]
    chosen = []
    for item in items:
        if isinstance(item, int) and not isinstance(item, bool) and 0 <= item < len(names):
            chosen.append(item)
        elif isinstance(item, str) and item in names:
            chosen.append(names.index(item))
        else:
            raise OracleInputError(f"{option}: no parameter {item!r}; parameters: "
                                   + ", ".join(f"{i}={n}" for i, n in enumerate(names)))
    return chosen


def build_groups(
    spec: list[dict[str, Any]] | None,
    params: Sequence[torch.Tensor],
    shapes: Sequence[tuple[int, ...]],
    names: Sequence[str],
    option: str = "--groups",
) -> tuple[list[torch.Tensor] | list[dict[str, Any]], list[str]]:
    """The ``params`` argument for the optimizer (a flat list when ``spec`` is None) and notes."""
    if spec is None:
        return list(params), []
    owner: dict[int, int] = {}
    selected: list[list[int] | None] = []
    for gi, group in enumerate(spec):
        selector = group.get("params", "rest")
        if selector == "rest":
            selected.append(None)
            continue
        chosen = _select(selector, shapes, names, option)
        for i in chosen:
            if i in owner:
                raise OracleInputError(f"{option}: parameter {names[i]} is selected by groups {owner[i]} and {gi}")
            owner[i] = gi
        selected.append(chosen)
    rest = [i for i in range(len(params)) if i not in owner]
    if sum(s is None for s in selected) > 1:
        raise OracleInputError(f"{option}: only one group may take the rest (\"params\": \"rest\" or no \"params\")")
    if rest and None not in selected:
        raise OracleInputError(f"{option}: parameters {', '.join(names[i] for i in rest)} are in no group; "
                               'add {"params": "rest"}')
    groups, notes = [], []
    for gi, (group, chosen) in enumerate(zip(spec, selected)):
        chosen = rest if chosen is None else chosen
        if not chosen:
            notes.append(f"{option}: group {gi} ({group.get('params', 'rest')}) selects no parameter and was dropped")
            continue
        groups.append({**{k: v for k, v in group.items() if k != "params"}, "params": [params[i] for i in sorted(chosen)]})
    return groups, notes
