"""Checks of the default suite (``verify check``) that belong to no method family: memory totals, rank
decay, rates, the synthetic problems. One module per topic, discovered automatically; each method
family's identity checks live with its other declarations in :mod:`verify.methods`.

Each module registers functions ``fn(quick) -> Outcome`` (:mod:`verify.verdicts`) with :func:`verify.suite.check`.
"""
