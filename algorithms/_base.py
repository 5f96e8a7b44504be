"""The contract every optimizer in :mod:`algorithms` follows.

:class:`ReferenceOptimizer` is a thin :class:`torch.optim.Optimizer` over the update math, which
each method module writes once as plain functions on tensors (the way ``torch.optim.adamw`` pairs
``adamw()`` with ``AdamW``). The base class owns the bookkeeping that must be identical everywhere:

* **Gradient screening** before any state changes: sparse gradients raise ``TypeError``, complex
  parameters raise ``TypeError`` (unless the class sets ``supports_complex``), parameters whose
  ``grad`` is ``None`` are skipped.
* **Non-finite policy** (``nonfinite=``):

  ``"ignore"`` (default)
      no check; a NaN/Inf gradient flows through the arithmetic exactly as in ``torch.optim``.
      This adds no host synchronisation to a GPU step.
  ``"raise"``
      every gradient is checked with ``torch.isfinite`` (one host sync per step) and a
      :class:`NonFiniteGradientError` naming the parameter is raised *before any state changes*.

* **Randomness**: an optimizer that draws random numbers does so from a per-parameter
  :class:`torch.Generator` seeded from ``(group seed, position of the parameter in its group)``
  (so a parameter group behaves exactly like a separate optimizer); its state is saved in
  ``state[p]["rng_state"]`` (a ``uint8`` tensor), so a checkpoint resumes bit-exactly and two
  optimizers with the same seed produce bit-identical trajectories.
* **Checkpoints**: the state holds tensors and plain numbers only (``torch.load(weights_only=True)``
  works). :meth:`load_state_dict` restores every state tensor with its saved dtype (torch's default
  would cast integer index vectors, RNG states and fp32 statistics to the parameter dtype), moving it
  to the parameter's device, except host-side keys (``step``, ``rng_state``) which stay on the CPU.
* **Independent problems** (``batch_dims=B``): the first ``B`` dimensions of every parameter index
  independent problems (e.g. ``S`` seeds of one synthetic problem). Reductions (norms, SVDs, subset
  sums) never cross them, so a batched run equals ``S`` separate runs. Classes that cannot do this
  set ``supports_batch_dims = False``.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from itertools import chain
from typing import Any, Callable, ClassVar, Iterable

import torch
from torch.optim import Optimizer

from ._validation import check_choice, check_int

__all__ = ["ReferenceOptimizer", "NonFiniteGradientError", "NONFINITE_POLICIES", "param_seed"]

NONFINITE_POLICIES = ("ignore", "raise")


class NonFiniteGradientError(FloatingPointError):
    """Raised under ``nonfinite="raise"`` when a gradient holds NaN or Inf (no state was changed)."""


def param_seed(seed: int, index: int) -> int:
    """A 63-bit seed for parameter ``index`` derived from the optimizer's ``seed`` (stable across runs)."""
    digest = hashlib.blake2b(f"{seed}:{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


class ReferenceOptimizer(Optimizer):
    """Base class: subclasses implement :meth:`_init_state` and :meth:`_update_param`.

    Class attributes every subclass sets:

    ``registry_name``  name in :data:`algorithms.REGISTRY`
    ``paper``          citation, e.g. ``"arXiv 2411.07120"``
    ``variants``       the accepted ``variant=`` values (``"paper"`` first)
    """

    registry_name: ClassVar[str] = ""
    paper: ClassVar[str] = ""
    variants: ClassVar[tuple[str, ...]] = ("paper",)
    supports_complex: ClassVar[bool] = False
    supports_batch_dims: ClassVar[bool] = True
    #: state keys kept on the host (CPU) whatever the parameter's device
    host_state_keys: ClassVar[frozenset[str]] = frozenset({"step", "rng_state"})

    def __init__(
        self,
        params: Iterable[Any],
        defaults: dict[str, Any],
        *,
        seed: int = 0,
        nonfinite: str = "ignore",
        batch_dims: int = 0,
    ) -> None:
        defaults = dict(defaults)
        defaults["seed"] = check_int("seed", seed, minimum=0)
        defaults["nonfinite"] = check_choice("nonfinite", nonfinite, NONFINITE_POLICIES)
        defaults["batch_dims"] = check_int("batch_dims", batch_dims, minimum=0)
        if defaults["batch_dims"] and not self.supports_batch_dims:
            raise ValueError(f"batch_dims: {type(self).__name__} does not support independent batch dimensions")
        if "variant" in defaults:
            check_choice("variant", defaults["variant"], self.variants)
        self._generators: dict[torch.Tensor, torch.Generator] = {}
        super().__init__(params, defaults)
        for group in self.param_groups:
            self._validate_group(group)

    # ------------------------------------------------------------------ subclass hooks
    def _validate_group(self, group: dict[str, Any]) -> None:
        """Re-validate per-group hyperparameters (groups may override defaults)."""

    def _init_state(self, p: torch.Tensor, group: dict[str, Any], state: dict[str, Any]) -> None:
        raise NotImplementedError

    def _update_param(self, p: torch.Tensor, grad: torch.Tensor, state: dict[str, Any], group: dict[str, Any]) -> None:
        raise NotImplementedError

    def _step_group(self, group: dict[str, Any]) -> None:
        """One step on one parameter group; override for group-level coupling (global norms)."""
        for p in group["params"]:
            if p.grad is None:
                continue
            state = self.state[p]
            if len(state) == 0:
                state["step"] = torch.zeros((), dtype=torch.int64)
                self._init_state(p, group, state)
            self._update_param(p, p.grad, state, group)

    # ------------------------------------------------------------------ the step
    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self._screen_gradients()
        for group in self.param_groups:
            self._step_group(group)
        return loss

    def _param_label(self, group_index: int, param_index: int) -> str:
        group = self.param_groups[group_index]
        names = group.get("param_names")
        p = group["params"][param_index]
        if names is not None and param_index < len(names):
            return f"'{names[param_index]}' (shape {tuple(p.shape)})"
        return f"param_groups[{group_index}]['params'][{param_index}] (shape {tuple(p.shape)})"

    def _screen_gradients(self) -> None:
        """Reject sparse/complex/non-finite gradients before any state is touched."""
        cls = type(self).__name__
        for gi, group in enumerate(self.param_groups):
            for pi, p in enumerate(group["params"]):
                if p.grad is None:
                    continue
                if p.grad.is_sparse or p.grad.layout != torch.strided:
                    raise TypeError(f"{cls} does not support sparse gradients: {self._param_label(gi, pi)}")
                if p.is_complex() and not self.supports_complex:
                    raise TypeError(
                        f"{cls} does not support complex parameters: {self._param_label(gi, pi)}; "
                        "optimize torch.view_as_real(p) instead"
                    )
                if group["nonfinite"] == "raise" and not bool(torch.isfinite(p.grad).all()):
                    raise NonFiniteGradientError(
                        f"{cls}: non-finite gradient (NaN or Inf) for {self._param_label(gi, pi)}; "
                        "no optimizer state was changed"
                    )

    # ------------------------------------------------------------------ helpers for subclasses
    def _param_index(self, p: torch.Tensor) -> int:
        """Position of ``p`` inside its own group (so a group behaves like a separate optimizer)."""
        for g in self.param_groups:
            for i, q in enumerate(g["params"]):
                if q is p:
                    return i
        raise KeyError("parameter not managed by this optimizer")

    def generator(self, p: torch.Tensor) -> torch.Generator:
        """The parameter's own generator, restored from ``state[p]['rng_state']`` when present.

        Callers must call :meth:`save_generator` after drawing, so the state round-trips.
        """
        gen = self._generators.get(p)
        if gen is None:
            gen = torch.Generator(device=p.device)
            state = self.state[p]
            if "rng_state" in state:
                gen.set_state(state["rng_state"])
            else:
                seed = self.param_groups[self._group_index(p)]["seed"]
                gen.manual_seed(param_seed(seed, self._param_index(p)))
            self._generators[p] = gen
        return gen

    def save_generator(self, p: torch.Tensor) -> None:
        self.state[p]["rng_state"] = self._generators[p].get_state()

    def _group_index(self, p: torch.Tensor) -> int:
        for gi, g in enumerate(self.param_groups):
            if any(q is p for q in g["params"]):
                return gi
        raise KeyError("parameter not managed by this optimizer")

    # ------------------------------------------------------------------ checkpoints
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state dict, keeping every state tensor's saved dtype (see module docstring)."""
        groups = self.param_groups
        saved_groups = state_dict["param_groups"]
        if len(groups) != len(saved_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")
        for g, sg in zip(groups, saved_groups):
            if len(g["params"]) != len(sg["params"]):
                raise ValueError("loaded state dict contains a parameter group that doesn't match the size of optimizer's group")
        id_map = dict(
            zip(
                chain.from_iterable(sg["params"] for sg in saved_groups),
                chain.from_iterable(g["params"] for g in groups),
            )
        )
        state: defaultdict[torch.Tensor, dict[str, Any]] = defaultdict(dict)
        for key, value in state_dict["state"].items():
            if key not in id_map:
                continue
            p = id_map[key]
            state[p] = {k: self._restore_state_value(k, v, p) for k, v in value.items()}
        new_groups = []
        for g, sg in zip(groups, saved_groups):
            ng = {k: v for k, v in sg.items() if k != "params"}
            ng["params"] = g["params"]
            self._validate_group(ng)
            new_groups.append(ng)
        self.__setstate__({"state": state, "param_groups": new_groups})
        self._generators = {}

    def _restore_state_value(self, key: str, value: Any, p: torch.Tensor) -> Any:
        if isinstance(value, torch.Tensor):
            device = torch.device("cpu") if key in self.host_state_keys else p.device
            return value.detach().clone().to(device=device)
        if isinstance(value, dict):
            return {k: self._restore_state_value(k, v, p) for k, v in value.items()}
        return value

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        if not hasattr(self, "_generators"):
            self._generators = {}

    def __repr__(self) -> str:  # torch's repr lists every group; keep it but name the registry entry
        return super().__repr__().replace(type(self).__name__, f"{type(self).__name__}[{self.registry_name}]", 1)


def batch_shape(p: torch.Tensor, group: dict[str, Any]) -> tuple[torch.Size, torch.Size]:
    """Split ``p.shape`` into (independent batch dims, problem dims)."""
    b = group["batch_dims"]
    if p.dim() < b:
        raise ValueError(f"batch_dims={b} but a parameter has only {p.dim()} dimensions")
    return p.shape[:b], p.shape[b:]
