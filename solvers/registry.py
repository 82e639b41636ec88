"""The solver backends, each listed with whether it loads and, if not, why."""

from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backend:
    name: str
    kinds: str
    available: bool
    detail: str


_BACKENDS = (
    (
        "highs",
        "milp",
        "highspy",
        "HiGHS through highspy, straight from the compiled rows (default)",
    ),
    ("pyomo", "milp", "pyomo.environ", "a Pyomo ConcreteModel solved by Pyomo's HiGHS interface"),
    (
        "clingo",
        "asp",
        "clingo",
        "clingo's Python API in a child process with time and memory limits",
    ),
    ("pyvrp", "routing", "pyvrp", "PyVRP's iterated local search on integer-scaled routing specs"),
)


def backends() -> list[Backend]:
    """Every backend, imported to see whether it loads (the reason is kept when it does not)."""
    out = []
    for name, kinds, module, what in _BACKENDS:
        try:
            mod = importlib.import_module(module)
            version = getattr(mod, "__version__", "") or _dist_version(module.split(".")[0])
            out.append(
                Backend(name, kinds, True, f"{what}; {module.split('.')[0]} {version}".rstrip())
            )
        except Exception as e:
            out.append(Backend(name, kinds, False, f"{type(e).__name__}: {e}"))
    return out


def _dist_version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return ""
