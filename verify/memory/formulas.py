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

Transient buffers (:class:`Term` with kind ``"transient"``, in :attr:`ParamMemory.transients`) are the
temporaries alive at the peak of one parameter's update, read off the update math; the walker cannot
see them. They are estimates used for the GPU peak prediction (paper_checks/gpu_memory.py), not
asserted exactly; decomposition workspaces of LAPACK/cuSOLVER are not modelled.
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
    "Term", "ParamMemory", "FORMULAS", "formula", "param_memory", "has_formula",
    "side_rule", "subset_count", "largest_divisor_at_most",
    "ALGORITHM_DEFAULTS",
]

m, n, p, B, r, k, ell, b, s = sympy.symbols("m n p B r k ell b s", integer=True, nonnegative=True)
MU = sympy.Min(m, n)
MX = sympy.Max(m, n)

KINDS = ("moment", "subset_accumulator", "projector", "indices", "error_feedback", "scalar", "counter", "rng",
         "bookkeeping", "transient")
PAPER_KINDS = frozenset({"moment", "subset_accumulator", "scalar"})
PROJECTOR_KINDS = frozenset({"projector", "indices"})
BOOKKEEPING_KINDS = frozenset({"counter", "rng", "bookkeeping"})

#: bytes of ``torch.Generator.get_state()``: CPU mt19937 (624 words + bookkeeping) and CUDA Philox
RNG_STATE_BYTES = {"cpu": 5056, "cuda": 16}
DTYPE_BYTES = {"int64": 8, "uint8": 1}


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
        if self.dtype not in ("param", "int64", "uint8"):
            raise ValueError(f"dtype must be 'param', 'int64' or 'uint8', got {self.dtype!r}")

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

    def transient_elements(self) -> int:
        return sum(self.count(t) for t in self.transients)

    def transient_bytes(self, param_bytes: int) -> int:
        return sum(self.count(t) * t.element_size(param_bytes) for t in self.transients)

    def describe(self) -> list[dict[str, Any]]:
        return [{"key": t.key, "formula": str(t.elements), "elements": self.count(t), "dtype": t.dtype, "kind": t.kind,
                 "note": t.note} for t in self.terms]


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
    return "dense", terms, [Term("weight_decay_gradient", B * p, "param", "transient", "g + λx when λ > 0")]


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


@formula("adagrad_subset_norm")
def _adagrad_subset_norm(ctx: _Context):
    terms = [_STEP, *_subset_terms(ctx, ctx.get("subset_size"), "sum_sq", "sn-sm.md §3: c = p/k accumulators")]
    return "dense", terms, [Term("gradient_squares_and_step", 2 * B * p, "param", "transient", "g², g / denominator")]


@formula("adam_sn")
def _adam_sn(ctx: _Context):
    beta1 = ctx.get("betas")[0]
    terms = [_STEP]
    if beta1 != 0:
        terms.append(Term("exp_avg", B * p, "param", "moment", "sn-sm.md §3: full first moment mn"))
    terms += _subset_terms(ctx, ctx.get("subset_size"), "exp_avg_sq", "sn-sm.md §3: AdamSN mn + M (heuristics) or mn + mn/k")
    return "dense", terms, [Term("sn_direction_temporaries", 3 * B * p, "param", "transient", "g², m / denominator, scaled")]


@formula("rmsprop_sn")
def _rmsprop_sn(ctx: _Context):
    terms = [_STEP, *_subset_terms(ctx, ctx.get("subset_size"), "exp_avg_sq", "sn-sm.md §3: RMSPropSN M (heuristics)")]
    return "dense", terms, [Term("sn_direction_temporaries", 3 * B * p, "param", "transient", "g², g / denominator, scaled")]


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


def _sm_transients(ctx: _Context) -> list[Term]:
    side, rank = _sm_layout(ctx)
    ctx.values[r] = rank
    other = n if side == "left" else m
    return [Term("projected_gradient", B * r * other, "param", "transient", "P g"),
            Term("lifted_and_orthogonal", 3 * B * m * n, "param", "transient", "Pᵀm, P Pᵀ g, g − P Pᵀ g")]


@formula("subspace_momentum")
def _subspace_momentum(ctx: _Context):
    beta1 = ctx.get("momentum")
    if ctx.lowrank():
        return "projected", [_STEP, *_sm_terms(ctx, beta1)], _sm_transients(ctx)
    terms = [_STEP]
    if beta1 != 0:
        terms.append(Term("momentum_buffer", B * p, "param", "moment", "dense EMA momentum (SGD outside the SM group)"))
    return "dense", terms, [Term("bias_corrected_momentum", B * p, "param", "transient", "b / (1 − β^t)")]


@formula("adam_sn_sm")
def _adam_sn_sm(ctx: _Context):
    beta1 = ctx.get("betas")[0]
    if ctx.lowrank():
        terms = [_STEP, *_subset_terms(ctx, ctx.get("subset_size"), "exp_avg_sq", "memory.md §1: AdamSNSM ... + M (SN accumulators)")]
        terms += _sm_terms(ctx, beta1)
        return "projected", terms, _sm_transients(ctx) + [
            Term("sn_denominator_and_step", 2 * B * m * n, "param", "transient", "g², numerator / denominator")]
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


def _galore_transients(ctx: _Context, extra_full: int) -> list[Term]:
    """R, N (subspace size) and the lifted update (full size), plus ``extra_full`` more full-size buffers."""
    other = n if _galore_layout(ctx)[0] == "left" else m
    return [Term("subspace_temporaries", 3 * B * r * other, "param", "transient", "R = PᵀG, denominator, N"),
            Term("full_size_temporaries", (1 + extra_full) * B * m * n, "param", "transient", "lifted update P N (+ Fira residual)")]


@formula("galore_adamw")
def _galore(ctx: _Context):
    if not ctx.lowrank():
        return "dense", [_STEP, *_dense_adam_terms("galore.md §B3: dense 2p")], _adam_transients()
    side, rank = _galore_layout(ctx)
    terms = [_STEP, *_subspace_adam_terms(ctx, side, rank, "galore.md §B3 / memory.md §1: rμ + 2rM")]
    return "projected", terms, _galore_transients(ctx, 0)


@formula("fira_adamw")
def _fira(ctx: _Context):
    if not ctx.lowrank():
        return "dense", [_STEP, *_dense_adam_terms("fira.md §A3: dense 2p (HF-AdamW)")], _adam_transients()
    side, rank = _galore_layout(ctx)
    terms = [_STEP, *_subspace_adam_terms(ctx, side, rank, "fira.md §A3: rμ + 2rM + 1"),
             Term("residual_norm", B * sympy.Integer(1), "param", "scalar", "fira.md §A3: the scalar ‖S_{t−1}‖")]
    return "projected", terms, _galore_transients(ctx, 3)  # S, scaled S, limited S


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
    transients = [Term("second_basis_and_Q", B * (proj_dim * r + r * r), "param", "transient", "ldadam.md §A3: P_t, Q_t"),
                  Term("b_and_full_temporaries", 3 * B * m * n, "param", "transient", "ldadam.md §A3: a_t, b_t, new EF"),
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
    transients = [Term("old_basis_at_refresh", B * proj_dim * r, "param", "transient", "adarankgrad.md §B4: old Q"),
                  Term("sketch", B * width * (mm + nn), "param", "transient", "adarankgrad.md §B4: Y m·(r_max+p), B (r_max+p)·n"),
                  Term("subspace_temporaries", 3 * B * r * other, "param", "transient", "Ĝ, denominator, N"),
                  Term("lifted_update", B * m * n, "param", "transient", "Q N")]
    return "projected", terms, transients
