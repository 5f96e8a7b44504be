"""Checks of the default suite (``verify check``): one module per topic, discovered automatically.

Each module registers functions ``fn(quick) -> Outcome`` (:mod:`verify.verdicts`) with :func:`verify.suite.check`.
"""
