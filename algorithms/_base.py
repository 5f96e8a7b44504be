"""The contract every optimizer in :mod:`algorithms` follows.

:class:`ReferenceOptimizer` is a thin :class:`torch.optim.Optimizer` over the update math, which
each method module writes once as plain functions on tensors (the way ``torch.optim.adamw`` pairs
``adamw()`` with ``AdamW``). The base class owns the bookkeeping that must be identical everywhere:

* **Gradient screening** before any state changes: sparse gradients raise ``TypeError``, complex
  parameters raise ``TypeError`` (unless the class sets ``supports_complex``), parameters whose
  ``grad`` is ``None`` are skipped.
* **Non-finite policy** (``nonfinite=``), checked before any state changes:

  ``"raise"`` (default)
      a gradient holding NaN or Inf raises :class:`NonFiniteGradientError` naming the parameter;
      no parameter and no state has changed, so the caller can inspect, fix and call ``step()``
      again (or switch the policy).
  ``"skip"``
      the step of that parameter is skipped, exactly as if its ``grad`` were ``None`` (the other
      parameters step normally); ``state[p]["nonfinite_skips"]`` counts the skips and the first
      skip of an optimizer warns (``RuntimeWarning``).
  ``"ignore"``
      no check: NaN/Inf flows through the arithmetic as in ``torch.optim`` (no host
      synchronisation; the choice for a GPU step that must not sync).

  Why ``"raise"`` by default: a reference implementation must never silently turn a parameter
  into NaN, and a skipped step is a departure from the paper's algorithm that a user of a
  reference should ask for. Under ``"ignore"`` one NaN entry in one gradient spreads through the
  method's own coupling and stays for good. Measured (``tests/test_bad_inputs.py``, which asserts
  these numbers): a 6×8 matrix and an 8-vector (56 entries), random finite gradients except one
  NaN entry of the matrix's gradient, non-finite parameter entries after 10 steps, first input of
  each optimizer in ``tests/optim_db``; NaN at step 2 (no refresh) / at step 1 (a refresh):

  =====================================================================================  ======  ======
  optimizer                                                                              step 2  step 1
  =====================================================================================  ======  ======
  sgd, adam, adagrad_coordinate, mars_adamw                                              1       1
  lion, mars_lion (sign(NaN) = 0: the entry's momentum stays NaN; it never moves again)  0       0
  adagrad_subset_norm, adam_sn, rmsprop_sn (one subset)                                  6       6
  galore_adamw, adarankgrad, subspace_momentum, adam_sn_sm                               6       48
  fira_adamw, ldadam, mars_shampoo                                                       48      48
  adagrad_norm (one norm for the whole group)                                            56      56
  =====================================================================================  ======  ======

  The check is one multi-tensor reduction per device and dtype (the L1 norm of every gradient, which is
  finite exactly when the gradient is, unless the sum overflows; a tensor it flags is confirmed entry
  by entry, so an overflowing but finite gradient is never reported) and one host synchronisation per
  device per step.
* **Fast path** (``fast=``): every optimizer has one readable single-tensor path, the **reference**
  (the code the docstrings, the oracle and the committed results use). Every registered class also
  has a fast path (``has_fast_path``) that computes the same maths and is tested equal to the
  reference in float64 to round-off (``tests/test_fast_path.py``, state included): the elementwise
  methods run ``torch._foreach_*`` over the parameters of a group, bucketed by device, dtype and step
  (:mod:`algorithms._foreach`); the projected methods step the matrices of one shape as one stack, with
  one batched SVD/QR/power iteration and batched products per shape (:mod:`algorithms._stacked`; a step
  that draws random numbers from a parameter's own generator stays per parameter, so the streams are
  the reference's):

  ``False`` (default)
      the reference path everywhere. A reference implementation's default is the code you read;
      the fast path is asked for, as ``fused=True`` is in ``torch.optim``.
  ``True``
      the fast path on every device (``ValueError`` for a class without one).
  ``"auto"``
      the fast path for a parameter group whose parameters are all on a CUDA device, the reference
      elsewhere (``torch.optim``'s ``foreach=None`` rule); a class without a fast path runs the reference.
  ``"compile"``
      the fast path on every device, its multi-tensor elementwise updates compiled by ``torch.compile``
      so that each is a few fused kernels (:mod:`algorithms._compiled`: what is compiled, round-off
      instead of bit-identity, and the learning rate passed as a 0-d tensor so a schedule does not recompile).

  The switch is an attribute of the optimizer (``opt.fast``), not a group hyperparameter: a state
  dict written under one setting loads under the other, and both produce the same state layout.
  DTensor (FSDP2) parameter groups always take the reference path. The fast path holds every
  parameter's temporaries of one step at once (like ``foreach=True`` in ``torch.optim``), so its
  transient memory is a few parameter-sized buffers per bucket instead of per tensor.
* **Randomness**: an optimizer that draws random numbers does so from a per-parameter
  :class:`torch.Generator` seeded from ``(group seed, position of the parameter in its group)``
  (so a parameter group behaves exactly like a separate optimizer); its state is saved in
  ``state[p]["rng_state"]`` (a ``uint8`` tensor), so a checkpoint resumes bit-exactly and two
  optimizers with the same seed produce bit-identical trajectories.
* **Checkpoints**: the state holds tensors and plain numbers only (``torch.load(weights_only=True)``
  works). :meth:`state_dict` adds an ``"optverify"`` entry (the registry name and every parameter's
  shape and dtype). :meth:`load_state_dict` validates before it changes anything (see
  :mod:`algorithms._checkpoint`): a state dict of another optimizer, another variant, other
  group keys or parameters of other shapes or dtypes raises ``ValueError`` saying what differs,
  and the optimizer is left as it was. It then restores every state tensor with its saved dtype
  (torch's default would cast integer index vectors, RNG states and fp32 statistics to the
  parameter dtype), moving it to the parameter's device, except host-side keys (``step``,
  ``rng_state``, ``nonfinite_skips``) which stay on the CPU.
* **Parameters**: floating-point (complex where the class supports it) leaf tensors, each at
  most once, with at least ``batch_dims`` dimensions; anything else is a ``TypeError`` /
  ``ValueError`` naming the parameter, at construction and in :meth:`add_param_group` (which
  also validates the new group's hyperparameters and adds nothing when they are bad).
* **Devices**: any device, including ``meta`` (for memory planning: the step runs shape-only;
  a randomized method's generator lives on the CPU there, since meta tensors draw nothing).
* **Independent problems** (``batch_dims=B``): the first ``B`` dimensions of every parameter index
  independent problems (e.g. ``S`` seeds of one synthetic problem). Reductions (norms, SVDs, subset
  sums) never cross them, so a batched run equals ``S`` separate runs. Classes that cannot do this
  set ``supports_batch_dims = False``.
"""

