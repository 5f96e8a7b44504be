"""``verify list``: every registered optimizer with its paper and variants."""

from __future__ import annotations

NAME = "list"
HELP = "list registered optimizers with their paper and variants"


def add_arguments(parser) -> None:
    parser.add_argument("--json", action="store_true", help="print as JSON")


def run(args) -> int:
    import json

    from algorithms import REGISTRY

    rows = [
        {"name": name, "class": f"{cls.__module__}.{cls.__qualname__}", "paper": cls.paper, "variants": list(cls.variants)}
        for name, cls in sorted(REGISTRY.items())
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    width = max(len(r["name"]) for r in rows)
    vw = max(len(",".join(r["variants"])) for r in rows)
    print(f"{'name':<{width}}  {'variants':<{vw}}  paper")
    for r in rows:
        print(f"{r['name']:<{width}}  {','.join(r['variants']):<{vw}}  {r['paper']}")
    return 0
