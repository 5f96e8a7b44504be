"""Checks of the default suite (``verify check``): one module per topic, discovered automatically.

Each module registers functions ``fn(quick) -> (passed, detail)`` with :func:`verify.suite.check`.
"""