from __future__ import annotations

import hashlib
import warnings
from collections import defaultdict
from itertools import chain
from typing import Any, Callable, ClassVar, Iterable

import torch
from torch.optim import Optimizer

from ._checkpoint import STATE_DICT_INFO_KEY, check_state_dict, state_dict_info, validate_loaded_group
from .validation import check_choice, check_int
from .distributed import dtensors_finite, is_dtensor, refuse_flattened_shards
from .grouping import Routing

__all__ = [
    "ReferenceOptimizer",
    "NonFiniteGradientError",
    "NONFINITE_POLICIES",
    "DEFAULT_NONFINITE",
    "param_seed",
    "batch_shape",
    "FAST_MODES",
]

NONFINITE_POLICIES = ("raise", "skip", "ignore")
DEFAULT_NONFINITE = "raise"
#: the accepted values of ``fast=`` (module docstring)
FAST_MODES = (False, True, "auto", "compile")
#: torch's own warning, which :meth:`ReferenceOptimizer.add_param_group` turns into an error
_TORCH_DUPLICATE_WARNING = "optimizer contains a parameter group with duplicate parameters"


class NonFiniteGradientError(FloatingPointError):
    """Raised under ``nonfinite="raise"`` when a gradient holds NaN or Inf (no state was changed)."""


