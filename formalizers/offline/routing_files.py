"""Routing instances given as files: VRPLIB (CVRPLIB, with time windows), TSPLIB and Solomon.

Each becomes a ``RoutingSpec`` whose location ids are the file's node numbers, with the file's own
distance convention (TSPLIB/VRPLIB ``EUC_2D``: each distance rounded to the nearest integer;
Solomon: the DIMACS convention, truncated to one decimal, as the published best-known solutions).
"""

from __future__ import annotations

import json
import re
from typing import Any

from agent.errors import ArtifactError, Diagnostic, InputError
from formalizers.routing.spec import RoutingSpec, parse_spec

ROUTING_SUFFIXES = (".vrp", ".tsp", ".vrptw")
"""File names read as VRPLIB/TSPLIB whatever they hold."""

_ROUNDING = {"EUC_2D": "nearest", "CEIL_2D": "ceil"}

_VRPLIB_KEY = re.compile(r"^\s*(NAME|TYPE|DIMENSION|EDGE_WEIGHT_TYPE)\s*:", re.MULTILINE)


def looks_like_vrplib(text: str) -> bool:
    """TSPLIB/VRPLIB: ``KEY : value`` header lines and a coordinate or weight section."""
    head = text[:20_000]
    return len(set(_VRPLIB_KEY.findall(head))) >= 2 and (
        "NODE_COORD_SECTION" in head or "EDGE_WEIGHT_SECTION" in head
    )


def looks_like_solomon(text: str) -> bool:
    """Solomon's VRPTW layout: a VEHICLE block and a CUSTOMER table."""
    head = text[:2_000].upper()
    return "VEHICLE" in head and "CUST NO." in head and "CAPACITY" in head


def looks_like_routing_spec(text: str) -> bool:
    """A JSON object with the routing spec's keys (locations, depots, vehicle_types)."""
    s = text.lstrip()
    if not s.startswith("{"):
        return False
    return all(f'"{k}"' in s for k in ("locations", "depots", "vehicle_types"))


def read_routing(text: str, name: str = "") -> tuple[str, RoutingSpec]:
    """``(language, spec)`` for a routing file's text: ``vrplib``, ``solomon`` or ``routing-spec``.

    Raises ``InputError`` for a file that is none of them or that the readers reject, and
    ``ArtifactError`` for a routing spec that is invalid."""
    if looks_like_routing_spec(text):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ArtifactError("parse", [Diagnostic(f"line {e.lineno}", e.msg)]) from e
        return "routing-spec", parse_spec(data)
    if looks_like_solomon(text):
        return "solomon", _from_solomon(text)
    if looks_like_vrplib(text) or name.lower().endswith(ROUTING_SUFFIXES):
        return "vrplib", _from_vrplib(text)
    raise InputError(f"{name or 'the input'} is not a VRPLIB, TSPLIB, Solomon or routing-spec file")


def _from_solomon(text: str) -> RoutingSpec:
    from vrplib.parse import parse_solomon

    try:
        inst = parse_solomon(text, compute_edge_weights=False)
    except Exception as e:  # the reader raises bare ValueError/IndexError on malformed files
        raise InputError(f"not a readable Solomon file: {e}") from e
    coords, demand = inst["node_coord"], inst["demand"]
    tw, service = inst["time_window"], inst["service_time"]
    data: dict[str, Any] = {
        "name": inst.get("name", ""),
        "rounding": "dimacs",
        "locations": [{"id": i, "x": float(x), "y": float(y)} for i, (x, y) in enumerate(coords)],
        "depots": [{"id": 0, "tw_early": float(tw[0][0]), "tw_late": float(tw[0][1])}],
        "clients": [
            {
                "id": i,
                "demand": [float(demand[i])],
                "tw_early": float(tw[i][0]),
                "tw_late": float(tw[i][1]),
                "service": float(service[i]),
            }
            for i in range(1, len(coords))
        ],
        "vehicle_types": [{"count": int(inst["vehicles"]), "capacity": [float(inst["capacity"])]}],
    }
    return parse_spec(data)


def _from_vrplib(text: str) -> RoutingSpec:
    from vrplib.parse import parse_vrplib

    try:
        inst = parse_vrplib(text, compute_edge_weights=False)
    except Exception as e:  # the reader raises bare ValueError/IndexError on malformed files
        raise InputError(f"not a readable VRPLIB/TSPLIB file: {e}") from e
    ewt = str(inst.get("edge_weight_type", "EUC_2D")).upper()
    n = int(inst.get("dimension", 0)) or len(inst.get("node_coord", []))
    coords = inst.get("node_coord")
    data: dict[str, Any] = {"name": inst.get("name", "")}
    if ewt in _ROUNDING and coords is not None:
        data["rounding"] = _ROUNDING[ewt]
        data["locations"] = [
            {"id": i + 1, "x": float(x), "y": float(y)} for i, (x, y) in enumerate(coords)
        ]
    elif ewt == "EXPLICIT":
        from vrplib.parse.parse_distances import parse_distances

        matrix = parse_distances(**inst)
        data["distance_matrix"] = [[float(v) for v in row] for row in matrix]
        data["locations"] = [
            {
                "id": i + 1,
                **(
                    {"x": float(coords[i][0]), "y": float(coords[i][1])}
                    if coords is not None
                    else {}
                ),
            }
            for i in range(n)
        ]
    else:
        raise InputError(
            f"EDGE_WEIGHT_TYPE {ewt} is not supported yet (EUC_2D, CEIL_2D and EXPLICIT are)"
        )
    depots = [int(d) + 1 for d in inst.get("depot", [0])]
    data["depots"] = [{"id": d} for d in depots]
    demand = inst.get("demand")
    tw = inst.get("time_window")
    service = inst.get("service_time")
    clients = []
    for i in range(1, n + 1):
        if i in depots:
            continue
        c: dict[str, Any] = {"id": i}
        if demand is not None:
            c["demand"] = [float(demand[i - 1])]
        if tw is not None:
            c["tw_early"], c["tw_late"] = float(tw[i - 1][0]), float(tw[i - 1][1])
        if service is not None:
            c["service"] = float(service[i - 1])
        clients.append(c)
    data["clients"] = clients
    vt: dict[str, Any] = {}
    if "capacity" in inst:
        vt["capacity"] = [float(inst["capacity"])]
    if str(inst.get("type", "")).upper().startswith("TSP"):
        vt["count"] = 1
    elif "vehicles" in inst:
        vt["count"] = int(inst["vehicles"])
    data["vehicle_types"] = [vt]
    return parse_spec(data)
