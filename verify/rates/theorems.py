r"""Convergence theorems as data: assumptions, a sympy bound, the step-size schedule, provenance.

Each :class:`Theorem` records what the rate checks compare against (theory.md, sn-sm.md §4,
mars.md §4, ldadam.md §A4, galore.md §B4, adarankgrad.md §B7):

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

from verify.verdicts import TAGS, category_of, parse_tag

__all__ = ["category_of", "SYMBOLS", "Assumption", "Schedule", "Theorem", "THEOREMS", "theorem", "SCHEDULES", "t_exponent"]

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


def _a(text: str, tag: str) -> Assumption:
    return Assumption(text, tag)


SMOOTH = _a("f is L-smooth", "BG")
LOWER = _a("f is bounded below: Δ = f(x_0) − inf f < ∞", "BG")
UNBIASED_VAR = _a("unbiased stochastic gradients with E‖g − ∇f‖² ≤ σ²", "BG")
BOUNDED_GRAD = _a("bounded gradients ‖∇f‖∞ ≤ G (Défossez et al.'s assumption)", "BG")

_THEOREM_LIST: list[Theorem] = [
    Theorem(
        key="gd_descent",
        title="gradient descent on an L-smooth function, η = 1/L",
        algorithms=("sgd",),
        source="descent lemma (standard); PEPit's non-convex GD example gives the tight (4/3)-type constant [S]",
        provenance="D",
        assumptions=(SMOOTH, LOWER, _a("exact gradients (σ = 0)", "D")),
        quantity="avg_sq_grad",
        probability="deterministic",
        bound=2 * L * Delta / T,
        schedule=SCHEDULES["one_over_L"],
        explicit=True,
        notes="[D] f(x_{t+1}) ≤ f(x_t) − (1/2L)‖∇f(x_t)‖² for η = 1/L; summing t = 0..T−1 gives "
              "(1/T)Σ‖∇f(x_t)‖² ≤ 2L(f(x_0) − f_inf)/T, hence also for the minimum.",
    ),
    Theorem(
        key="sgd_constant",
        title="SGD with a constant step η ≤ 1/L",
        algorithms=("sgd",),
        source="Ghadimi & Lan 2013 (background); re-derived from the descent lemma",
        provenance="D",
        assumptions=(SMOOTH, LOWER, UNBIASED_VAR, _a("constant η ≤ 1/L", "D")),
        quantity="avg_sq_grad",
        probability="expectation",
        bound=2 * Delta / (eta * T) + L * eta * sigma**2,
        schedule=SCHEDULES["constant"],
        explicit=True,
        notes="[D] E f(x_{t+1}) ≤ E f(x_t) − η(1 − Lη/2)E‖∇f‖² + Lη²σ²/2 and 1 − Lη/2 ≥ 1/2; summing, "
              "(1/T)Σ E‖∇f(x_t)‖² ≤ 2Δ/(ηT) + Lησ² (σ² = E‖ξ‖², the total noise variance).",
    ),
    Theorem(
        key="sgd_horizon",
        title="SGD with the fixed-horizon step η = η0/√T ≤ 1/L",
        algorithms=("sgd",),
        source="Ghadimi & Lan 2013 (theory.md §2 [BG]); constants re-derived from sgd_constant",
        provenance="D",
        assumptions=(SMOOTH, LOWER, UNBIASED_VAR, _a("η0/√T ≤ 1/L", "D")),
        quantity="avg_sq_grad",
        probability="expectation",
        bound=(2 * Delta / eta0 + L * eta0 * sigma**2) / sp.sqrt(T),
        schedule=SCHEDULES["inverse_sqrt_horizon"],
        explicit=True,
        notes="[D] sgd_constant with η = η0/√T: 2Δ/(η0√T) + Lη0σ²/√T. Slope −1/2 whenever σ > 0 "
              "(O(LΔ/T + σ√(LΔ/T)) at the tuned η0).",
    ),
    Theorem(
        key="sgdm_horizon",
        title="SGD with EMA/heavy-ball momentum, fixed horizon",
        algorithms=("sgd",),
        source="Liu, Gao & Yin, NeurIPS 2020 (theory.md §2)",
        provenance="BG",
        assumptions=(SMOOTH, LOWER, UNBIASED_VAR, _a("constant β1; η ∝ 1/√T small enough", "BG")),
        quantity="avg_sq_grad",
        probability="expectation",
        bound=C * (L * Delta / T + sigma * sp.sqrt(L * Delta / T)),
        schedule=SCHEDULES["inverse_sqrt_horizon"],
        notes="Same order as SGD with a β1-dependent constant (shape only).",
    ),
    Theorem(
        key="adagrad_norm_expectation",
        title="AdaGrad-Norm: noise-adaptive without knowing L or σ",
        algorithms=("adagrad_norm",),
        source="Ward, Wu & Bottou 2019 (theory.md §2)",
        provenance="BG",
        assumptions=(SMOOTH, LOWER, UNBIASED_VAR, _a("bounded gradients (Ward et al.)", "BG"),
                     _a("b0 > 0 inside the square root, constant η", "BG")),
        quantity="avg_sq_grad",
        probability="expectation",
        bound=C * (1 / T + sigma * sp.log(T) / sp.sqrt(T)),
        schedule=SCHEDULES["constant"],
        notes="O(1/T) when σ = 0, Õ(1/√T) under noise, with η fixed across T. Shape only.",
    ),
    Theorem(
        key="adagrad_norm_high_probability",
        title="AdaGrad-Norm with high probability under sub-gaussian noise",
        algorithms=("adagrad_norm",),
        source="Liu, T. D. Nguyen, T. H. Nguyen, Ene, H. L. Nguyen, arXiv 2302.14843 (abstract; theory.md §2)",
        provenance="BG",
        assumptions=(SMOOTH, LOWER, _a("sub-gaussian noise E exp(ξ²/σ²) ≤ e", "BG"),
                     _a("no bounded-gradient assumption", "BG")),
        quantity="avg_sq_grad",
        probability="high_probability",
        bound=C * (sp.log(T / delta) ** 2 / T + sigma * sp.log(T / delta) / sp.sqrt(T)),
        schedule=SCHEDULES["constant"],
        notes="The (1−δ)-quantile grows polylogarithmically in 1/δ (not like 1/δ); slope −1/2 under noise.",
    ),
    Theorem(
        key="adagrad_coordinate_defossez",
        title="coordinate-wise AdaGrad with bounded gradients",
        algorithms=("adagrad_coordinate",),
        source="Défossez, Bottou, Bach & Usunier, TMLR 2022 (theory.md §2)",
        provenance="BG",
        assumptions=(SMOOTH, LOWER, UNBIASED_VAR, BOUNDED_GRAD, _a("constant η", "BG")),
        quantity="avg_sq_grad",
        probability="expectation",
        bound=C * d * sp.log(T) / sp.sqrt(T),
        schedule=SCHEDULES["constant"],
        notes="An upper bound: the slope is at most −1/2 (up to the log); noise-free runs may be faster.",
    ),
    Theorem(
        key="adam_defossez",
        title="Adam with bounded gradients, η ∝ 1/√T",
        algorithms=("adam",),
        source="Défossez, Bottou, Bach & Usunier, TMLR 2022 (theory.md §2)",
        provenance="BG",
        assumptions=(SMOOTH, LOWER, UNBIASED_VAR, BOUNDED_GRAD,
                     _a("η = η0/√T and β2 = 1 − 1/T (the theorem's choice); β1 < √β2", "BG")),
        quantity="avg_sq_grad",
        probability="expectation",
        bound=C * d * sp.log(T) / sp.sqrt(T),
        schedule=SCHEDULES["inverse_sqrt_horizon"],
        notes="Their Adam has no bias correction on m; torch-style correction factors tend to 1 and do not "
              "change the shape. Upper bound: slope at most −1/2.",
    ),
    Theorem(
        key="subset_norm_high_probability",
        title="AdaGrad-Subset-Norm: noise-adapted high-probability rate",
        algorithms=("adagrad_subset_norm",),
        source="Nguyen & Nguyen, arXiv 2411.07120 (theorem numbers not verified; sn-sm.md §4.2)",
        provenance="U",
        assumptions=(_a("f L-smooth, non-convex", "A"), _a("f* > −∞, Δ = f(x_1) − f*", "U"),
                     _a("unbiased oracle", "U"), _a("coordinate-wise sub-gaussian noise E exp(ξ_i²/σ_i²) ≤ e", "U"),
                     _a("b0 inside the square root, ε = 0, constant η", "U")),
        quantity="avg_sq_grad",
        probability="high_probability",
        bound=C * (H**2 / T + sigma_21 * H / sp.sqrt(T)),
        schedule=SCHEDULES["constant"],
        notes="Expected shape only: H = poly(Δ/η, ηL, b0, ‖σ‖² log(T/δ)); the noise norm is plausibly the mixed "
              "Σ_j‖σ_Ψj‖₂ (σ_21), interpolating ‖σ‖₁ (k = 1) and ‖σ‖₂ (k = d). Noise-free: O(1/T).",
    ),
    Theorem(
        key="coordinate_high_probability",
        title="AdaGrad-Coordinate as the k = 1 end of the SN theorem (noise through ‖σ‖₁)",
        algorithms=("adagrad_coordinate",),
        source="Nguyen & Nguyen, arXiv 2411.07120 (sn-sm.md §4.2)",
        provenance="U",
        assumptions=(_a("as subset_norm_high_probability with k = 1", "U"),),
        quantity="avg_sq_grad",
        probability="high_probability",
        bound=C * (H**2 / T + sigma * H / sp.sqrt(T)),
        schedule=SCHEDULES["constant"],
        notes="Noise-free O(1/T) (the SN paper's noise adaptation) is not covered by the [BG] Défossez bound.",
    ),
    Theorem(
        key="sn_dimension_table",
        title="dimension and noise-sparsity dependence of Norm / Subset-Norm / Coordinate",
        algorithms=("adagrad_subset_norm", "adagrad_coordinate", "adagrad_norm"),
        source="authors' README figure imgs/subset-norm-stepsize-1.png (timmytonga/adam-subset-norm @ ba5e242)",
        provenance="F",
        assumptions=(_a("about d^β noisy coordinates (the reading of 'noise sparsity β')", "U"),
                     _a("Δ and L O(1) in d", "U")),
        quantity="avg_sq_grad",
        probability="high_probability",
        bound=C * (d ** (sp.Rational(3, 10) + sp.Rational(9, 5) * beta) / sp.sqrt(T) + d ** (beta + 1) / T),
        schedule=SCHEDULES["constant"],
        notes="Subset-Norm row for β ≤ 2/3 (Coordinate: d^{1.5+β}/√T + d^{2.5}/T; Norm: d^{2.5β}/√T + d^{3β}/T). "
              "[D] SN beats Coordinate in the 1/√T term for all β; SN beats Norm iff β > 3/7. Orderings are "
              "tested, not exponents.",
    ),
    Theorem(
        key="subspace_momentum_high_probability",
        title="Subspace-Momentum: the SGD-with-momentum rate",
        algorithms=("subspace_momentum",),
        source="Nguyen & Nguyen, arXiv 2411.07120 (sn-sm.md §4.2, 'SM theorem')",
        provenance="U",
        assumptions=(_a("L-smooth, lower-bounded f", "U"), _a("sub-gaussian noise", "U"),
                     _a("P_t with orthonormal rows, possibly refreshed; whether a gradient-dependent P is covered is open",
                        "U")),
        quantity="avg_sq_grad",
        probability="high_probability",
        bound=C * (L * Delta / T + sigma * sp.sqrt(L * Delta) / sp.sqrt(T)),
        schedule=SCHEDULES["inverse_sqrt_horizon"],
        notes="No speed-up over SGD/SGDm is claimed; expected between SGD (r = 0) and SGDm (r = d).",
    ),
    Theorem(
        key="ldadam_theorem1",
        title="LDAdam non-convex rate (Theorem 1 as read by reviewers)",
        algorithms=("ldadam",),
        source="Robert et al., ICLR 2025 (arXiv 2410.16103): Theorems 1–2 exist [S]; statement unverified",
        provenance="U",
        assumptions=(_a("bounded gradient norm (Assumption 2, per a reviewer)", "S"), _a("L-smooth, bounded below", "U"),
                     _a("contractive projection ‖X − PPᵀX‖ ≤ q_r‖X‖, q_r < 1", "U")),
        quantity="avg_sq_grad",
        probability="expectation",
        bound=C / (1 - q_r) * (1 / sp.sqrt(T)),
        schedule=SCHEDULES["inverse_sqrt_horizon"],
        notes="O(1/√T) with η ∝ 1/√T; the rank enters only the constant (through q_r): r moves the intercept.",
    ),
    Theorem(
        key="golore_floor",
        title="GaLore with SVD of stochastic gradients need not reach stationarity",
        algorithms=("galore_adamw", "fira_adamw", "adarankgrad"),
        source="He et al., GoLore, arXiv 2410.11289 (via a summary; galore.md §B4, theory.md §6 (iii), §7)",
        provenance="S",
        assumptions=(_a("noisy gradients, small batch, subspace from the SVD of the stochastic gradient", "S"),),
        quantity="min_sq_grad",
        probability="expectation",
        bound=C / sp.sqrt(T) + nu,
        schedule=SCHEDULES["inverse_sqrt_horizon"],
        notes="ν > 0: a σ- and batch-dependent floor (slope → 0). Random projections (GoLore) remove it.",
    ),
    Theorem(
        key="adarankgrad_sumo_template",
        title="AdaRankGrad: dynamic-subspace convergence with SGD inner steps",
        algorithms=("adarankgrad",),
        source="via the SUMO paper (arXiv 2505.24749) Thm 3.8 template; adarankgrad.md §B7",
        provenance="S",
        assumptions=(_a("β-smooth, non-convex, bounded; switches when ‖Ĝ‖ ≤ ς_ℓ", "S"),
                     _a("inner steps are SGD (the registry's AdaRankGrad runs Adam inside)", "S")),
        quantity="avg_sq_grad",
        probability="deterministic",
        bound=sp.sqrt(C / T),
        schedule=SCHEDULES["inverse_sqrt_horizon"],
        notes="Average squared gradient ≲ √(C/T) (slope ≤ −1/2) for the SGD analogue only.",
    ),
    Theorem(
        key="mars_theorem_b5",
        title="MARS (Algorithm 1 / 2, γ = 1): Õ(T^(-2/3)) average squared gradient norm",
        algorithms=("mars_adamw",),
        source="Yuan et al., arXiv 2411.10438v4, Theorems B.5 (Alg. 1) and B.6 (MARS-AdamW), App. B.2",
        provenance="P",
        assumptions=(_a("B.1 bounded variance E‖∇f(x,ξ) − ∇F(x)‖² ≤ σ²", "P"),
                     _a("B.2 L-smoothness for every ξ", "P"), _a("B.3 H_t ≻ ρI (ρ ≈ ε)", "P"),
                     _a("T ≥ s ≥ 8L³/ρ³; η_t ≤ ρ/(2L)", "P")),
        quantity="avg_sq_grad",
        probability="expectation",
        bound=C * sp.log(s_off + T) * T ** sp.Rational(-2, 3),
        schedule=SCHEDULES["mars_theory"],
        notes="With ρ = ε the constants are vacuous: shape only. The paper contrasts this with AdamW's "
              "O(T^(-1/2)) for the squared norm (ε^-3 vs ε^-4 gradient complexity). γ fixed < 1 (the "
              "defaults) is not covered [D].",
    ),
    Theorem(
        key="no_theorem_sqrt_analogy",
        title="no convergence theorem in the seed papers; O(1/√T) by analogy with SGD/Adam",
        algorithms=("adam_sn", "rmsprop_sn", "adam_sn_sm", "lion", "mars_lion", "mars_shampoo", "fira_adamw"),
        source="none: the expectation is ours, by analogy (theory.md §2 background shapes)",
        provenance="U",
        assumptions=(_a("L-smooth, bounded below, noisy gradients; η = η0/√T", "U"),),
        quantity="avg_sq_grad",
        probability="expectation",
        bound=C / sp.sqrt(T),
        schedule=SCHEDULES["inverse_sqrt_horizon"],
        notes="Reported only: a measured slope with nothing to confirm.",
    ),
]

THEOREMS: dict[str, Theorem] = {}
for _th in _THEOREM_LIST:
    if _th.key in THEOREMS:
        raise ValueError(f"duplicate theorem key {_th.key!r}")
    THEOREMS[_th.key] = _th


def theorem(key: str) -> Theorem:
    try:
        return THEOREMS[key]
    except KeyError:
        raise ValueError(f"unknown theorem {key!r}; known: {sorted(THEOREMS)}") from None
