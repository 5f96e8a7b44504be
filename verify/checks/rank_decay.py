"""Checks in the default suite: gradient-rank decay on the A − BWC problem (rank-decay.md; verify/rank_checks.py).

tests/verify/test_rank_checks.py shows each check failing on a planted bug and passing on the real code.
"""

from __future__ import annotations

from verify import rank_checks
from verify.suite import check

GROUP = "rank"


def _verdict(fn, quick: bool) -> tuple[bool, str]:
    passed, detail, _ = fn(quick)
    return passed, detail


@check("GaLore Lemma 3.3: sr(G_t) - sr_inf <= bound, decays at least like rho^2 (full-batch GD)", GROUP)
def lemma33(quick: bool):
    return _verdict(rank_checks.check_lemma33, quick)


@check("AdaRankGrad rank -> 1 holds for N=1; for N>1 the limit is sr(unvec v1) > 1", GROUP)
def rank_one_limit(quick: bool):
    return _verdict(rank_checks.check_rank_one_limit, quick)


@check("noise: observed-gradient stable rank climbs back to the noise level, clean E[G] keeps decaying", GROUP)
def noise_effect(quick: bool):
    return _verdict(rank_checks.check_noise_effect, quick)


@check("AdaRankGrad r_t at each refresh == energy rank of that gradient (trace recorded)", GROUP)
def adarankgrad_trace(quick: bool):
    return _verdict(rank_checks.check_adarankgrad_trace, quick)
