r"""Optimizer-state memory as sympy formulas, per algorithm and per parameter shape (memory.md §1).

Written from the specs (memory.md, galore.md §B3, sn-sm.md §3, fira.md §A3, ldadam.md §A3,
adarankgrad.md §B4, mars.md §3) and from the *documented* state layout of each reference optimizer
(the "State" paragraph of its docstring), **without calling the optimizer code**, so the exact
equality test (tests/verify/test_memory_formulas.py) compares two independent descriptions: this
module and the tensors the optimizer really keeps (:mod:`verify.memory.walker`).

Symbols
-------
==========  ========================================================================================
``m, n``    the problem matrix (the shape after ``batch_dims``); an N-D tensor is ``p`` elements
``p``       numel of the problem shape
``B``       number of independent problems (product of the ``batch_dims`` leading sizes; 1 normally)
``r``       the rank actually used (after the method's overflow rule); ``r_t`` for AdaRankGrad
``k``       Subset-Norm subset size (coordinates per accumulator); ``c = p/k`` accumulators
``ell``     AdaRankGrad: number of refreshes so far (rows of ``refresh_log``)
``b``       bytes per element of the parameter dtype (2 bf16, 4 fp32, 8 fp64)
``s``       bytes of a ``torch.Generator`` state: 5056 on CPU (mt19937), 16 on CUDA (Philox seed+offset)
==========  ========================================================================================

What is counted (one :class:`Term` per state tensor, keyed by its state key)
---------------------------------------------------------------------------
``moment``               Adam/EMA moments (full or in the subspace), momentum buffers
``subset_accumulator``   Subset-Norm / AdaGrad accumulators
``projector``            dense subspace bases (P, Q, U, B) — the papers often leave these out
``indices``              int64 row/column selections of index projectors (uniform/topk SM)
``error_feedback``       LDAdam's EF buffer (the toolkit keeps it in the state, the code in ``p.grad``)
``scalar``               per-matrix scalars that are algorithm state (Fira's ‖S_{t−1}‖)
``counter``              step counters (CPU int64 0-D)
``rng``                  generator states of optimizers that draw random numbers (CPU uint8)
``bookkeeping``          logs kept for reporting (AdaRankGrad's ``refresh_log``)

:data:`PAPER_KINDS` are what the papers' "optimizer states" mean; :data:`PROJECTOR_KINDS` are counted
separately ("with/without projectors"); counters, generator states and logs are bookkeeping and
never in the papers' numbers.

Transient buffers (in :attr:`ParamMemory.transients`) are the temporaries alive at the peak of one
parameter's update, read off the update math; the walker cannot see them. Kind ``"transient"`` is the
peak of an ordinary step, kind ``"refresh_transient"`` the peak of a subspace refresh (an SVD: its
outputs ``mμ + μ + μn`` plus the ``2mn`` input copies LAPACK's driver makes through ATen, and the new
basis next to the old one); :meth:`ParamMemory.transient_elements` is the larger of the two phases.
Kind ``"held_transient"`` is alive through the whole group's step for every parameter at once (MARS's
:math:`c_t` under the global-norm clip); :func:`group_transient` adds those up for a group.
Replacing a state tensor by a new one (LDAdam every step) counts the new tensor as transient until the
old one is freed. They are predictions for verify/memory/gpu.py, checked on CPU against
:mod:`verify.memory.transient` (results/memory/cpu_transients.json), not asserted exactly: decomposition
workspaces allocated inside LAPACK/cuSOLVER kernels are not modelled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import sympy

__all__ = [
    "m", "n", "p", "B", "r", "k", "ell", "b", "s",
    "KINDS", "PAPER_KINDS", "PROJECTOR_KINDS", "BOOKKEEPING_KINDS",
    "RNG_STATE_BYTES", "DTYPE_BYTES",
    "HELD", "Term", "ParamMemory", "FORMULAS", "formula", "param_memory", "has_formula", "group_transient",
    "side_rule", "subset_count", "largest_divisor_at_most",
    "ALGORITHM_DEFAULTS",
]

m, n, p, B, r, k, ell, b, s = sympy.symbols("m n p B r k ell b s", integer=True, nonnegative=True)
MU = sympy.Min(m, n)
MX = sympy.Max(m, n)

#: a temporary alive through the whole group's step, for every parameter at once (:func:`group_transient`)
HELD = "held_transient"
KINDS = ("moment", "subset_accumulator", "projector", "indices", "error_feedback", "scalar", "counter", "rng",
         "bookkeeping", "transient", "refresh_transient", HELD)
PAPER_KINDS = frozenset({"moment", "subset_accumulator", "scalar"})
PROJECTOR_KINDS = frozenset({"projector", "indices"})
BOOKKEEPING_KINDS = frozenset({"counter", "rng", "bookkeeping"})

#: bytes of ``torch.Generator.get_state()``: CPU mt19937 (624 words + bookkeeping) and CUDA Philox
RNG_STATE_BYTES = {"cpu": 5056, "cuda": 16}
DTYPE_BYTES = {"int64": 8, "uint8": 1, "bfloat16": 2, "float16": 2, "float32": 4, "float64": 8}


@dataclass(frozen=True)
class Term:
    """One state tensor (or one transient buffer): its key, element count as a sympy expression, dtype
    (``"param"`` = the parameter's dtype, ``"int64"``, ``"uint8"``), kind and a source note."""

    key: str
    elements: sympy.Expr
    dtype: str
    kind: str
    note: str = ""
    host: bool = False  # kept on the CPU whatever the parameter's device

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if self.dtype != "param" and self.dtype not in DTYPE_BYTES:
            raise ValueError(f"dtype must be 'param' or one of {tuple(DTYPE_BYTES)}, got {self.dtype!r}")

    def element_size(self, param_bytes: int) -> int:
        return param_bytes if self.dtype == "param" else DTYPE_BYTES[self.dtype]


@dataclass
class ParamMemory:
    """The formula for one parameter: its route, the symbol values, the state terms and the transients."""

    algorithm: str
    shape: tuple[int, ...]
    route: str  # "projected", "dense", "no_state" ...
    values: dict[sympy.Symbol, int]
    terms: list[Term]
    transients: list[Term] = field(default_factory=list)

    def count(self, term: Term) -> int:
        value = sympy.sympify(term.elements).subs(self.values)
        if not value.is_number:
            raise ValueError(f"{self.algorithm}: term {term.key} = {term.elements} has unbound symbols {value.free_symbols}")
        return int(value)

    def elements(self, kinds: frozenset[str] | None = None) -> int:
        return sum(self.count(t) for t in self.terms if kinds is None or t.kind in kinds)

    def nbytes(self, param_bytes: int, kinds: frozenset[str] | None = None) -> int:
        return sum(self.count(t) * t.element_size(param_bytes) for t in self.terms if kinds is None or t.kind in kinds)

    def by_key(self) -> dict[str, Term]:
        return {t.key: t for t in self.terms}

    def _phase(self, kind: str, param_bytes: int | None) -> int:
        return sum(self.count(t) * (1 if param_bytes is None else t.element_size(param_bytes))
                   for t in self.transients if t.kind == kind)

    def transient_elements(self) -> int:
        """Peak temporaries of one update (this parameter alone): the larger of an ordinary step and a refresh."""
        return max(self._phase("transient", None) + self._phase(HELD, None), self._phase("refresh_transient", None))

    def transient_bytes(self, param_bytes: int | None) -> int:
        """:meth:`transient_elements` in bytes (``param_bytes=None``: in elements)."""
        return max(self._phase("transient", param_bytes) + self._phase(HELD, param_bytes),
                   self._phase("refresh_transient", param_bytes))

    def held_bytes(self, param_bytes: int | None) -> int:
        """Temporaries this parameter keeps alive through the whole group's step (kind ``held_transient``),
        in bytes (``param_bytes=None``: in elements)."""
        return self._phase(HELD, param_bytes)

    def describe(self) -> list[dict[str, Any]]:
        return [{"key": t.key, "formula": str(t.elements), "elements": self.count(t), "dtype": t.dtype, "kind": t.kind,
                 "note": t.note} for t in self.terms]


def group_transient(memories: Sequence[tuple[ParamMemory, int | None]]) -> int:
    """Peak temporaries of one parameter group's step, from ``(formula, element bytes)`` per parameter
    (element bytes ``None``: the peak in elements).

    Without ``held_transient`` terms this is the largest per-parameter peak (parameters update one after
    another). A held term (MARS's :math:`c_t` under the global-norm clip, which needs every :math:`c_t`
    before any update) is alive for every parameter at once: the peak is the sum of the held terms plus
    the largest per-parameter peak over and above its own held part.
    """
    held = sum(fm.held_bytes(eb) for fm, eb in memories)
    extra = max((fm.transient_bytes(eb) - fm.held_bytes(eb) for fm, eb in memories), default=0)
    return held + extra


# ----------------------------------------------------------------------------- shared rules (from the specs)
def side_rule(mm: int, nn: int, rule: str, square: str) -> str:
    """Projected side (``"left"``: basis over the m rows, state ``r × n``; ``"right"``: over the n columns,
    state ``m × r``). ``std`` projects the smaller dimension (square: ``square``); ``reverse_std`` the
    larger; ``left``/``right`` are fixed (galore.md §B1, ldadam.md §A1, the toolkit's side table)."""
    if rule in ("left", "right"):
        return rule
    if rule not in ("std", "reverse_std"):
        raise ValueError(f"unknown side rule {rule!r}")
    std = square if mm == nn else ("left" if mm < nn else "right")
    if rule == "std":
        return std
    return "right" if std == "left" else "left"


def largest_divisor_at_most(num: int, cap: int) -> int:
    """The largest divisor of ``num`` not above ``cap`` (sn-sm.md §1.3: the code's subset size)."""
    if cap >= num:
        return num
    return max(d for d in range(1, cap + 1) if num % d == 0)


def subset_count(problem_shape: Sequence[int], subset_size: int | str) -> tuple[int, int]:
    """``(k, c)``: coordinates per subset and number of accumulators (sn-sm.md §1.3, memory.md §1).

    ``"heuristics"``: a matrix keeps one accumulator per index of its larger dimension (``c = max(m, n)``);
    0-D/1-D are coordinate-wise; N-D is the matrix ``shape[0] × prod(rest)``. Positive ``s``: ``k`` = the
    largest divisor of ``p`` that is ``<= s``; negative ``-s``: the same with target ``⌊√p / s⌋``
    (at least 1). ``"coordinate"``: ``k = 1``; ``"norm"``: one subset. A zero-size tensor has no
    accumulator (``c = 0``).
    """
    shape = tuple(int(x) for x in problem_shape)
    numel = math.prod(shape)
    if numel == 0 or subset_size == "coordinate":
        return 1, numel
    if subset_size == "norm":
        return numel, 1
    if subset_size == "heuristics":
        if len(shape) <= 1:
            return 1, numel
        rows, cols = shape[0], numel // shape[0]
        return (cols, rows) if rows >= cols else (rows, cols)
    target = subset_size if subset_size > 0 else math.floor(math.sqrt(numel) / (-subset_size))
    kk = largest_divisor_at_most(numel, max(target, 1))
    return kk, numel // kk


# ----------------------------------------------------------------------------- hyperparameter defaults
#: the memory-relevant defaults of each algorithm's constructor / variant (from the specs and the
#: documented defaults tables); ``resolve`` reads the group first and falls back to these.
ALGORITHM_DEFAULTS: dict[str, dict[str, Any]] = {
    "sgd": {"momentum": 0.0},
    "adam": {},
    "adagrad_norm": {"scope": "group"},
    "adagrad_coordinate": {},
    "adagrad_subset_norm": {"subset_size": -2},
    "adam_sn": {"betas": (0.9, 0.999), "subset_size": -2},
    "rmsprop_sn": {"subset_size": -2},
    "subspace_momentum": {"momentum": 0.9, "rank": 128, "proj_type": "svd", "proj_side": None, "variant": "paper"},
    "adam_sn_sm": {"betas": (0.9, 0.999), "subset_size": "heuristics", "rank": 128, "proj_type": "svd",
                   "proj_side": None, "variant": "paper"},
    "galore_adamw": {"rank": 128, "proj_side": "std", "variant": "paper"},
    "fira_adamw": {"rank": 128, "proj_side": "std", "variant": "paper"},
    "ldadam": {"rank": 16, "proj_side": "std", "square_side": "left", "proj_method": "power_iteration",
               "error_feedback": True, "variant": "paper"},
    "adarankgrad": {"min_rank": 1, "max_rank": 128, "svd": "randomized", "proj_side": "std", "square_side": "left"},
    "lion": {},
    "mars_adamw": {"variant": "paper", "estimator": "approx", "routing": "official", "preconditioner": "adam"},
    "mars_lion": {"variant": "paper", "estimator": "approx", "routing": "official"},
    "mars_shampoo": {"variant": "paper", "estimator": "approx", "routing": "official"},
}

#: variant-dependent choices (galore.md §B1 table; sn-sm.md §1.5 variants)
_GALORE_VARIANT = {"paper": {"square_side": "left", "rank_overflow": "raise"},
                   "official": {"square_side": "right", "rank_overflow": "truncate"}}
_SM_VARIANT = {"paper": {"rank_overflow": "raise"}, "official": {"rank_overflow": "truncate"}}
#: Subspace-Momentum's side rule per projection type in the authors' code (sn-sm.md §1.5): svd projects
#: the smaller dimension, uniform/topk select rows (m ≥ n) or columns of the larger one; square → "right"
_SM_SIDE_RULES = {"svd": "std", "uniform": "reverse_std", "topk": "reverse_std"}


class _Context:
    """What a formula needs about one parameter: problem shape, batch count, group settings."""

    def __init__(self, algorithm: str, shape: Sequence[int], group: Mapping[str, Any], runtime: Mapping[str, Any]):
        self.algorithm = algorithm
        self.shape = tuple(int(x) for x in shape)
        self.group = group
        self.runtime = runtime
        bd = int(group.get("batch_dims", 0) or 0)
        self.batch = math.prod(self.shape[:bd]) if bd else 1
        self.problem = self.shape[bd:]
        self.numel = math.prod(self.problem)
        self.values: dict[sympy.Symbol, int] = {p: self.numel, B: self.batch}
        self.is_matrix = len(self.problem) == 2 and self.problem[0] > 0 and self.problem[1] > 0
        if self.is_matrix:
            self.values[m], self.values[n] = self.problem

    def get(self, key: str) -> Any:
        value = self.group.get(key)
        if value is None:
            value = ALGORITHM_DEFAULTS.get(self.algorithm, {}).get(key)
        return value

    def lowrank(self) -> bool:
        return bool(self.group.get("lowrank", True)) and self.is_matrix


_STEP = Term("step", sympy.Integer(1), "int64", "counter", "per-parameter step counter (CPU int64 0-D)", host=True)
_RNG = Term("rng_state", s, "uint8", "rng", "the parameter's own torch.Generator state (_base.py)", host=True)


def _dense_adam_terms(note: str) -> list[Term]:
    return [Term("exp_avg", B * p, "param", "moment", note), Term("exp_avg_sq", B * p, "param", "moment", note)]


def _adam_transients() -> list[Term]:
    # adam_direction: denominator, m/denominator and the bias-corrected result are alive together
    return [Term("adam_direction_temporaries", 3 * B * p, "param", "transient", "denominator, quotient, scaled quotient")]


FORMULAS: dict[str, Callable[[_Context], tuple[str, list[Term], list[Term]]]] = {}


def formula(*names: str):
    def decorate(fn):
        for name in names:
            FORMULAS[name] = fn
        return fn

    return decorate


def has_formula(algorithm: str) -> bool:
    return algorithm in FORMULAS


def param_memory(
    algorithm: str,
    shape: Sequence[int],
    group: Mapping[str, Any] | None = None,
    *,
    runtime: Mapping[str, Any] | None = None,
    device: str = "cpu",
) -> ParamMemory:
    """The memory formula of ``algorithm`` for one parameter of ``shape`` under the group settings ``group``.

    ``runtime`` carries trajectory-dependent quantities that no static formula can know
    (AdaRankGrad: ``rank`` = the current r_t, ``refreshes`` = ℓ). ``device`` picks the generator-state
    size :data:`RNG_STATE_BYTES`.
    """
    if algorithm not in FORMULAS:
        raise KeyError(f"no memory formula for {algorithm!r}; add one to verify/memory/formulas.py")
    if device not in RNG_STATE_BYTES:
        raise ValueError(f"device must be one of {tuple(RNG_STATE_BYTES)}, got {device!r}")
    ctx = _Context(algorithm, shape, group or {}, runtime or {})
    ctx.values[s] = RNG_STATE_BYTES[device]
    route, terms, transients = FORMULAS[algorithm](ctx)
    return ParamMemory(algorithm, ctx.shape, route, dict(ctx.values), terms, transients)


# ----------------------------------------------------------------------------- baselines
@formula("sgd")
def _sgd(ctx: _Context):
    terms = [_STEP]
    if ctx.get("momentum") != 0:
        terms.append(Term("momentum_buffer", B * p, "param", "moment", "heavy-ball / EMA buffer"))
    transients = []
    if ctx.get("weight_decay"):
        transients.append(Term("weight_decay_gradient", B * p, "param", "transient", "g + λx"))
    if ctx.get("momentum") and ctx.get("momentum_type") == "ema" and ctx.get("bias_correction"):
        transients.append(Term("bias_corrected_momentum", B * p, "param", "transient", "b / (1 − μ^t)"))
    return "dense", terms, transients  # heavy ball and plain SGD update in place


@formula("adam")
def _adam(ctx: _Context):
    return "dense", [_STEP, *_dense_adam_terms("memory.md §1: 2p")], _adam_transients()


# ----------------------------------------------------------------------------- AdaGrad / Subset-Norm family
@formula("adagrad_coordinate")
def _adagrad_coordinate(ctx: _Context):
    return "dense", [_STEP, Term("sum_sq", B * p, "param", "subset_accumulator", "memory.md §1: AdaGrad-Coordinate mn")], \
        [Term("denominator_and_step", 2 * B * p, "param", "transient", "sqrt(v) + eps and g / it")]


@formula("adagrad_norm")
def _adagrad_norm(ctx: _Context):
    transients = [Term("gradient_squares", B * p, "param", "transient", "g² before the sum")]
    if ctx.get("scope") == "tensor":  # Subset-Norm with one subset per tensor (none for a zero-size tensor)
        return "dense", [_STEP, *_subset_terms(ctx, "norm", "sum_sq", "memory.md §1: 1 scalar per tensor")], transients
    note = "the group's single scalar (memory.md §1: O(1)); the toolkit keeps one copy in every parameter's state"
    return "dense", [_STEP, Term("sum_sq", B * sympy.Integer(1), "param", "subset_accumulator", note)], transients


def _subset_terms(ctx: _Context, rule: Any, key: str, note: str) -> list[Term]:
    """One accumulator per subset: ``B · p/k`` (``k`` from :func:`subset_count`)."""
    kk, _ = subset_count(ctx.problem, rule)
    ctx.values[k] = kk
    count = B * p / k if ctx.numel else sympy.Integer(0)
    return [Term(key, count, "param", "subset_accumulator", note)]


def _subset_sums(ctx: _Context) -> Term:
    """The per-subset sums of squares (and their square roots) of one step: ``B · p/k`` (set by _subset_terms)."""
    count = B * p / k if ctx.numel else sympy.Integer(0)
    return Term("subset_sums", count, "param", "transient", "‖g_Ψ‖² per subset")


@formula("adagrad_subset_norm")
def _adagrad_subset_norm(ctx: _Context):
    terms = [_STEP, *_subset_terms(ctx, ctx.get("subset_size"), "sum_sq", "sn-sm.md §3: c = p/k accumulators")]
    return "dense", terms, [Term("squares_then_quotient", B * p, "param", "transient", "g² (then g / denominator)"),
                            _subset_sums(ctx)]


@formula("adam_sn")
def _adam_sn(ctx: _Context):
    beta1 = ctx.get("betas")[0]
    terms = [_STEP]
    if beta1 != 0:
        terms.append(Term("exp_avg", B * p, "param", "moment", "sn-sm.md §3: full first moment mn"))
    terms += _subset_terms(ctx, ctx.get("subset_size"), "exp_avg_sq", "sn-sm.md §3: AdamSN mn + M (heuristics) or mn + mn/k")
    return "dense", terms, [Term("quotient_and_scaled", 2 * B * p, "param", "transient", "m / denominator, scaled"),
                            _subset_sums(ctx)]


@formula("rmsprop_sn")
def _rmsprop_sn(ctx: _Context):
    terms = [_STEP, *_subset_terms(ctx, ctx.get("subset_size"), "exp_avg_sq", "sn-sm.md §3: RMSPropSN M (heuristics)")]
    return "dense", terms, [Term("quotient_and_scaled", 2 * B * p, "param", "transient", "g / denominator, scaled"),
                            _subset_sums(ctx)]


# ----------------------------------------------------------------------------- Subspace-Momentum
def _sm_layout(ctx: _Context) -> tuple[str, int]:
    mm, nn = ctx.problem
    proj_type = ctx.get("proj_type")
    side = side_rule(mm, nn, ctx.get("proj_side") or _SM_SIDE_RULES[proj_type], "right")
    d = mm if side == "left" else nn
    rank = int(ctx.get("rank"))
    overflow = ctx.group.get("rank_overflow") or _SM_VARIANT[ctx.get("variant")]["rank_overflow"]
    if rank > d and overflow == "raise":
        raise ValueError(f"rank {rank} > projected dimension {d} (the optimizer raises for this shape)")
    return side, min(rank, d)


def _sm_terms(ctx: _Context, beta1: float) -> list[Term]:
    """Subspace-Momentum's projected state (sn-sm.md §1.5, §3): momentum ``r × (other dim)``, and a dense
    basis ``d × r`` (svd) or ``r`` int64 indices (uniform/topk; plus the generator for uniform)."""
    side, rank = _sm_layout(ctx)
    if beta1 == 0 or rank == 0:
        return []  # no momentum: no basis is built (the code's rule)
    ctx.values[r] = rank
    proj_dim, other = (m, n) if side == "left" else (n, m)
    terms = [Term("exp_avg", B * r * other, "param", "moment", "sn-sm.md §3: momentum r·M (svd) / r·μ (index)")]
    if ctx.get("proj_type") == "svd":
        terms.append(Term("basis", B * proj_dim * r, "param", "projector", "sn-sm.md §3: projector r·μ"))
    else:
        terms.append(Term("indices", B * r, "int64", "indices", "sn-sm.md §1.6: index vector (r) int64"))
        if ctx.get("proj_type") == "uniform":
            terms.append(_RNG)
    return terms


def _svd_refresh(ctx: _Context, proj_dim: sympy.Expr) -> list[Term]:
    """The peak of an SVD refresh (module docstring): outputs, LAPACK's input copies, the new basis."""
    return [Term("svd_outputs", B * (m * MU + MU + MU * n), "param", "refresh_transient", "U, S, Vh (thin)"),
            Term("svd_input_copies", 2 * B * m * n, "param", "refresh_transient", "LAPACK driver copies of G"),
            Term("new_basis", B * proj_dim * r, "param", "refresh_transient", "the new basis beside the old one")]


def _sm_transients(ctx: _Context, beta1: float) -> list[Term]:
    side, rank = _sm_layout(ctx)
    if beta1 == 0 or rank == 0:
        return [Term("orthogonal_is_gradient", sympy.Integer(0), "param", "transient", "no subspace: g itself")]
    ctx.values[r] = rank
    steady = [Term("lifted_orthogonal_numerator", 4 * B * m * n, "param", "transient",
                   "Pᵀm, P Pᵀ g, g − P Pᵀ g, their sum")]
    if ctx.get("proj_type") != "svd":
        return steady
    return steady + _svd_refresh(ctx, m if side == "left" else n)


@formula("subspace_momentum")
def _subspace_momentum(ctx: _Context):
    beta1 = ctx.get("momentum")
    if ctx.lowrank():
        return "projected", [_STEP, *_sm_terms(ctx, beta1)], _sm_transients(ctx, beta1)
    terms = [_STEP]
    if beta1 != 0:
        terms.append(Term("momentum_buffer", B * p, "param", "moment", "dense EMA momentum (SGD outside the SM group)"))
    transients = [Term("bias_corrected_momentum", B * p, "param", "transient", "b / (1 − β^t)")] \
        if beta1 != 0 and ctx.get("bias_correction") else []
    return "dense", terms, transients


@formula("adam_sn_sm")
def _adam_sn_sm(ctx: _Context):
    beta1 = ctx.get("betas")[0]
    if ctx.lowrank():
        terms = [_STEP, *_subset_terms(ctx, ctx.get("subset_size"), "exp_avg_sq", "memory.md §1: AdamSNSM ... + M (SN accumulators)")]
        terms += _sm_terms(ctx, beta1)
        transients = [t for t in _sm_transients(ctx, beta1)]
        transients += [Term("sn_quotient", B * m * n, "param", "transient", "numerator / denominator"), _subset_sums(ctx)]
        return "projected", terms, transients
    terms = [_STEP]
    if beta1 != 0:
        terms.append(Term("exp_avg", B * p, "param", "moment", "dense Adam outside the SN+SM group (memory.md: 2p)"))
    terms += _subset_terms(ctx, "coordinate", "exp_avg_sq", "dense Adam: coordinate-wise v")
    return "dense", terms, _adam_transients()


# ----------------------------------------------------------------------------- GaLore family
def _galore_layout(ctx: _Context) -> tuple[str, int]:
    mm, nn = ctx.problem
    variant = ctx.get("variant")
    square = ctx.group.get("square_side") or _GALORE_VARIANT[variant]["square_side"]
    side = side_rule(mm, nn, ctx.get("proj_side"), square)
    rank = int(ctx.get("rank"))
    if rank > min(mm, nn) and _GALORE_VARIANT[variant]["rank_overflow"] == "raise":
        raise ValueError(f"rank {rank} > min(m, n) = {min(mm, nn)} (variant 'paper' raises)")
    return side, min(rank, mm, nn)


def _subspace_adam_terms(ctx: _Context, side: str, rank: int, note: str) -> list[Term]:
    ctx.values[r] = rank
    proj_dim, other = (m, n) if side == "left" else (n, m)
    return [
        Term("basis", B * proj_dim * r, "param", "projector", f"{note}: projector r·μ (std rule)"),
        Term("exp_avg", B * r * other, "param", "moment", f"{note}: M, r·M (std rule)"),
        Term("exp_avg_sq", B * r * other, "param", "moment", f"{note}: V, r·M (std rule)"),
    ]


def _galore_transients(ctx: _Context, fira: bool) -> list[Term]:
    """Ordinary step: R and N (subspace size) and the lifted update P N (full size); Fira adds the residual
    S (full size) and its per-column factors. Refresh: the SVD (:func:`_svd_refresh`)."""
    side = _galore_layout(ctx)[0]
    other, proj_dim = (n, m) if side == "left" else (m, n)
    steady = [Term("subspace_temporaries", 2 * B * r * other, "param", "transient", "R = PᵀG, N"),
              Term("lifted_update", B * m * n, "param", "transient", "P N")]
    if fira:
        steady += [Term("residual", B * m * n, "param", "transient", "S = G − P R, scaled, limited"),
                   Term("scaling_factors", B * other, "param", "transient", "one factor per column of the subspace step")]
    return steady + _svd_refresh(ctx, proj_dim)


@formula("galore_adamw")
def _galore(ctx: _Context):
    if not ctx.lowrank():
        return "dense", [_STEP, *_dense_adam_terms("galore.md §B3: dense 2p")], _adam_transients()
    side, rank = _galore_layout(ctx)
    terms = [_STEP, *_subspace_adam_terms(ctx, side, rank, "galore.md §B3 / memory.md §1: rμ + 2rM")]
    return "projected", terms, _galore_transients(ctx, fira=False)


@formula("fira_adamw")
def _fira(ctx: _Context):
    if not ctx.lowrank():
        return "dense", [_STEP, *_dense_adam_terms("fira.md §A3: dense 2p (HF-AdamW)")], _adam_transients()
    side, rank = _galore_layout(ctx)
    terms = [_STEP, *_subspace_adam_terms(ctx, side, rank, "fira.md §A3: rμ + 2rM + 1"),
             Term("residual_norm", B * sympy.Integer(1), "param", "scalar", "fira.md §A3: the scalar ‖S_{t−1}‖")]
    return "projected", terms, _galore_transients(ctx, fira=True)


@formula("ldadam")
def _ldadam(ctx: _Context):
    if not ctx.lowrank():
        return "dense", [_STEP, *_dense_adam_terms("ldadam.md §A3: dense 2p")], _adam_transients()
    mm, nn = ctx.problem
    variant = ctx.get("variant")
    rule = ctx.get("proj_side")
    if variant == "official" and mm == nn and rule in ("std", "reverse_std"):
        side = "left"  # the code's side test sends square matrices left under both rules (ldadam.md §A1)
    else:
        side = side_rule(mm, nn, rule, ctx.get("square_side"))
    rank = int(ctx.get("rank"))
    if rank > min(mm, nn):
        raise ValueError(f"rank {rank} > min(m, n) = {min(mm, nn)} (LDAdam raises)")
    terms = [_STEP, *_subspace_adam_terms(ctx, side, rank, "ldadam.md §A3: r(μ + 2M)")]
    if ctx.get("error_feedback"):
        terms.append(Term("error_buffer", B * m * n, "param", "error_feedback",
                          "ldadam.md §A3: EF buffer mn (the code borrows p.grad; the toolkit keeps it in the state)"))
    if ctx.get("proj_method") == "svd_lowrank":
        terms.append(_RNG)
    other = n if side == "left" else m
    proj_dim = m if side == "left" else n
    ef = 1 if ctx.get("error_feedback") else 0
    transients = [Term("new_state", B * (proj_dim * r + 2 * r * other + ef * m * n), "param", "transient",
                       "ldadam.md §A3: P_t, M, V (and e_{t+1}) are new tensors, the old ones freed after the step"),
                  Term("Q", B * r * r, "param", "transient", "ldadam.md §A3: Q_t = P_tᵀP_{t−1}"),
                  Term("full_size_temporaries", 5 * B * m * n, "param", "transient",
                       "a_t, P_{t−1}M_{t−1}, b_t, P_t ĝ, P_t M̃ (ldadam.md §A1 steps 0–4)"),
                  Term("subspace_temporaries", 4 * B * r * other, "param", "transient", "ĝ, M̃, Ṽ, D")]
    return "projected", terms, transients


@formula("adarankgrad")
def _adarankgrad(ctx: _Context):
    if not ctx.lowrank():
        return "dense", [_STEP, *_dense_adam_terms("adarankgrad.md §B4: dense 2p (assumed, U)")], _adam_transients()
    mm, nn = ctx.problem
    side = side_rule(mm, nn, ctx.get("proj_side"), ctx.get("square_side"))
    rank_now = int(ctx.runtime.get("rank", ctx.get("max_rank")))
    ctx.values[ell] = int(ctx.runtime.get("refreshes", 1))
    terms = [_STEP, *_subspace_adam_terms(ctx, side, rank_now, "adarankgrad.md §B4: r_t(μ + 2M)"),
             Term("subspace_step", sympy.Integer(1), "int64", "counter", "steps in the current subspace", host=True),
             Term("refresh_log", 2 * ell, "int64", "bookkeeping", "(step, rank) per refresh, for the r_t trace", host=True)]
    if ctx.get("svd") == "randomized":
        terms.append(_RNG)
    width = min(int(ctx.get("max_rank")) + int(ctx.group.get("oversampling", 10) or 0), mm, nn)
    other = n if side == "left" else m
    proj_dim = m if side == "left" else n
    transients = [Term("subspace_temporaries", 2 * B * r * other, "param", "transient", "Ĝ, N"),
                  Term("lifted_update", B * m * n, "param", "transient", "Q N")]
    if ctx.get("svd") == "randomized":
        transients += [Term("new_basis", B * proj_dim * r, "param", "refresh_transient", "adarankgrad.md §B4: old and new Q"),
                       Term("sketch", B * width * (mm + nn), "param", "refresh_transient",
                            "adarankgrad.md §B4: Y m·(r_max+p), B (r_max+p)·n"),
                       Term("sketch_factors", 4 * B * width * (mm + nn), "param", "refresh_transient",
                            "Ω, the power-iteration products and their QR factors, B = QᵀG and its SVD, U = Q U_B "
                            "(an estimate: about four more sketch-sized buffers at the peak)")]
    else:
        transients += _svd_refresh(ctx, proj_dim)
    return "projected", terms, transients


# ----------------------------------------------------------------------------- Lion and MARS
@formula("lion")
def _lion(ctx: _Context):
    """Lion (Chen et al. 2023, Algorithm 2): one EMA buffer (mars.md §6: the bitsandbytes reference)."""
    return "dense", [_STEP, Term("exp_avg", B * p, "param", "moment", "Lion: m (1 per element)")], \
        [Term("interpolation_and_sign", 2 * B * p, "param", "transient", "β1 m + (1 − β1) g, its sign")]


#: mars.md §1.7 / the toolkit's variant table: ``optimize_1d`` per variant
_MARS_VARIANT = {"paper": {"optimize_1d": True}, "official": {"optimize_1d": False}}
#: the clip mode per variant (mars.md §1: Algorithms 1–2 clip the global norm, Algorithm 4 not at all; the code per tensor)
_MARS_CLIP = {"mars_adamw": {"paper": "global", "official": "tensor"},
              "mars_lion": {"paper": "global", "official": "tensor"},
              "mars_shampoo": {"paper": "none", "official": "tensor"}}


def _mars_rule(ctx: _Context) -> tuple[bool, bool]:
    """``(uses the MARS rule, is a matrix)`` under the group's ``routing`` / ``optimize_1d`` (mars.md §1.7):
    ``routing="official"`` counts exactly-2-D tensors as matrices (the code's ``grad.ndim == 2``), ``"ours"``
    every tensor with two or more dimensions."""
    ndim = len(ctx.problem)
    matrix = ndim == 2 if (ctx.group.get("routing") or "official") == "official" else ndim >= 2
    optimize_1d = ctx.group.get("optimize_1d")
    if optimize_1d is None:
        optimize_1d = _MARS_VARIANT[ctx.get("variant") or "paper"]["optimize_1d"]
    return bool(optimize_1d) or matrix, matrix


def _mars_estimator_terms(ctx: _Context) -> list[Term]:
    """The variance-reduction memory (mars.md §3, "minimal faithful implementation"): the previous
    gradient (approx: a copy, never an alias of ``p.grad``; exact_lookahead: the stored look-ahead
    gradient), and the per-tensor clip counter kept for diagnostics."""
    estimator = ctx.group.get("estimator") or "approx"
    terms = [Term("clip_count", B * sympy.Integer(1), "int64", "bookkeeping", "steps at which clipping fired")]
    if estimator in ("approx", "exact_lookahead"):
        terms.append(Term("prev_grad", B * p, "param", "moment",
                          "mars.md §3: g_{t−1} (approx) / ∇f(x_t, ξ_{t+1}) (look-ahead), +1 per element"))
    return terms


def _mars_exact_point(ctx: _Context) -> list[Term]:
    """MARS-exact keeps x_{t−1} for *every* parameter that moves, the AdamW fallback included (mars.md §1.6)."""
    if (ctx.group.get("estimator") or "approx") != "exact":
        return []
    return [Term("x_prev", B * p, "param", "moment", "mars.md §3: exact keeps x_{t−1} (+1 per element)")]


def _mars_common_transients(ctx: _Context) -> list[Term]:
    """:math:`c_t`: with the global-norm clip every parameter's :math:`c_t` exists before the first update
    (held through the group's step); per-tensor or no clipping streams them, one parameter at a time."""
    clip = ctx.group.get("clip") or _MARS_CLIP[ctx.algorithm][ctx.get("variant") or "paper"]
    if clip == "global":
        return [Term("correction", B * p, "param", HELD, "c_t = g + k (g − h): all held for the global clip norm")]
    return [Term("correction", B * p, "param", "transient", "c_t = g + k (g − h), alive through the update")]


def _mars(ctx: _Context, buffers: list[Term], transients: list[Term]):
    uses, _ = _mars_rule(ctx)
    if not uses:
        return "dense", [_STEP, *_dense_adam_terms("mars.md §1.7: AdamW fallback, 2p"), *_mars_exact_point(ctx)], \
            _adam_transients()
    return "mars", [_STEP, *buffers, *_mars_estimator_terms(ctx), *_mars_exact_point(ctx)], \
        _mars_common_transients(ctx) + transients


@formula("mars_adamw")
def _mars_adamw(ctx: _Context):
    buffers = [Term("exp_avg", B * p, "param", "moment", "mars.md §3: m")]
    if (ctx.group.get("preconditioner") or "adam") != "identity":
        buffers.append(Term("exp_avg_sq", B * p, "param", "moment", "mars.md §3: v"))
    return _mars(ctx, buffers, _adam_transients())


@formula("mars_lion")
def _mars_lion(ctx: _Context):
    """The official code also allocates an unused v (mars.md §3); the toolkit does not."""
    return _mars(ctx, [Term("exp_avg", B * p, "param", "moment", "mars.md §3: m (no v)")],
                 [Term("sign", B * p, "param", "transient", "sign(m)")])


@formula("mars_shampoo")
def _mars_shampoo(ctx: _Context):
    _, matrix = _mars_rule(ctx)
    buffers = [Term("exp_avg", B * p, "param", "moment", "mars.md §3: m")]
    if not matrix:  # a non-matrix on the MARS rule (optimize_1d) takes MARS-AdamW's preconditioner
        buffers.append(Term("exp_avg_sq", B * p, "param", "moment", "MARS-AdamW rule for non-matrices"))
        return _mars(ctx, buffers, _adam_transients())
    mm = ctx.problem[0]
    nn = ctx.numel // mm if mm else 0
    small = min(mm, nn)
    if ctx.group.get("orthogonalizer") == "newton_schulz":
        ns_dtype = ctx.group.get("ns_dtype") or "param"  # the official variant iterates in bfloat16
        orth = [Term("newton_schulz", B * (5 * p + small * small), ns_dtype, "transient",
                     "X (normalised, cast), A = X Xᵀ (min side², mars.md §3), A X, A (A X), the combination")]
    else:
        orth = [Term("svd_polar", B * (4 * p + small + small * small), "param", "transient",
                     "U, S, Vh of m/(1 − β1) and LAPACK's input copy, U·kept, U Vh")]
    return _mars(ctx, buffers, [Term("scaled_momentum", B * p, "param", "transient", "m / (1 − β1)"), *orth])
