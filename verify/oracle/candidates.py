"""Loading a candidate optimizer: ``module:Class`` or ``module:factory``, as shipped.

A candidate is anything called as ``candidate(params, **kwargs)`` that returns a
``torch.optim.Optimizer`` (a class, or a factory function that builds one, e.g. with the parameter
groups a package needs).

**Missing declared dependencies.** Some research packages import heavy libraries they do not use
for the optimizer itself: galore-torch 1.0 and fira 1.0.2 import
``transformers.utils.versions.require_version`` (a version assertion), and galore-torch's
``__init__`` imports bitsandbytes for its 8-bit class. ``stub_missing=("transformers",
"bitsandbytes")`` (``verify oracle --stub-missing transformers,bitsandbytes``) lets such a package
import without installing them:

* only modules that are **not installed** are stubbed (an installed one is always used), and only
  while the candidate is imported; they are removed from ``sys.modules`` afterwards (other
  packages probe for ``transformers`` with ``importlib.util.find_spec``);
* ``require_version`` is implemented for real (it checks the installed version with
  ``importlib.metadata`` and raises ``ImportError`` when the requirement fails);
* any other attribute of a stubbed module is a placeholder class that can be subclassed (e.g.
  bitsandbytes' ``Optimizer2State``, the base of an 8-bit optimizer) but raises ``ImportError``
  naming the stub when called or instantiated, so a code path that *does* use the library fails
  loudly instead of running on a stub.

The stub is opt-in, never automatic: a user who meant to test against the real library should not
get a stub silently. When an import fails on a missing module, the error suggests the option.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.abc
import importlib.machinery
import importlib.metadata
import importlib.util
import re
import sys
import types
from typing import Any, Callable, Iterator, Sequence

import torch

from .errors import OracleInputError

__all__ = ["load_candidate", "stubbed_imports", "require_version", "candidate_label", "build_candidate"]


# ----------------------------------------------------------------------------- stubs
def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", text.split("+")[0])[:4])


_OPS: dict[str, Callable[[tuple, tuple], bool]] = {
    ">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b, "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b, ">": lambda a, b: a > b, "<": lambda a, b: a < b,
}


def require_version(requirement: str, hint: str | None = None) -> None:
    """``transformers.utils.versions.require_version``: check ``"pkg>=1.2,<2"`` against the installed version."""
    match = re.match(r"^\s*([A-Za-z0-9_.\-\[\]]+)\s*(.*)$", requirement)
    if not match:
        raise ValueError(f"require_version: cannot parse {requirement!r}")
    name, spec = match.group(1).split("[")[0], match.group(2)
    try:
        installed = sys.version.split()[0] if name == "python" else importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        raise ImportError(f"{requirement} is required but {name} is not installed. {hint or ''}".strip()) from None
    for clause in filter(None, (c.strip() for c in spec.split(","))):
        op = next((o for o in (">=", "<=", "==", "!=", ">", "<") if clause.startswith(o)), None)
        if op is None:
            raise ValueError(f"require_version: cannot parse {clause!r} in {requirement!r}")
        if not _OPS[op](_version_tuple(installed), _version_tuple(clause[len(op):])):
            raise ImportError(f"{requirement} is required, found {name}=={installed}. {hint or ''}".strip())


#: the symbols given a real implementation instead of a placeholder
_REAL_SYMBOLS = {("transformers.utils.versions", "require_version"): require_version}


class _StubModule(types.ModuleType):
    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        real = _REAL_SYMBOLS.get((self.__name__, attr))
        value = real if real is not None else _placeholder(self.__name__, attr)
        setattr(self, attr, value)
        return value


def _placeholder(module: str, attr: str) -> type:
    message = (f"{module}.{attr} is a stub: {module.split('.')[0]} is not installed and was stubbed "
               "(--stub-missing) only so that the candidate's package imports; this code path needs the real library")

    class _Meta(type):
        def __call__(cls, *args, **kwargs):
            raise ImportError(message)

    return _Meta(attr, (), {"__module__": module, "__doc__": message})


class _StubFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def __init__(self, roots: Sequence[str]) -> None:
        self.roots = tuple(roots)
        self.created: list[str] = []

    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] in self.roots:
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        module = _StubModule(spec.name)
        module.__path__ = []  # a package: submodules resolve through this finder
        self.created.append(spec.name)
        return module

    def exec_module(self, module):
        pass


@contextlib.contextmanager
def stubbed_imports(names: Sequence[str]) -> Iterator[list[str]]:
    """Stub the top-level modules ``names`` that are not installed, for the duration of the block.

    Yields the list of stubbed top-level names (installed ones are left alone)."""
    for name in names:
        if "." in name or not name.isidentifier():
            raise OracleInputError(f"--stub-missing: {name!r} is not a top-level module name")
    missing = [n for n in names if n not in sys.modules and importlib.util.find_spec(n) is None]
    finder = _StubFinder(missing)
    sys.meta_path.insert(0, finder)
    try:
        yield missing
    finally:
        sys.meta_path.remove(finder)
        for name in finder.created:
            sys.modules.pop(name, None)


# ----------------------------------------------------------------------------- loading
def _split(spec: str) -> tuple[str, str]:
    if ":" in spec:
        module, _, attr = spec.partition(":")
    elif "." in spec:
        module, _, attr = spec.rpartition(".")
    else:
        module, attr = "", ""
    if not module or not attr:
        raise OracleInputError(f"--candidate: expected 'package.module:Class' or 'package.module:factory', got {spec!r}")
    return module, attr


def load_candidate(spec: str, *, stub_missing: Sequence[str] = ()) -> Callable[..., torch.optim.Optimizer]:
    """``"package.module:Class"`` (or ``:factory``, or ``package.module.Class``) -> the object.

    ``stub_missing``: top-level modules to stub while importing when they are not installed (see the
    module docstring)."""
    module_name, attr = _split(spec)
    with stubbed_imports(stub_missing):
        try:
            obj: Any = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            missing = exc.name or "?"
            if missing == module_name or module_name.startswith(missing + "."):
                raise OracleInputError(
                    f"--candidate: no module named {module_name!r} (is it installed, or in the current directory?)"
                ) from None
            raise OracleInputError(
                f"--candidate: importing {module_name} failed: no module named {missing!r}; install it, or if "
                f"{module_name} only imports it, retry with --stub-missing {missing.split('.')[0]}"
            ) from None
        except ImportError as exc:
            raise OracleInputError(f"--candidate: importing {module_name} failed: {exc}") from None
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            public = sorted(n for n in dir(obj) if not n.startswith("_"))
            raise OracleInputError(
                f"--candidate: {module_name} has no attribute {attr!r}; it has: {', '.join(public[:40])}"
            ) from None
    if not callable(obj):
        raise OracleInputError(f"--candidate: {spec} is a {type(obj).__name__}, not a class or factory")
    return obj


def candidate_label(candidate: Any) -> str:
    module = getattr(candidate, "__module__", None)
    name = getattr(candidate, "__qualname__", None) or getattr(candidate, "__name__", None) or repr(candidate)
    return f"{module}:{name}" if module and module != "__main__" else name


def build_candidate(candidate: Callable[..., Any], params: Any, kwargs: dict[str, Any], label: str) -> torch.optim.Optimizer:
    """``candidate(params, **kwargs)``, with a one-line error when it fails or returns a non-optimizer."""
    try:
        opt = candidate(params, **kwargs)
    except Exception as exc:  # the user's constructor: any failure is an input problem
        raise OracleInputError(
            f"candidate: {label}(params, **{kwargs!r}) raised {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        ) from exc
    if not (hasattr(opt, "step") and hasattr(opt, "param_groups") and hasattr(opt, "state")):
        raise OracleInputError(
            f"candidate: {label}(params, ...) returned a {type(opt).__name__}, not a torch.optim.Optimizer "
            "(a factory must return the optimizer it builds)"
        )
    return opt
