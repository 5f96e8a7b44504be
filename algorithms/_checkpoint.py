"""State-dict validation for :meth:`ReferenceOptimizer.load_state_dict`: everything is checked before
anything changes, and a mismatch is a ``ValueError`` that says what differs.

A state dict written by :meth:`ReferenceOptimizer.state_dict` carries, besides torch's ``"state"``
and ``"param_groups"``, the entry ``"optverify"``::

    {"optimizer": "galore_adamw", "param_shapes": [[6, 4], [4]], "param_dtypes": ["float64", "float64"]}

(plain lists and strings, so ``torch.load(weights_only=True)`` reads it). The checks, in order:

1. it is an optimizer state dict at all (``"state"`` and ``"param_groups"``; a model's state dict
   by mistake is named as such);
2. it comes from the same registered optimizer (by ``"optverify"``), or, without that entry, the
   class translates it (``torch.optim.AdamW`` into ``adam``, :meth:`_import_foreign_state_dict`);
3. the same number of groups and of parameters per group;
4. every hyperparameter key of this optimizer is present in every saved group (the first missing
   key is named, with the saved keys: a state dict of another optimizer fails here), and the
   saved ``variant`` equals the group's;
5. every parameter has the shape and dtype it was saved for (the parameter and both shapes are
   named);
6. the saved hyperparameter values pass the class's own validation (done by the caller on the
   groups it builds, through :func:`validate_loaded_group`).

A state dict without ``"optverify"`` (written by an older version of this package, or built by
hand) skips check 5.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:  # pragma: no cover
    from ._base import ReferenceOptimizer

__all__ = ["STATE_DICT_INFO_KEY", "state_dict_info", "check_state_dict", "validate_loaded_group", "dtype_name"]

STATE_DICT_INFO_KEY = "optverify"


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _flat_params(opt: "ReferenceOptimizer") -> list[tuple[int, int, torch.Tensor]]:
    return [(gi, pi, p) for gi, g in enumerate(opt.param_groups) for pi, p in enumerate(g["params"])]


def state_dict_info(opt: "ReferenceOptimizer") -> dict[str, Any]:
    """The ``"optverify"`` entry of a state dict: registry name, parameter shapes and dtypes."""
    params = [p for _, _, p in _flat_params(opt)]
    return {
        "optimizer": opt.registry_name,
        "param_shapes": [list(p.shape) for p in params],
        "param_dtypes": [dtype_name(p.dtype) for p in params],
    }


def _prefix(opt: "ReferenceOptimizer") -> str:
    return f"{type(opt).__name__}.load_state_dict"


def check_state_dict(opt: "ReferenceOptimizer", state_dict: Any) -> dict[str, Any]:
    """Checks 1–5 of the module docstring; returns the state dict to load (translated when foreign)."""
    where = _prefix(opt)
    if not isinstance(state_dict, Mapping) or not {"state", "param_groups"} <= set(state_dict):
        got = sorted(map(str, state_dict))[:6] if isinstance(state_dict, Mapping) else type(state_dict).__name__
        raise ValueError(
            f"{where}: not an optimizer state dict (expected the keys 'state' and 'param_groups', got {got}); "
            "a model's state dict belongs in model.load_state_dict"
        )
    info = state_dict.get(STATE_DICT_INFO_KEY)
    if info is None:
        translated = type(opt)._import_foreign_state_dict(state_dict, opt)
        if translated is not None:
            state_dict = translated
    elif info.get("optimizer") != opt.registry_name:
        raise ValueError(
            f"{where}: the state dict is from optimizer {info.get('optimizer')!r}, this optimizer is "
            f"{opt.registry_name!r}"
        )
    _check_group_layout(opt, state_dict["param_groups"])
    _check_group_keys(opt, state_dict["param_groups"])
    if info is not None:
        _check_param_metadata(opt, info)
    return dict(state_dict)


def _check_group_layout(opt: "ReferenceOptimizer", saved_groups: Any) -> None:
    where = _prefix(opt)
    if not isinstance(saved_groups, (list, tuple)) or not all(isinstance(g, Mapping) and "params" in g for g in saved_groups):
        raise ValueError(f"{where}: 'param_groups' must be a list of dicts with 'params'")
    if len(saved_groups) != len(opt.param_groups):
        raise ValueError(
            f"{where}: the state dict has {len(saved_groups)} parameter group(s), this optimizer "
            f"{len(opt.param_groups)}"
        )
    for gi, (g, sg) in enumerate(zip(opt.param_groups, saved_groups)):
        if len(g["params"]) != len(sg["params"]):
            raise ValueError(
                f"{where}: param_groups[{gi}] of the state dict has {len(sg['params'])} parameter(s), "
                f"this optimizer's group {len(g['params'])}"
            )


def _check_group_keys(opt: "ReferenceOptimizer", saved_groups: list) -> None:
    where = _prefix(opt)
    for gi, (g, sg) in enumerate(zip(opt.param_groups, saved_groups)):
        missing = [k for k in opt.defaults if k not in sg]
        if missing:
            saved_keys = sorted(k for k in sg if k not in ("params", "param_names"))
            raise ValueError(
                f"{where}: param_groups[{gi}] of the state dict has no {missing[0]!r} (missing: {missing}); "
                f"it was saved by another optimizer (its keys: {saved_keys})"
            )
        if "variant" in opt.defaults and sg["variant"] != g["variant"]:
            raise ValueError(
                f"{where}: param_groups[{gi}] was saved with variant={sg['variant']!r}, this optimizer's group "
                f"has variant={g['variant']!r}; construct the optimizer with variant={sg['variant']!r}"
            )


def _check_param_metadata(opt: "ReferenceOptimizer", info: Mapping) -> None:
    where = _prefix(opt)
    shapes, dtypes = info.get("param_shapes"), info.get("param_dtypes")
    flat = _flat_params(opt)
    if not isinstance(shapes, list) or not isinstance(dtypes, list) or len(shapes) != len(flat) or len(dtypes) != len(flat):
        raise ValueError(f"{where}: the state dict's {STATE_DICT_INFO_KEY!r} entry does not list one shape and "
                         f"dtype per parameter ({len(flat)} parameters)")
    for (gi, pi, p), shape, dtype in zip(flat, shapes, dtypes):
        if tuple(shape) != tuple(p.shape) or dtype != dtype_name(p.dtype):
            raise ValueError(
                f"{where}: {opt._param_label(gi, pi)}: the state dict was saved for shape {tuple(shape)} "
                f"{dtype}, this parameter has shape {tuple(p.shape)} {dtype_name(p.dtype)}"
            )


def validate_loaded_group(opt: "ReferenceOptimizer", gi: int, group: dict[str, Any]) -> None:
    """Check 6: the class's validation of a group built from saved values (errors name the group)."""
    from ._base import NONFINITE_POLICIES
    from .validation import check_choice, check_int

    try:
        check_int("seed", group["seed"], minimum=0)
        check_choice("nonfinite", group["nonfinite"], NONFINITE_POLICIES)
        check_int("batch_dims", group["batch_dims"], minimum=0)
        opt._validate_group(group)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{_prefix(opt)}: param_groups[{gi}] of the state dict: {exc}") from None
