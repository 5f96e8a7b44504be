"""Checks in the default suite: gradient-rank decay on the A − BWC problem (:mod:`verify.rank`), with the
provenance :data:`verify.rank.CHECKS` gives each.

tests/verify/test_rank.py shows each check failing on a planted bug and passing on the real code.
"""

from __future__ import annotations

from verify import rank
from verify.suite import check

GROUP = "rank"

for _name, _spec in rank.CHECKS.items():
    check(_spec.title, GROUP, provenance=_spec.provenance)(_spec.fn)
