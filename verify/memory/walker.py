"""Measure an optimizer's state by walking it: elements and bytes of every state tensor.

:func:`walk_state` visits ``optimizer.state`` (parameter → state dict, nested dicts/lists included) and
records, for every tensor leaf, its key path, dtype, device, ``numel``, ``numel × element_size`` (the
*tensor bytes*) and the bytes of the **storage** it keeps alive (``untyped_storage().nbytes()``). The
two byte counts differ when a state tensor is a view into a larger buffer (e.g. the first ``r``
columns of a full SVD kept as a slice): the state then costs the whole storage, which a formula in
elements would miss. Shared storages (aliases between keys or parameters, as MARS-approx's
``last_grad`` in the official code) are counted once in :attr:`StateReport.unique_storage_bytes`
and listed in :attr:`StateReport.aliases`.

Plain Python numbers in the state are host scalars: recorded with ``numel = 1`` and zero device
bytes (they live in the Python heap), so they show up in the comparison with a formula.

The walker only *reads*; it never calls the optimizer's code.
"""

from __future__ import annotations

import numbers
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterator

import torch

__all__ = ["Leaf", "ParamState", "StateReport", "walk_state"]


@dataclass(frozen=True)
class Leaf:
    path: str  # key inside the parameter's state, nested keys joined by "."
    kind: str  # "tensor" or "number"
    dtype: str
    device: str
    numel: int
    nbytes: int  # numel × element size
    storage_nbytes: int  # bytes of the storage the tensor keeps alive (0 for numbers)
    storage_key: tuple[str, int] | None  # (device, data_ptr) for de-duplication; None for numbers/empty


@dataclass
class ParamState:
    index: int  # position in the flattened param_groups
    name: str
    shape: tuple[int, ...]
    dtype: torch.dtype
    leaves: list[Leaf] = field(default_factory=list)

    def by_path(self) -> dict[str, Leaf]:
        return {leaf.path: leaf for leaf in self.leaves}

    @property
    def elements(self) -> int:
        return sum(leaf.numel for leaf in self.leaves if leaf.kind == "tensor")

    @property
    def nbytes(self) -> int:
        return sum(leaf.nbytes for leaf in self.leaves)

    @property
    def storage_nbytes(self) -> int:
        return sum(leaf.storage_nbytes for leaf in self.leaves)


@dataclass
class StateReport:
    params: list[ParamState]
    aliases: list[tuple[str, str]]  # pairs of "param_name:path" that share one storage
    unique_storage_bytes: int

    @property
    def elements(self) -> int:
        return sum(ps.elements for ps in self.params)

    @property
    def nbytes(self) -> int:
        return sum(ps.nbytes for ps in self.params)

    def by_param(self) -> dict[int, ParamState]:
        return {ps.index: ps for ps in self.params}


def _leaves(value: Any, path: str) -> Iterator[Leaf]:
    if isinstance(value, torch.Tensor):
        storage = value.untyped_storage()
        nbytes = value.numel() * value.element_size()
        key = (str(value.device), storage.data_ptr()) if storage.nbytes() else None
        yield Leaf(path, "tensor", str(value.dtype).replace("torch.", ""), str(value.device), value.numel(), nbytes,
                   storage.nbytes(), key)
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from _leaves(v, f"{path}.{i}" if path else str(i))
    elif isinstance(value, (numbers.Number, bool)) or value is None:
        yield Leaf(path, "number", type(value).__name__, "host", 1, 0, 0, None)
    else:
        raise TypeError(f"state entry {path!r} holds a {type(value).__name__}; a state must be tensors and plain numbers")


def walk_state(optimizer: torch.optim.Optimizer) -> StateReport:
    """The :class:`StateReport` of ``optimizer``: one :class:`ParamState` per parameter that has state."""
    params: list[ParamState] = []
    owners: dict[tuple[str, int], list[str]] = defaultdict(list)
    storage_bytes: dict[tuple[str, int], int] = {}
    index = 0
    for gi, group in enumerate(optimizer.param_groups):
        names = group.get("param_names")
        for pi, param in enumerate(group["params"]):
            name = names[pi] if names is not None and pi < len(names) else f"param_groups[{gi}]['params'][{pi}]"
            state = optimizer.state.get(param)
            if state:
                ps = ParamState(index, name, tuple(param.shape), param.dtype, list(_leaves(state, "")))
                for leaf in ps.leaves:
                    if leaf.storage_key is not None:
                        owners[leaf.storage_key].append(f"{name}:{leaf.path}")
                        storage_bytes[leaf.storage_key] = leaf.storage_nbytes
                params.append(ps)
            index += 1
    aliases = [(a, other) for users in owners.values() if len(users) > 1 for a, other in zip(users, users[1:])]
    return StateReport(params, aliases, sum(storage_bytes.values()))
