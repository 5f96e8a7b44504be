r"""Convergence theorems as data: assumptions, a sympy bound, the step-size schedule, provenance.

Each :class:`Theorem` records what the rate checks compare against; each method family declares its
own in :mod:`verify.methods` (:func:`declare`), and :data:`THEOREMS` collects them:

* ``assumptions``: each with its own provenance tag;
* ``quantity``: the bounded quantity (the metric of a cell, e.g. ``avg_sq_grad`` =
  :math:`\frac1T\sum_{t<T}\|\nabla f(x_t)\|_2^2`) and ``probability`` (in expectation, with probability
  :math:`1-\delta`, or deterministic);
* ``bound``: a sympy expression in the symbols of :data:`SYMBOLS` (T, d, σ, L, Δ, δ, η, …). Where a
  constant is not known it is the symbol ``C`` (or ``H`` for the SN family's polynomial factor) and
  ``explicit`` is False: then only the **shape** is used — the exponent of T as T → ∞
  (:meth:`Theorem.exponent`, computed by sympy as :math:`\lim \log(\text{bound})/\log T`, with σ = 0
  for the noiseless exponent). Where ``explicit`` is True the bound can be evaluated on a problem's
  known constants (:meth:`Theorem.evaluate`) and a check asserts the measured curve lies under it;
* ``schedule``: the step-size schedule the statement needs (``anytime`` when η does not depend on
  the horizon, so one run gives every T);
* ``provenance``: the tag of the statement (:data:`verify.verdicts.TAGS`, ``docs/verdicts.md``). Its
  ``category`` is *verified* ([P], [C], [V], [D]), *measured* ([M]), *background* ([BG]: standard
  literature, shapes only) or *reconstructed* ([U], [S], [A], [F], [T]). A reconstructed claim is
  reported, never passed (:func:`verify.verdicts.gate`).

Derivations marked [D] are written out in the theorem's ``notes``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Mapping

import sympy as sp

from verify.methods import Registry
from verify.verdicts import TAGS, category_of, parse_tag

__all__ = ["category_of", "SYMBOLS", "Assumption", "Schedule", "Theorem", "THEOREMS", "theorem", "declare", "assume",
           "SCHEDULES", "t_exponent", "SMOOTH", "LOWER", "UNBIASED_VAR", "BOUNDED_GRAD"]

# ----------------------------------------------------------------------------- symbols
T, t = sp.symbols("T t", positive=True)  # horizon and step index
d, k, r = sp.symbols("d k r", positive=True)  # dimension, subset size, rank
sigma, L, Delta, delta = sp.symbols("sigma L Delta delta", positive=True)
eta, eta0, b0, G = sp.symbols("eta eta_0 b_0 G", positive=True)
C, H, q_r, nu, s_off, c_mom, beta = sp.symbols("C H q_r nu s c beta", positive=True)
sigma_21 = sp.Symbol("sigma_21", positive=True)  # the mixed norm sum_j ||sigma_Psi_j||_2 [U]

SYMBOLS: dict[str, sp.Symbol] = {
    "T": T, "t": t, "d": d, "k": k, "r": r, "sigma": sigma, "L": L, "Delta": Delta, "delta": delta, "eta": eta,
    "eta0": eta0, "b0": b0, "G": G, "C": C, "H": H, "q_r": q_r, "nu": nu, "s": s_off, "c": c_mom, "beta": beta,
    "sigma_21": sigma_21,
}


@lru_cache(maxsize=None)
def t_exponent(bound: sp.Expr, noiseless: bool = False) -> sp.Rational:
    r"""The exponent of T in ``bound`` as T → ∞: :math:`\lim_{T\to\infty} \log(\text{bound})/\log T`.

    ``noiseless=True`` substitutes σ = 0 (and the mixed norm σ₂,₁ = 0) first. Log factors do not
    change the exponent (Õ).
    """
    expr = bound.subs({sigma: 0, sigma_21: 0}) if noiseless else bound
    if expr == 0:
        raise ValueError("the bound vanishes identically; no exponent")
    return sp.nsimplify(sp.limit(sp.log(expr) / sp.log(T), T, sp.oo))


# ----------------------------------------------------------------------------- records
@dataclass(frozen=True)
class Assumption:
    text: str
    provenance: str

    def to_dict(self) -> dict[str, str]:
        return {"text": self.text, "provenance": self.provenance}


@dataclass(frozen=True)
class Schedule:
    """A step-size schedule: ``kind`` (a key of :data:`SCHEDULES`), words, a sympy form, anytime or not."""

    kind: str
    description: str
    expression: sp.Expr
    anytime: bool

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "description": self.description, "expression": str(self.expression),
                "anytime": self.anytime}


SCHEDULES: dict[str, Schedule] = {
    "constant": Schedule("constant", "constant η, the same for every horizon (adaptive methods: no tuning to T, L or σ)",
                         eta, True),
    "one_over_L": Schedule("one_over_L", "constant η = 1/L (gradient descent)", 1 / L, True),
    "inverse_sqrt_horizon": Schedule("inverse_sqrt_horizon", "fixed horizon: η = η0/√T for a run of T steps, "
                                     "constant within the run", eta0 / sp.sqrt(T), False),
    "mars_theory": Schedule("mars_theory", "η_t = η0·(s+t)^(-1/3), 1 − β1,t = min(1, c·η_t²), γ_t = 1 "
                            "(Theorem B.5's schedule, with the free scale η0)", eta0 * (s_off + t) ** sp.Rational(-1, 3),
                            True),
}


@dataclass(frozen=True)
class Theorem:
    key: str
    title: str
    algorithms: tuple[str, ...]
    source: str
    provenance: str
    assumptions: tuple[Assumption, ...]
    quantity: str
    probability: str
    bound: sp.Expr
    schedule: Schedule
    explicit: bool = False
    notes: str = ""
    constants: tuple[str, ...] = field(default=())  #: symbols that must be supplied to evaluate an explicit bound

    def __post_init__(self) -> None:
        if self.provenance.strip("[]") not in TAGS:
            raise ValueError(f"theorem {self.key!r}: unknown provenance tag {self.provenance!r}; known: {sorted(TAGS)}")
        if self.probability not in ("expectation", "high_probability", "deterministic"):
            raise ValueError(f"theorem {self.key!r}: probability must be expectation/high_probability/deterministic")

    @property
    def tag(self) -> str:
        return self.provenance.strip("[]")

    @property
    def category(self) -> str:
        return category_of(self.tag)

    @property
    def assertable(self) -> bool:
        return parse_tag(self.tag).assertable

    def exponent(self, noiseless: bool = False) -> sp.Rational:
        return t_exponent(self.bound, noiseless)

    def evaluate(self, values: Mapping[str, float]) -> float:
        """The bound's value for numeric ``values`` of its symbols (explicit-constant theorems only)."""
        if not self.explicit:
            raise ValueError(f"theorem {self.key!r} has no explicit constants (unknown C/H): only its shape is usable")
        subs = {}
        for name, value in values.items():
            if name not in SYMBOLS:
                raise ValueError(f"unknown symbol {name!r}; known: {sorted(SYMBOLS)}")
            subs[SYMBOLS[name]] = value
        missing = sorted(str(s) for s in self.bound.free_symbols if s not in subs)
        if missing:
            raise ValueError(f"theorem {self.key!r}: values needed for {missing}")
        return float(self.bound.subs(subs))

    def to_dict(self) -> dict[str, Any]:
        out = {
            "key": self.key, "title": self.title, "algorithms": list(self.algorithms), "source": self.source,
            "provenance": self.provenance, "category": self.category, "assertable": self.assertable,
            "assumptions": [a.to_dict() for a in self.assumptions], "quantity": self.quantity,
            "probability": self.probability, "bound": str(self.bound), "bound_latex": sp.latex(self.bound),
            "schedule": self.schedule.to_dict(), "explicit": self.explicit, "notes": self.notes,
        }
        try:
            out["exponent_noisy"] = str(self.exponent(False))
            out["exponent_noiseless"] = str(self.exponent(True))
        except ValueError:
            pass
        return out


