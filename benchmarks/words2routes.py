"""Words to Routes tasks as routing specs, for the oracle mode.

The dataset ships no formal reference (only the task text and the reference optimum). The oracle
spec of a task is, in order: the hand-written reference spec of the routing tests
(``tests/fixtures/routing/w2r/<FLEET>_<TYPE>_<SIZE>.json``, see its SOURCE.md), else one read from
the task's own structured lines: ``City k: (x, y) [Depot]`` and
``City group G: City i, City j``. Only the single-robot types whose constraints are fully stated by
those lines are converted: A-TSP (visit every city once) and C-GTSP (one city per group). Every other
type raises ``NotConvertible`` with the reason.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

_CITY = re.compile(r"^City (\d+):\s*\(\s*(-?[\d.]+)\s*,\s*(-?[\d.]+)\s*\)(\s*\[Depot\])?", re.M)
_GROUP = re.compile(r"^City group (\w+):\s*(.+)$", re.M)
CONVERTED = {("1-tsp", "A-TSP"), ("1-tsp", "C-GTSP")}


class NotConvertible(ValueError):
    """This task's type has no converter (the message says which)."""


def to_spec(item_id: str, text: str) -> dict[str, Any]:
    """The routing spec of task ``item_id`` (``1-tsp/A-TSP/05_points``) from its text."""
    robots, typ, _ = item_id.split("/")
    if (robots, typ) not in CONVERTED:
        raise NotConvertible(
            f"no routing spec for {item_id}: the data has no formal reference, the routing tests "
            "have no reference spec for it, and only single-robot A-TSP and C-GTSP are read from "
            "the task text"
        )
    cities = [(f"c{n}", float(x), float(y), bool(d)) for n, x, y, d in _CITY.findall(text)]
    depots = [c for c in cities if c[3]]
    if len(depots) != 1 or len(cities) < 2:
        raise NotConvertible(f"{item_id}: expected one depot among the cities")
    spec: dict[str, Any] = {
        "name": item_id,
        "locations": [{"id": c, "x": x, "y": y} for c, x, y, _ in cities],
        "depots": [{"id": depots[0][0]}],
        "vehicle_types": [{"count": 1}],
    }
    clients = [{"id": c} for c, _, _, d in cities if not d]
    if typ == "C-GTSP":
        groups = _GROUP.findall(text)
        if not groups:
            raise NotConvertible(f"{item_id}: no city groups in the text")
        member = {}
        for name, members in groups:
            for n in re.findall(r"City (\d+)", members):
                member[f"c{n}"] = name
        spec["groups"] = [{"name": g} for g, _ in groups]
        clients = [{"id": c["id"], "group": member[c["id"]]} for c in clients if c["id"] in member]
    spec["clients"] = clients
    return spec


REFERENCE_SPECS = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "routing" / "w2r"


def reference_spec_file(item_id: str) -> Path | None:
    """The hand-written reference spec of ``1-tsp/A-TSP/05_points``, when there is one."""
    robots, typ, size = item_id.split("/")
    p = REFERENCE_SPECS / f"{robots}_{typ}_{size.split('_')[0]}.json"
    return p if p.is_file() else None


def to_spec_text(item_id: str, text: str) -> tuple[str, str]:
    """``(spec JSON, where it came from)`` for task ``item_id``; raises ``NotConvertible``."""
    ref = reference_spec_file(item_id)
    if ref is not None:
        return ref.read_text(encoding="utf-8"), f"reference spec {ref.name}"
    return json.dumps(to_spec(item_id, text)), "read from the task text"
