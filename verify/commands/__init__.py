"""Subcommands of ``verify``; one module each (see :mod:`verify.cli`)."""
