r"""Optimizer-state memory as sympy formulas, per algorithm and per parameter shape (docs/memory.md §1).

This module is the framework (terms, the per-parameter formula, group transients, the shared rules);
each method family writes its formulas in :mod:`verify.memory` 's sense in :mod:`verify.methods`
(:func:`formula`), from the papers and from the *documented* state layout of each reference optimizer
(the "State" paragraph of its docstring), **without calling the optimizer code**, so the exact
equality test (tests/verify/test_memory_formulas.py) compares two independent descriptions: the
formulas and the tensors the optimizer really keeps (:mod:`verify.memory.walker`).

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

from verify.methods import Registry

__all__ = [
    "m", "n", "p", "B", "r", "k", "ell", "b", "s",
    "KINDS", "PAPER_KINDS", "PROJECTOR_KINDS", "BOOKKEEPING_KINDS",
    "RNG_STATE_BYTES", "DTYPE_BYTES",
    "HELD", "Term", "ParamMemory", "FORMULAS", "formula", "param_memory", "has_formula", "group_transient",
    "side_rule", "subset_count", "largest_divisor_at_most", "MU",
    "ALGORITHM_DEFAULTS", "Context", "STEP", "RNG", "dense_adam_terms", "adam_transients", "svd_refresh",
    "subspace_adam_terms",
]

m, n, p, B, r, k, ell, b, s = sympy.symbols("m n p B r k ell b s", integer=True, nonnegative=True)
MU = sympy.Min(m, n)

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
    larger; ``left``/``right`` are fixed (docs/methods.md §3.1, §4.1; the toolkit's side table)."""
    if rule in ("left", "right"):
        return rule
    if rule not in ("std", "reverse_std"):
        raise ValueError(f"unknown side rule {rule!r}")
    std = square if mm == nn else ("left" if mm < nn else "right")
    if rule == "std":
        return std
    return "right" if std == "left" else "left"


def largest_divisor_at_most(num: int, cap: int) -> int:
    """The largest divisor of ``num`` not above ``cap`` (docs/methods.md §1.2: the code's subset size)."""
    if cap >= num:
        return num
    return max(d for d in range(1, cap + 1) if num % d == 0)


def subset_count(problem_shape: Sequence[int], subset_size: int | str) -> tuple[int, int]:
    """``(k, c)``: coordinates per subset and number of accumulators (docs/methods.md §1.2, docs/memory.md §1).

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


# ----------------------------------------------------------------------------- the registry
#: ``algorithm -> fn(ctx) -> (route, terms, transients)``, declared in :mod:`verify.methods`
FORMULAS: Registry[Callable[["Context"], tuple[str, list[Term], list[Term]]]] = Registry("memory formula")
#: the memory-relevant defaults of each algorithm's constructor / variant (from its documented defaults
#: table); :meth:`Context.get` reads the group first and falls back to these
ALGORITHM_DEFAULTS: Registry[dict[str, Any]] = Registry("memory defaults")


def formula(name: str, *, defaults: Mapping[str, Any] | None = None):
    """Decorator (in :mod:`verify.methods`): ``fn(ctx) -> (route, terms, transients)`` is ``name``'s formula;
    ``defaults`` are the constructor defaults it falls back to."""

    def decorate(fn):
        FORMULAS.add(name, fn)
        ALGORITHM_DEFAULTS.add(name, dict(defaults or {}))
        return fn

    return decorate


def has_formula(algorithm: str) -> bool:
    return algorithm in FORMULAS


class Context:
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
            value = ALGORITHM_DEFAULTS[self.algorithm].get(key) if self.algorithm in ALGORITHM_DEFAULTS else None
        return value

    def lowrank(self) -> bool:
        return bool(self.group.get("lowrank", True)) and self.is_matrix


STEP = Term("step", sympy.Integer(1), "int64", "counter", "per-parameter step counter (CPU int64 0-D)", host=True)
RNG = Term("rng_state", s, "uint8", "rng", "the parameter's own torch.Generator state (_base.py)", host=True)


def dense_adam_terms(note: str) -> list[Term]:
    return [Term("exp_avg", B * p, "param", "moment", note), Term("exp_avg_sq", B * p, "param", "moment", note)]


def adam_transients() -> list[Term]:
    # adam_direction: denominator, m/denominator and the bias-corrected result are alive together
    return [Term("adam_direction_temporaries", 3 * B * p, "param", "transient", "denominator, quotient, scaled quotient")]


def svd_refresh(ctx: Context, proj_dim: sympy.Expr) -> list[Term]:
    """The peak of an SVD refresh (module docstring): outputs, LAPACK's input copies, the new basis."""
    return [Term("svd_outputs", B * (m * MU + MU + MU * n), "param", "refresh_transient", "U, S, Vh (thin)"),
            Term("svd_input_copies", 2 * B * m * n, "param", "refresh_transient", "LAPACK driver copies of G"),
            Term("new_basis", B * proj_dim * r, "param", "refresh_transient", "the new basis beside the old one")]


def subspace_adam_terms(ctx: Context, side: str, rank: int, note: str) -> list[Term]:
    """A projected matrix's basis and the two Adam moments of its projected gradient (GaLore, Fira, LDAdam,
    AdaRankGrad)."""
    ctx.values[r] = rank
    proj_dim, other = (m, n) if side == "left" else (n, m)
    return [
        Term("basis", B * proj_dim * r, "param", "projector", f"{note}: projector r·μ (std rule)"),
        Term("exp_avg", B * r * other, "param", "moment", f"{note}: M, r·M (std rule)"),
        Term("exp_avg_sq", B * r * other, "param", "moment", f"{note}: V, r·M (std rule)"),
    ]


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
        raise KeyError(f"no memory formula for {algorithm!r}; declare one with its family in verify/methods/")
    if device not in RNG_STATE_BYTES:
        raise ValueError(f"device must be one of {tuple(RNG_STATE_BYTES)}, got {device!r}")
    ctx = Context(algorithm, shape, group or {}, runtime or {})
    ctx.values[s] = RNG_STATE_BYTES[device]
    route, terms, transients = FORMULAS[algorithm](ctx)
    return ParamMemory(algorithm, ctx.shape, route, dict(ctx.values), terms, transients)
