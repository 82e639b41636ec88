"""The one list of solver backends: registry name -> the module that declares it.

Each backend declares what it runs beside its code (a ``solvers.base.Supports`` in its module);
this registry only names the module and the declaration, so importing it loads no solver: a
backend's module is imported the first time it is looked up. Everything that lists backends reads
them here (``formalist backends``, through ``backends()``), and every kind runs its backend through
``solve_with`` (the declaration is consulted first: an artifact that uses a feature the backend
does not declare gets ``UNSUPPORTED``, naming the feature, before anything runs). Which backends
serve a kind, and its default, is said by the kind's entry in ``agent.kinds``.

Adding a backend: its module with ``SUPPORTS`` (and the function it names in ``entry``), then one
``register_backend`` line here and its name in its kind's entry.
"""

from __future__ import annotations

import importlib
import importlib.util
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from solvers.base import SolveResult, Supports


@dataclass(frozen=True, slots=True)
class Entry:
    """Where a backend is declared: ``module`` holds the ``Supports`` named ``declaration``, and
    ``entry`` names the module's function the kind calls to solve."""

    name: str
    module: str
    declaration: str = "SUPPORTS"
    entry: str = "solve"


_BACKENDS: dict[str, Entry] = {}
"""Registry name -> where it is declared, in the order ``formalist backends`` lists them."""


def register_backend(
    name: str, module: str, declaration: str = "SUPPORTS", entry: str = "solve"
) -> None:
    """Add (or replace) the backend ``name``, declared as ``module.declaration`` and run by
    ``module.entry``. Nothing is imported until the backend is looked up."""
    _BACKENDS[name] = Entry(name, module, declaration, entry)


def unregister_backend(name: str) -> None:
    """Remove the backend ``name`` (tests that register one of their own)."""
    _BACKENDS.pop(name, None)


register_backend("highs", "solvers.highs")
register_backend("pyomo", "solvers.pyomo_backend")
register_backend("clingo", "solvers.clingo_backend")
register_backend("pyvrp", "solvers.routing_pyvrp")
register_backend("routing-exact", "solvers.routing_exact")
register_backend("auto", "solvers.planning", "PORTFOLIO", "run_portfolio")
register_backend("fast-downward", "solvers.planning", "FAST_DOWNWARD", "run_fast_downward")
register_backend("symk", "solvers.planning", "SYMK", "plan_symk")
register_backend("pyperplan", "solvers.planning", "PYPERPLAN", "run_pyperplan")


def names() -> tuple[str, ...]:
    """Every registered backend's name, in registration order."""
    return tuple(_BACKENDS)


def _entry(name: str) -> Entry:
    try:
        return _BACKENDS[name]
    except KeyError:
        raise KeyError(f"unknown solver backend {name!r}; known: {', '.join(_BACKENDS)}") from None


def declaration(name: str) -> Supports:
    """The ``Supports`` that backend ``name`` declares (its module is imported: a solver's
    module imports its solver library only when it solves)."""
    e = _entry(name)
    supports: Supports = getattr(importlib.import_module(e.module), e.declaration)
    if supports.name != name:
        raise ValueError(f"{e.module}.{e.declaration} declares {supports.name!r}, not {name!r}")
    return supports


def solve_with(
    name: str,
    kind: str,
    features: Iterable[str],
    validated: Any,
    *args: Any,
    **kwargs: Any,
) -> SolveResult:
    """Run backend ``name`` on an artifact of ``kind`` that uses ``features``: its entry function
    is called with ``args`` and ``kwargs``, unless its declaration refuses the artifact (another
    kind, a feature it lacks, or its ``check`` on ``validated``), which gives ``UNSUPPORTED`` with
    the reason, before anything runs. The entry is looked up at each call."""
    supports = declaration(name)
    if kind not in supports.kinds:
        return supports.refuse(
            f"{name} solves {', '.join(supports.kinds)}, not {kind} (choose another backend)"
        )
    features = frozenset(features)
    reason = supports.unsupported(features, validated)
    if reason:
        able = [other for other in _BACKENDS if other != name and _takes(other, kind, features)]
        also = f"; {', '.join(able)} {'does' if len(able) == 1 else 'do'}" if able else ""
        return supports.refuse(reason + also)
    run = getattr(importlib.import_module(_entry(name).module), _entry(name).entry)
    result: SolveResult = run(*args, **kwargs)
    return result


def _takes(name: str, kind: str, features: frozenset[str]) -> bool:
    """Whether backend ``name`` declares ``kind`` and every one of ``features``."""
    try:
        supports = declaration(name)
    except Exception:
        return False
    return kind in supports.kinds and supports.unsupported(features) is None


@dataclass(frozen=True, slots=True)
class Backend:
    """One line of ``formalist backends``: what the backend is, and whether it can run here (the
    modules and programs its declaration needs are present), or why not."""

    name: str
    kinds: str
    available: bool
    detail: str


def backends() -> list[Backend]:
    """Every registered backend with its availability: a needed module that cannot be found or a
    program not on ``PATH`` makes it unavailable (named in ``detail``). Solver libraries are found,
    not imported."""
    out = []
    for name in _BACKENDS:
        try:
            supports = declaration(name)
        except Exception as e:
            out.append(Backend(name, "?", False, f"{type(e).__name__}: {e}"))
            continue
        kinds = ",".join(supports.kinds)
        missing = [m for m in supports.modules if not _module_found(m)]
        missing += [b for b in supports.binaries if shutil.which(b) is None]
        if missing:
            out.append(
                Backend(name, kinds, False, f"{supports.summary}; missing {', '.join(missing)}")
            )
            continue
        versions = [f"{m} {_dist_version(m)}".rstrip() for m in supports.modules]
        detail = "; ".join([supports.summary, *dict.fromkeys(versions)])
        out.append(Backend(name, kinds, True, detail))
    return out


def _module_found(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


_DISTRIBUTIONS = {"up_fast_downward": "up-fast-downward", "up_symk": "up-symk"}
"""Import names whose distribution is named otherwise."""


def _dist_version(module: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    top = module.split(".")[0]
    try:
        return version(_DISTRIBUTIONS.get(top, top))
    except PackageNotFoundError:
        return ""
