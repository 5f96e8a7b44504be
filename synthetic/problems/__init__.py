"""Synthetic problem families with known smoothness constants and lower bounds (one family per module).

=============================  ==================================================  ==========================
class                          objective                                           L holds
=============================  ==================================================  ==========================
:class:`SeparableLogSum`       P1: Σ a_i log(1 + (x_i − c_i)²/w_i²)                everywhere (attained)
:class:`QuadraticCosine`       P2: ½xᵀAx + α Σ cos x_i                            everywhere (attained)
:class:`MatrixQuadraticCosine` P3: ½‖UXV − C‖² + α Σ cos X_ij                      everywhere (attained)
:class:`RobustRegression`      RR: finite sum of N robust losses (MARS B)          everywhere; per sample too
:class:`MatrixQuadratic`       ABC: (1/N) Σ [½tr(WᵀB_iWC_i) − tr(A_iᵀW)]           everywhere (attained)
:class:`DeepLinearNetwork`     ½‖W_D⋯W_1 − T‖², teacher–student                   on a spectral ball (attained)
:class:`Rosenbrock`            Σ b(x_{i+1} − x_i²)² + (1 − x_i)²                   on a box (nearly attained)
=============================  ==================================================  ==========================
"""

from ._base import Problem
from .deep_linear import DeepLinearNetwork
from .matrix_cosine import MatrixQuadraticCosine
from .matrix_quadratic import MatrixQuadratic
from .quadratic_cosine import QuadraticCosine, linear_spectrum, log_spectrum, two_cluster_spectrum
from .robust_regression import RobustRegression
from .rosenbrock import Rosenbrock
from .separable import SeparableLogSum

__all__ = [
    "Problem",
    "SeparableLogSum",
    "QuadraticCosine",
    "MatrixQuadraticCosine",
    "RobustRegression",
    "MatrixQuadratic",
    "DeepLinearNetwork",
    "Rosenbrock",
    "linear_spectrum",
    "log_spectrum",
    "two_cluster_spectrum",
]