def param_seed(seed: int, index: int) -> int:
    """A 63-bit seed for parameter ``index`` derived from the optimizer's ``seed`` (stable across runs)."""
    digest = hashlib.blake2b(f"{seed}:{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


def all_finite(tensors: list[torch.Tensor]) -> list[bool]:
    """``[bool(isfinite(t).all()) for t in tensors]`` with one multi-tensor reduction per device and dtype and
    one host synchronisation per device (meta tensors hold no values and count as finite).

    The reduction is the L1 norm, which is NaN or Inf exactly when an entry is, or when the sum of finite
    entries overflows; a tensor it flags is checked entry by entry, so the answer is exact."""
    flags: list[bool] = [True] * len(tensors)
    sharded: list[int] = []
    by_device: dict[torch.device, dict[torch.dtype, list[int]]] = {}
    for i, t in enumerate(tensors):
        if is_dtensor(t):
            sharded.append(i)
        elif t.device.type != "meta" and t.numel():
            by_device.setdefault(t.device, {}).setdefault(t.dtype, []).append(i)
    for i, ok in zip(sharded, dtensors_finite([tensors[i] for i in sharded])):
        flags[i] = ok
    for by_dtype in by_device.values():
        order = [i for indices in by_dtype.values() for i in indices]
        sums = [torch.stack(torch._foreach_norm([tensors[i] for i in indices], 1)).isfinite()
                for indices in by_dtype.values()]
        for i, ok in zip(order, torch.cat(sums).tolist()):
            flags[i] = ok or bool(torch.isfinite(tensors[i]).all())
    return flags


def check_fast(value: Any, cls: type) -> bool | str:
    """Validate ``fast=`` (``False``, ``True``, ``"auto"`` or ``"compile"``) for the optimizer class ``cls``."""
    if not any(value is mode or (isinstance(mode, str) and value == mode) for mode in FAST_MODES):
        error = ValueError if isinstance(value, str) else TypeError  # a bad mode name vs. a value of the wrong type
        raise error(f"fast must be False, True, 'auto' or 'compile', got {value!r}")
    if (value is True or value == "compile") and not cls.has_fast_path:
        raise ValueError(f"fast={value!r}: {cls.__name__} has no fast path (only the reference path); "
                         "use fast=False, or 'auto' to take the fast path where one exists")
    return value


class ReferenceOptimizer(Optimizer):
    """Base class: subclasses implement :meth:`_init_state` and :meth:`_update_param`.

    Class attributes every subclass sets:

    ``registry_name``  name in :data:`algorithms.REGISTRY`
    ``paper``          citation, e.g. ``"arXiv 2411.07120"``
    ``variants``       the accepted ``variant=`` values (``"paper"`` first)
    ``paper_routing``  how the paper routed a model's parameters (:class:`algorithms.grouping.Routing`;
                       default: one group), read by :func:`algorithms.grouping.paper_param_groups`
    """

    registry_name: ClassVar[str] = ""
    paper: ClassVar[str] = ""
    variants: ClassVar[tuple[str, ...]] = ("paper",)
    paper_routing: ClassVar[Routing] = Routing()
    supports_complex: ClassVar[bool] = False
    supports_batch_dims: ClassVar[bool] = True
    #: each entry's update depends only on that entry's gradient and state (FSDP1's flattened shards are
    #: accepted only then; :mod:`algorithms.distributed`)
    elementwise: ClassVar[bool] = False
    #: state keys kept on the host (CPU) whatever the parameter's device
    host_state_keys: ClassVar[frozenset[str]] = frozenset({"step", "rng_state", "nonfinite_skips"})
    #: the class implements :meth:`_step_group_fast`, the multi-tensor path selected by ``fast=``
    has_fast_path: ClassVar[bool] = False
    #: per variant, the defaults of the arguments a caller leaves as ``None`` (``{variant: {key: value}}``).
    #: The one resolution rule: :meth:`resolve_variant` fills them at construction, :meth:`resolved` reads
    #: a group's value at step time (a group may set its own ``variant``)
    VARIANT_DEFAULTS: ClassVar[dict[str, dict[str, Any]]] = {}

    @classmethod
    def variant_default(cls, variant: str, key: str, value: Any = None) -> Any:
        """``value``, or the default of ``key`` under ``variant`` when ``value`` is ``None``."""
        if value is not None:
            return value
        return cls.VARIANT_DEFAULTS.get(variant, {}).get(key)

    @classmethod
    def resolve_variant(cls, variant: str, **given: Any) -> dict[str, Any]:
        """``given`` with every ``None`` filled from the variant's defaults (construction-time resolution)."""
        check_choice("variant", variant, cls.variants)
        return {key: cls.variant_default(variant, key, value) for key, value in given.items()}

    def resolved(self, group: dict[str, Any], key: str) -> Any:
        """The group's ``key``, or its variant's default when the group leaves it ``None`` (step-time resolution)."""
        return self.variant_default(group["variant"], key, group.get(key))

    def __init__(
        self,
        params: Iterable[Any],
        defaults: dict[str, Any],
        *,
        seed: int = 0,
        nonfinite: str = DEFAULT_NONFINITE,
        batch_dims: int = 0,
        fast: bool | str = False,
    ) -> None:
        self.fast = check_fast(fast, type(self))
        defaults = dict(defaults)
        defaults["seed"] = check_int("seed", seed, minimum=0)
        defaults["nonfinite"] = check_choice("nonfinite", nonfinite, NONFINITE_POLICIES)
        defaults["batch_dims"] = check_int("batch_dims", batch_dims, minimum=0)
        if defaults["batch_dims"] and not self.supports_batch_dims:
            raise ValueError(f"batch_dims: {type(self).__name__} does not support independent batch dimensions")
        if "variant" in defaults:
            check_choice("variant", defaults["variant"], self.variants)
        self._reset_runtime()
        self._groups_validated = False
        super().__init__(params, defaults)
        for group in self.param_groups:
            self._validate_group(group)
        self._groups_validated = True

    def _reset_runtime(self) -> None:
        """Attributes that are not part of the state (rebuilt after a copy, a pickle or a load)."""
        self._generators: dict[torch.Tensor, torch.Generator] = {}
        self._skipped: list[tuple[torch.Tensor, torch.Tensor]] = []
        self._warned_nonfinite = False

    # ------------------------------------------------------------------ subclass hooks
    def _validate_group(self, group: dict[str, Any]) -> None:
        """Re-validate per-group hyperparameters (groups may override defaults)."""

    def _init_state(self, p: torch.Tensor, group: dict[str, Any], state: dict[str, Any]) -> None:
        raise NotImplementedError

    def _update_param(self, p: torch.Tensor, grad: torch.Tensor, state: dict[str, Any], group: dict[str, Any]) -> None:
        raise NotImplementedError

    def _step_group_fast(self, group: dict[str, Any]) -> None:
        """The multi-tensor step of one group (classes with ``has_fast_path``); equal to :meth:`_step_group`."""
        raise NotImplementedError

    def _step_group(self, group: dict[str, Any]) -> None:
        """One step on one parameter group; override for group-level coupling (global norms)."""
        for p in group["params"]:
            if p.grad is None:
                continue
            state = self.state[p]
            if "step" not in state:  # (a skip counter may exist before the first step)
                state["step"] = torch.zeros((), dtype=torch.int64)
                self._init_state(p, group, state)
            self._update_param(p, p.grad, state, group)

    @classmethod
    def _import_foreign_state_dict(cls, state_dict: dict[str, Any], optimizer: "ReferenceOptimizer") -> dict[str, Any] | None:
        """Translate a state dict of another library's optimizer with the same maths (e.g.
        ``torch.optim.AdamW`` for ``adam``) into this class's layout, or ``None`` when not recognised."""
        return None

    # ------------------------------------------------------------------ parameter groups
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """torch's ``add_param_group``, plus: duplicates are an error (torch only warns), parameters
        must be floating point with at least ``batch_dims`` dimensions, and a group added after
        construction is validated; a rejected group is not added."""
        position = len(self.param_groups)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_TORCH_DUPLICATE_WARNING)
            super().add_param_group(param_group)
        try:
            self._check_group_params(position)
            if self._groups_validated:
                self._validate_group(self.param_groups[position])
        except BaseException:
            del self.param_groups[position:]
            raise

    def _check_group_params(self, gi: int) -> None:
        group = self.param_groups[gi]
        cls = type(self).__name__
        check_int("seed", group["seed"], minimum=0)
        check_choice("nonfinite", group["nonfinite"], NONFINITE_POLICIES)
        batch_dims = check_int("batch_dims", group["batch_dims"], minimum=0)
        if batch_dims and not self.supports_batch_dims:
            raise ValueError(f"batch_dims: {cls} does not support independent batch dimensions")
        seen: dict[int, int] = {}
        for pi, p in enumerate(group["params"]):
            if id(p) in seen:
                raise ValueError(
                    f"{cls}: duplicate parameter: {self._param_label(gi, pi)} is the same tensor as "
                    f"{self._param_label(gi, seen[id(p)])}; pass each parameter once"
                )
            seen[id(p)] = pi
            if not (p.is_floating_point() or p.is_complex()):
                raise TypeError(
                    f"{cls} optimizes floating-point tensors; {self._param_label(gi, pi)} has dtype {p.dtype}"
                )
            if p.dim() < batch_dims:
                raise ValueError(
                    f"batch_dims={batch_dims} but {self._param_label(gi, pi)} has only {p.dim()} dimension(s)"
                )
        refuse_flattened_shards(self, gi)

    # ------------------------------------------------------------------ the step
    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        try:
            self._screen_gradients()
            for group in self.param_groups:
                if self._uses_fast_path(group):
                    self._step_group_fast(group)
                else:
                    self._step_group(group)
        finally:
            self._restore_skipped()
        return loss

    def _kernel(self, fn: Callable) -> Callable:
        """A multi-tensor update function of the fast path, compiled under ``fast="compile"``
        (:mod:`algorithms._compiled`)."""
        if self.fast == "compile":
            from ._compiled import compiled

            return compiled(fn)
        return fn

    def _uses_fast_path(self, group: dict[str, Any]) -> bool:
        """Whether ``group`` steps on the fast path this step (module docstring, "Fast path")."""
        if not self.fast or not self.has_fast_path:
            return False
        params = [p for p in group["params"] if p.grad is not None]
        if any(is_dtensor(p) for p in params):
            return False
        if self.fast == "auto":
            return bool(params) and all(p.device.type == "cuda" for p in params)
        return True

    def _active_params(self, group: dict[str, Any]) -> tuple[list[torch.Tensor], list[torch.Tensor], list[dict[str, Any]]]:
        """``(params, grads, states)`` of the parameters of ``group`` that have a gradient, every state
        initialised as :meth:`_step_group` does it (the fast path's bookkeeping)."""
        params, grads, states = [], [], []
        for p in group["params"]:
            if p.grad is None:
                continue
            state = self.state[p]
            if "step" not in state:
                state["step"] = torch.zeros((), dtype=torch.int64)
                self._init_state(p, group, state)
            params.append(p)
            grads.append(p.grad)
            states.append(state)
        return params, grads, states

    def _param_label(self, group_index: int, param_index: int) -> str:
        group = self.param_groups[group_index]
        names = group.get("param_names")
        p = group["params"][param_index]
        if names is not None and param_index < len(names):
            return f"'{names[param_index]}' (shape {tuple(p.shape)})"
        return f"param_groups[{group_index}]['params'][{param_index}] (shape {tuple(p.shape)})"

    def _screen_gradients(self, *, can_skip: bool = True) -> None:
        """Reject sparse/complex gradients and apply the non-finite policy, before any state is touched.

        ``can_skip=False`` (gradients that are stored, not stepped with) treats ``"skip"`` as ``"raise"``.
        """
        cls = type(self).__name__
        checked: list[tuple[int, int, torch.Tensor]] = []
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
                if group["nonfinite"] != "ignore":
                    checked.append((gi, pi, p))
        if not checked:
            return
        finite = all_finite([p.grad for _, _, p in checked])
        bad = [(gi, pi, p) for (gi, pi, p), ok in zip(checked, finite) if not ok]
        for gi, pi, _ in bad:  # every "raise" first, so that nothing is skipped when the step raises
            if self.param_groups[gi]["nonfinite"] == "raise" or not can_skip:
                self._raise_nonfinite(gi, pi)
        for gi, pi, p in bad:
            self._skip_nonfinite(gi, pi, p)

    def _raise_nonfinite(self, gi: int, pi: int, where: str = "") -> None:
        raise NonFiniteGradientError(
            f"{type(self).__name__}: non-finite gradient (NaN or Inf){where} for {self._param_label(gi, pi)}; "
            "no optimizer state was changed (nonfinite='skip' skips such steps, 'ignore' lets NaN through)"
        )

    def _skip_nonfinite(self, gi: int, pi: int, p: torch.Tensor, where: str = "") -> None:
        """``nonfinite="skip"``: hide ``p.grad`` for this step (restored after it) and count the skip."""
        state = self.state[p]
        state["nonfinite_skips"] = state.get("nonfinite_skips", torch.zeros((), dtype=torch.int64)) + 1
        if not self._warned_nonfinite:
            self._warned_nonfinite = True
            warnings.warn(
                f"{type(self).__name__}: non-finite gradient (NaN or Inf){where} for {self._param_label(gi, pi)}; "
                "its step was skipped (nonfinite='skip'). Skips are counted in state[p]['nonfinite_skips']; "
                "this warning is shown once per optimizer.",
                RuntimeWarning,
                stacklevel=4,
            )
        self._skipped.append((p, p.grad))
        p.grad = None

    def _restore_skipped(self) -> None:
        for p, grad in self._skipped:
            p.grad = grad
        self._skipped = []

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

        It lives on the parameter's device, except on ``meta`` (no generator exists there; meta
        tensors draw nothing, so a CPU generator serves the shape-only step). Callers must call
        :meth:`save_generator` after drawing, so the state round-trips.
        """
        gen = self._generators.get(p)
        if gen is None:
            gen = torch.Generator(device="cpu" if p.device.type == "meta" else p.device)
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
    def state_dict(self) -> dict[str, Any]:
        """torch's state dict plus ``"optverify"``: the registry name and each parameter's shape and dtype."""
        out = super().state_dict()
        out[STATE_DICT_INFO_KEY] = state_dict_info(self)
        return out

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Validate ``state_dict`` against this optimizer (``ValueError`` saying what differs, nothing
        changed), then load it, keeping every state tensor's saved dtype (see module docstring)."""
        state_dict = check_state_dict(self, state_dict)
        groups = self.param_groups
        saved_groups = state_dict["param_groups"]
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
        for gi, (g, sg) in enumerate(zip(groups, saved_groups)):
            ng = {k: v for k, v in sg.items() if k != "params"}
            ng["params"] = g["params"]
            if "param_names" in g and "param_names" not in ng:
                ng["param_names"] = g["param_names"]
            validate_loaded_group(self, gi, ng)
            new_groups.append(ng)
        self.__setstate__({"state": state, "param_groups": new_groups})
        self._reset_runtime()

    def _restore_state_value(self, key: str, value: Any, p: torch.Tensor) -> Any:
        if isinstance(value, torch.Tensor):
            device = torch.device("cpu") if key in self.host_state_keys else p.device
            return value.detach().clone().to(device=device)
        if isinstance(value, dict):
            return {k: self._restore_state_value(k, v, p) for k, v in value.items()}
        return value

    def __getstate__(self) -> dict[str, Any]:  # keep the fast switch through copy.deepcopy / pickling
        state = super().__getstate__()
        state["fast"] = self.fast
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        if not hasattr(self, "fast"):
            self.fast = False
        if not hasattr(self, "_generators"):
            self._reset_runtime()
        self._groups_validated = True

    def __repr__(self) -> str:  # torch's repr lists every group; keep it but name the registry entry
        return super().__repr__().replace(type(self).__name__, f"{type(self).__name__}[{self.registry_name}]", 1)


def batch_shape(p: torch.Tensor, group: dict[str, Any]) -> tuple[torch.Size, torch.Size]:
    """Split ``p.shape`` into (independent batch dims, problem dims)."""
    b = group["batch_dims"]
    if p.dim() < b:
        raise ValueError(f"batch_dims={b} but a parameter has only {p.dim()} dimensions")
    return p.shape[:b], p.shape[b:]
