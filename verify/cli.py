"""The ``verify`` command. Each subcommand lives in :mod:`verify.commands` as a module that
defines ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``; modules are
discovered automatically, so adding a check never touches this file."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from . import commands


def _command_modules():
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            yield importlib.import_module(f"{commands.__name__}.{info.name}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="verify",
        description="optverify: check reference optimizers against their papers' theorems, "
        "memory formulas and exact identities.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod in _command_modules():
        p = sub.add_parser(
            mod.NAME,
            help=mod.HELP,
            description=getattr(mod, "DESCRIPTION", mod.HELP),
            formatter_class=argparse.RawDescriptionHelpFormatter,  # keep the examples laid out
        )
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    from synthetic.allocator import retain_unless_disabled

    parser = build_parser()
    args = parser.parse_args(argv)
    retain_unless_disabled()  # batched runs reuse freed memory instead of page-faulting it back
    if not getattr(args, "_run", None):
        parser.print_help()
        return 0
    return int(args._run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