def assume(text: str, tag: str) -> Assumption:
    """An assumption of a theorem, with the provenance tag of where it was read."""
    return Assumption(text, tag)


SMOOTH = assume("f is L-smooth", "BG")
LOWER = assume("f is bounded below: Δ = f(x_0) − inf f < ∞", "BG")
UNBIASED_VAR = assume("unbiased stochastic gradients with E‖g − ∇f‖² ≤ σ²", "BG")
BOUNDED_GRAD = assume("bounded gradients ‖∇f‖∞ ≤ G (Défossez et al.'s assumption)", "BG")

#: every theorem: the families' (:mod:`verify.methods`) and the shared ones below
THEOREMS: Registry[Theorem] = Registry("theorem")


def declare(*theorems: Theorem) -> tuple[Theorem, ...]:
    """Add a family's theorems to :data:`THEOREMS` (in :mod:`verify.methods`)."""
    for th in theorems:
        THEOREMS.add(th.key, th)
    return theorems


#: shared by every method without a theorem of its own (a measured slope, reported, never asserted)
declare(
    Theorem(
        key="no_theorem_sqrt_analogy",
        title="no convergence theorem in the seed papers; O(1/√T) by analogy with SGD/Adam",
        algorithms=("adam_sn", "rmsprop_sn", "adam_sn_sm", "lion", "mars_lion", "mars_shampoo", "fira_adamw"),
        source="none: the expectation is ours, by analogy (docs/problems.md §2 background shapes)",
        provenance="U",
        assumptions=(assume("L-smooth, bounded below, noisy gradients; η = η0/√T", "U"),),
        quantity="avg_sq_grad",
        probability="expectation",
        bound=C / sp.sqrt(T),
        schedule=SCHEDULES["inverse_sqrt_horizon"],
        notes="Reported only: a measured slope with nothing to confirm.",
    ),
)


def theorem(key: str) -> Theorem:
    try:
        return THEOREMS[key]
    except KeyError:
        raise ValueError(f"unknown theorem {key!r}; known: {sorted(THEOREMS)}") from None
