r"""The stochastic first-order oracle :math:`g(x, \xi)` of a run: problem sampling plus gradient noise.

.. math::

   g_t = \underbrace{\hat\nabla f(x_{t-1}; \xi^{\text{sample}}_t)}_{\text{problem}}
       + \underbrace{\xi^{\text{noise}}_t}_{\text{noise model}},

where the first term is the exact gradient, or (``sample=True``, finite sums and online data) the
problem's own minibatch estimate :meth:`synthetic.problems.Problem.sample_grad` with ``batch_size``
terms, and the second term is drawn by a :class:`synthetic.noise.NoiseModel`. Both draw from the seed's
counter-based stream at the step number, so :math:`g_t` of seed ``s`` depends only on ``(s, t, x)``.
"""

from __future__ import annotations

from typing import Any

import torch

from algorithms.validation import check_bool, check_int

from .noise import NoiseModel
from .problems import Problem

__all__ = ["Oracle"]


class Oracle:
    """``Oracle(problem, noise=None, sample=None, batch_size=1)``; calling it returns ``(g, exact_grad)``.

    ``exact_grad`` is :math:`\\nabla f(x)` when it was computed on the way (no problem sampling), else
    ``None``; the runner reuses it for running gradient-norm statistics.
    ``sample`` defaults to ``problem.stochastic`` (finite sums sample their terms). A noise that depends on
    the gradient (:class:`synthetic.noise.MultiplicativeNoise` with ``target="gradient"``) multiplies the exact
    gradient, or the sampled one when the problem samples.
    """

    def __init__(self, problem: Problem, noise: NoiseModel | None = None, *, sample: bool | None = None,
                 batch_size: int = 1) -> None:
        if not isinstance(problem, Problem):
            raise TypeError(f"problem must be a synthetic.problems.Problem, got {type(problem).__name__}")
        if noise is not None and not isinstance(noise, NoiseModel):
            raise TypeError(f"noise must be a synthetic.noise.NoiseModel or None, got {type(noise).__name__}")
        self.problem = problem
        self.noise = noise
        self.sample = problem.stochastic if sample is None else check_bool("sample", sample)
        if self.sample and not problem.stochastic:
            raise ValueError(f"sample=True but {type(problem).__name__} has no stochastic oracle of its own; "
                             "add a noise model instead")
        self.batch_size = check_int("batch_size", batch_size, minimum=1)
        if noise is not None:
            noise.check_shape(problem.shape)

    def __call__(self, x: torch.Tensor, streams, step: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.sample:
            g = self.problem.sample_grad(x, streams, step, self.batch_size)
            exact = None
        else:
            g = exact = self.problem.grad(x)
        if self.noise is not None:
            g = self.noise.sample(streams, step, x, exact if exact is not None else g).add_(g)
        return g, exact

    def describe(self) -> dict[str, Any]:
        return {"sample": self.sample, "batch_size": self.batch_size,
                "noise": None if self.noise is None else self.noise.describe()}
