"""Smooth non-convex problems with known constants, calibrated noise, and a batched many-seed runner.

* :mod:`synthetic.problems`: problem families (value, exact gradient, stochastic oracle, L, f_inf, Δ);
* :mod:`synthetic.noise`: additive / sparse / multiplicative / batched noise with sub-gaussian σ;
* :mod:`synthetic.rng`: counter-based per-seed random streams;
* :mod:`synthetic.oracle`: problem sampling plus noise;
* :mod:`synthetic.runner`: :func:`run` — any registered optimizer on S seeds at once, with traces;
* :mod:`synthetic.metrics`: the recorded quantities;
* :mod:`synthetic.constants`: numerical checks of the constants (sampled curvature against L);
* :mod:`synthetic._invariant`: the batch-invariant reductions and products the problems use;
* :mod:`synthetic.allocator`: keep freed heap memory for long batched runs (process-wide, opt-in).
"""

from .metrics import METRICS, RUNNING_METRICS, OptimizerView, distance_to, energy_rank, state_value
from .noise import (
    DISTRIBUTIONS,
    GAUSSIAN_SIGMA_FACTOR,
    AdditiveNoise,
    MultiplicativeNoise,
    NoiseModel,
    NotSubGaussianError,
    SumNoise,
    sparse_scale,
    sparse_support_size,
)
from .oracle import Oracle
from .problems import (
    DeepLinearNetwork,
    MatrixQuadratic,
    MatrixQuadraticCosine,
    Problem,
    QuadraticCosine,
    RobustRegression,
    Rosenbrock,
    SeparableLogSum,
    linear_spectrum,
    log_spectrum,
    two_cluster_spectrum,
)
from .rng import SeedStreams
from .runner import MODES, BatchInvarianceWarning, RunResult, log_steps, run

__all__ = [
    "Problem", "SeparableLogSum", "QuadraticCosine", "MatrixQuadraticCosine", "RobustRegression", "MatrixQuadratic",
    "DeepLinearNetwork", "Rosenbrock", "linear_spectrum", "log_spectrum", "two_cluster_spectrum",
    "NoiseModel", "AdditiveNoise", "MultiplicativeNoise", "SumNoise", "NotSubGaussianError", "DISTRIBUTIONS",
    "GAUSSIAN_SIGMA_FACTOR", "sparse_scale", "sparse_support_size",
    "SeedStreams", "Oracle", "run", "RunResult", "log_steps", "MODES", "BatchInvarianceWarning",
    "METRICS", "RUNNING_METRICS", "OptimizerView", "distance_to", "state_value", "energy_rank",
]
