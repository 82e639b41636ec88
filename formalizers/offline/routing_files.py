"""Routing instances given as files: VRPLIB (CVRPLIB, with time windows), TSPLIB and Solomon.

Each becomes a ``RoutingSpec`` whose location ids are the file's node numbers, with the file's own
distance convention (TSPLIB/VRPLIB ``EUC_2D``: each distance rounded to the nearest integer;
``CEIL_2D`` rounded up; ``GEO`` and ``ATT`` by TSPLIB's formulas; Solomon: the DIMACS convention,
truncated to one decimal, as the published best-known solutions).

A VRPLIB file is read only as far as every key and section it holds is either descriptive (a name,
a comment, display coordinates) or a constraint that the solver and the verifier both enforce:
``DISTANCE`` (CVRPLIB's route limit: a route's length plus its clients' service times) and
``SERVICE_TIME`` (one number for every client, or a ``SERVICE_TIME_SECTION``) included. Anything
else is refused by name, since solving without it would answer another problem.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import numpy as np

from agent.errors import ArtifactError, Diagnostic, InputError
from formalizers.routing.spec import MAX_CLIENTS, MAX_LOCATIONS, RoutingSpec, parse_spec

ROUTING_SUFFIXES = (".vrp", ".tsp", ".vrptw")
"""File names read as VRPLIB/TSPLIB whatever they hold."""

_ROUNDING = {"EUC_2D": "nearest", "CEIL_2D": "ceil"}

_SPECIFICATIONS = {
    # Descriptive: they constrain nothing.
    "name",
    "comment",
    "type",
    "node_coord_type",
    "display_data_type",
    # Read, and enforced by the solver and the verifier.
    "dimension",
    "capacity",
    "edge_weight_type",
    "edge_weight_format",
    "vehicles",
    "distance",
    "service_time",
}
"""The ``KEY : value`` lines this reader knows; any other is refused."""

_SECTIONS = {
    "node_coord",
    "demand",
    "depot",
    "edge_weight",
    "time_window",
    "service_time",
    "display_data",  # coordinates for drawing only
}
"""The data sections this reader knows; any other is refused."""

_TYPES = ("TSP", "ATSP", "CVRP", "VRPTW", "CVRPTW")
"""Problem ``TYPE`` values read (others, such as an open VRP, change what a route is)."""

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


_EDGE_FORMATS = {
    # format -> (the lower triangle?, with the diagonal?); a COL format of a symmetric matrix
    # lists the same entries in the same order as the ROW format of the other triangle.
    "LOWER_ROW": (True, False),
    "UPPER_COL": (True, False),
    "UPPER_ROW": (False, False),
    "LOWER_COL": (False, False),
    "LOWER_DIAG_ROW": (True, True),
    "UPPER_DIAG_COL": (True, True),
    "UPPER_DIAG_ROW": (False, True),
    "LOWER_DIAG_COL": (False, True),
}

_ROW_WIDTH = {
    "node_coord": (3, 3),
    "demand": (2, 1000),
    "time_window": (3, 3),
    "service_time": (2, 2),
}
"""Per-node sections read here: (fewest, most) numbers on a row, the node number included."""

_ROW_SHAPE = {
    "node_coord": "a node number and two coordinates",
    "demand": "a node number and its demand",
    "time_window": "a node number and a window's start and end",
    "service_time": "a node number and a service time",
}


def _numbers(section: list[str]) -> list[list[float]]:
    """The rows of a data section as numbers; ``InputError`` naming the section and row of the
    first value that is not a finite number."""
    title = section[0].strip(" :").upper()
    rows = []
    for k, line in enumerate(section[1:], 1):
        try:
            row = [float(tok) for tok in line.split()]
        except ValueError:
            row = []
        if not row or not all(math.isfinite(v) for v in row):
            shown = line if len(line) <= 60 else line[:57] + "..."
            raise InputError(f"{title}, row {k} ({shown!r}): every value must be a finite number")
        rows.append(row)
    return rows


def _edge_weights(values: list[float], fmt: str, n: int) -> np.ndarray:
    """The n-by-n matrix of an EXPLICIT ``EDGE_WEIGHT_SECTION``, read as one stream of values
    (TSPLIB lets a file wrap its rows anywhere)."""
    if fmt == "FULL_MATRIX":
        expected = n * n
    elif fmt in _EDGE_FORMATS:
        diag = _EDGE_FORMATS[fmt][1]
        expected = n * (n + 1) // 2 if diag else n * (n - 1) // 2
    else:
        known = ", ".join(["FULL_MATRIX", *_EDGE_FORMATS])
        raise InputError(f"EDGE_WEIGHT_FORMAT {fmt or '(missing)'} is not supported ({known} are)")
    if len(values) != expected:
        raise InputError(
            f"EDGE_WEIGHT_SECTION has {len(values):,} values, but EDGE_WEIGHT_FORMAT {fmt} with "
            f"DIMENSION {n:,} needs {expected:,}"
        )
    data = np.asarray(values, dtype=float)
    if fmt == "FULL_MATRIX":
        return data.reshape(n, n)
    lower, diag = _EDGE_FORMATS[fmt]
    m = np.zeros((n, n))
    rows, cols = (np.tril_indices if lower else np.triu_indices)(
        n, 0 if diag else (-1 if lower else 1)
    )
    m[rows, cols] = data
    m[cols, rows] = data
    return m


def _read_vrplib(text: str) -> dict[str, Any]:
    """The specifications and sections of a VRPLIB/TSPLIB file, with vrplib's own reader for the
    layout and the per-node sections; every value checked to be a finite number, naming the row
    that is not. ``edge_weight`` is left as the flat list of its values."""
    from vrplib.parse.parse_utils import text2lines
    from vrplib.parse.parse_vrplib import (
        group_specifications_and_sections,
        parse_section,
        parse_specification,
    )

    try:
        specs, sections = group_specifications_and_sections(text2lines(text))
        inst: dict[str, Any] = dict(parse_specification(line) for line in specs)
    except Exception as e:  # the reader raises bare ValueError/RuntimeError on malformed files
        raise InputError(f"not a readable VRPLIB/TSPLIB file: {e}") from e
    unknown = [key.upper() for key in inst if key not in _SPECIFICATIONS]
    if unknown:
        raise InputError(
            f"{', '.join(unknown)} is not something this reader enforces, and solving without it "
            f"would answer another problem (known: {', '.join(sorted(k.upper() for k in _SPECIFICATIONS))})"
        )
    for section in sections:
        title = section[0].strip(" :").upper()
        name = title.removesuffix("_SECTION").lower()
        if name in inst:
            raise InputError(f"{title} appears twice, or also as a specification")
        if name not in _SECTIONS:
            raise InputError(
                f"{title} is not a section this reader enforces, and solving without it would "
                f"answer another problem (known: "
                f"{', '.join(sorted(k.upper() + '_SECTION' for k in _SECTIONS))})"
            )
        if name == "display_data":
            continue  # coordinates for drawing: they constrain nothing
        rows = _numbers(section)
        if name == "edge_weight":
            inst[name] = [v for row in rows for v in row]
            continue
        if name == "depot":
            inst[name] = [v for row in rows for v in row]
            continue
        low, high = _ROW_WIDTH[name]
        for k, row in enumerate(rows, 1):
            if not low <= len(row) <= high:
                raise InputError(f"{title}, row {k} ({section[k]!r}): expected {_ROW_SHAPE[name]}")
        try:
            inst[name] = parse_section(section, inst)[1]
        except Exception as e:
            raise InputError(f"{title} is not readable: {e}") from e
    return inst


def _from_vrplib(text: str) -> RoutingSpec:
    inst = _read_vrplib(text)
    ewt = str(inst.get("edge_weight_type", "EUC_2D")).upper()
    kind = str(inst.get("type", "")).upper()
    if kind and kind not in _TYPES:
        raise InputError(
            f"TYPE {kind} is not supported ({', '.join(_TYPES)} are): its routes may not be "
            "closed tours from the depot with capacities, limits and windows, which is all this "
            "reader enforces"
        )
    coords = inst.get("node_coord")
    dim = inst.get("dimension")
    if dim is None and coords is not None:
        dim = len(coords)
    if isinstance(dim, float) and dim.is_integer():
        dim = int(dim)
    if not isinstance(dim, int) or dim < 1:
        raise InputError(f"DIMENSION must be a whole number of nodes, at least 1; it is {dim!r}")
    n = dim
    if n > MAX_LOCATIONS:
        raise InputError(
            f"DIMENSION {n:,} is more than this service solves: at most {MAX_LOCATIONS:,} nodes"
        )
    for name in _ROW_WIDTH:
        if name in inst and not np.isscalar(inst[name]) and len(inst[name]) != n:
            raise InputError(
                f"DIMENSION is {n:,} but {name.upper()}_SECTION has {len(inst[name]):,} rows; "
                "give one row per node"
            )
    raw_depots = inst.get("depot", [1.0])
    depots: list[int] = []
    for v in raw_depots:
        if v == -1:
            break
        if not (v.is_integer() and 1 <= v <= n):
            raise InputError(f"DEPOT_SECTION names node {v:g}, which is not a node 1..{n:,}")
        depots.append(int(v))
    if not depots:
        raise InputError("DEPOT_SECTION names no depot")
    if len(set(depots)) > 1:
        raise InputError(
            f"DEPOT_SECTION names {len(set(depots))} depots; this reader takes one (a file "
            "does not say which vehicles start where)"
        )
    depot = depots[0]
    if n - 1 > MAX_CLIENTS:
        raise InputError(
            f"{n - 1:,} clients is more than this service solves: at most {MAX_CLIENTS:,}"
        )
    data: dict[str, Any] = {"name": str(inst.get("name", ""))}
    fmt = str(inst.get("edge_weight_format", "")).upper()
    if ewt != "EXPLICIT" and fmt not in ("", "FUNCTION"):
        raise InputError(
            f"EDGE_WEIGHT_FORMAT {fmt} does not go with EDGE_WEIGHT_TYPE {ewt} (FUNCTION does)"
        )
    if ewt in _ROUNDING:
        if coords is None:
            raise InputError(f"EDGE_WEIGHT_TYPE {ewt} needs a NODE_COORD_SECTION; there is none")
        data["rounding"] = _ROUNDING[ewt]
        data["locations"] = [
            {"id": i + 1, "x": float(x), "y": float(y)} for i, (x, y) in enumerate(coords)
        ]
    elif ewt in _FORMULAS:
        if coords is None:
            raise InputError(f"EDGE_WEIGHT_TYPE {ewt} needs a NODE_COORD_SECTION; there is none")
        xy = np.asarray(coords, dtype=float)
        data["distance_matrix"] = _FORMULAS[ewt](xy).tolist()
        data["rounding"] = "nearest"  # whole numbers already: scale 1 for the solver
        data["locations"] = [
            {"id": i + 1, "x": float(x), "y": float(y)} for i, (x, y) in enumerate(coords)
        ]
    elif ewt == "EXPLICIT":
        if "edge_weight" not in inst:
            raise InputError(
                "EDGE_WEIGHT_TYPE EXPLICIT needs an EDGE_WEIGHT_SECTION; there is none"
            )
        matrix = _edge_weights(inst["edge_weight"], fmt, n)
        data["distance_matrix"] = matrix.tolist()
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
            f"EDGE_WEIGHT_TYPE {ewt} is not supported yet (EUC_2D, CEIL_2D, GEO, ATT and "
            "EXPLICIT are)"
        )
    demand = inst.get("demand")
    tw = inst.get("time_window")
    service = _service_times(inst.get("service_time"), n, depot)
    if demand is not None and any(v != 0 for v in np.atleast_1d(demand[depot - 1])):
        raise InputError(
            f"DEMAND_SECTION gives the depot (node {depot}) a demand; a depot has none here"
        )
    if service is not None and service[depot - 1] != 0:
        raise InputError(
            f"SERVICE_TIME_SECTION gives the depot (node {depot}) a service time; a depot "
            "has none here"
        )
    dep: dict[str, Any] = {"id": depot}
    if tw is not None:
        # The depot's window is the horizon: routes leave and return within it.
        dep["tw_early"], dep["tw_late"] = float(tw[depot - 1][0]), float(tw[depot - 1][1])
    data["depots"] = [dep]
    clients = []
    for i in range(1, n + 1):
        if i == depot:
            continue
        c: dict[str, Any] = {"id": i}
        if demand is not None:
            c["demand"] = [float(v) for v in np.atleast_1d(demand[i - 1])]
        if tw is not None:
            c["tw_early"], c["tw_late"] = float(tw[i - 1][0]), float(tw[i - 1][1])
        if service is not None:
            c["service"] = float(service[i - 1])
        clients.append(c)
    data["clients"] = clients
    vt: dict[str, Any] = {}
    if "capacity" in inst:
        vt["capacity"] = [_finite(inst["capacity"], "CAPACITY")]
    vehicles = None
    if "vehicles" in inst:
        vehicles = _finite(inst["vehicles"], "VEHICLES")
        if not vehicles.is_integer():
            raise InputError(f"VEHICLES must be a whole number; it is {vehicles:g}")
    if kind in ("TSP", "ATSP"):
        if vehicles not in (None, 1):
            raise InputError(f"TYPE {kind} has one vehicle, but VEHICLES is {vehicles:g}")
        vt["count"] = 1
    elif vehicles is not None:
        vt["count"] = int(vehicles)
    if "distance" in inst:
        limit = _finite(inst["distance"], "DISTANCE")
        if limit <= 0:
            raise InputError(f"DISTANCE (the route length limit) must be positive; it is {limit:g}")
        if service is None or not any(service):
            vt["max_distance"] = limit
        elif tw is not None:
            raise InputError(
                "DISTANCE with service times and a TIME_WINDOW_SECTION is not supported: "
                "CVRPLIB's limit counts a route's length and service times, but a route with "
                "time windows may also wait, and no solver here limits length plus service "
                "alone"
            )
        else:
            # CVRPLIB: a route's length plus its clients' service times is at most DISTANCE.
            # Travel times equal distances (speed 1) and nothing waits without windows, so
            # that is the route's duration.
            vt["max_duration"] = limit
    data["vehicle_types"] = [vt]
    return parse_spec(data)


def _service_times(value: Any, n: int, depot: int) -> list[float] | None:
    """Each node's service time from ``SERVICE_TIME`` (one number for every client, none at the
    depot) or a ``SERVICE_TIME_SECTION`` (one per node); None when the file has neither."""
    if value is None:
        return None
    if np.isscalar(value):
        t = _finite(value, "SERVICE_TIME")
        if t < 0:
            raise InputError(f"SERVICE_TIME must be zero or more; it is {t:g}")
        return [0.0 if i == depot else t for i in range(1, n + 1)]
    times = [float(v) for v in np.asarray(value, dtype=float).reshape(-1)]
    bad = [k for k, t in enumerate(times, 1) if t < 0]
    if bad:
        raise InputError(f"SERVICE_TIME_SECTION gives node {bad[0]} a negative service time")
    return times


_TSPLIB_PI = 3.141592
"""TSPLIB's own value of pi for GEO coordinates (its published optima use it)."""

_EARTH_RADIUS = 6378.388
"""TSPLIB's earth radius for GEO distances, in kilometres."""


def _geo(xy: np.ndarray) -> np.ndarray:
    """TSPLIB ``GEO``: coordinates are latitude and longitude as DDD.MM (degrees, then minutes
    after the point); distances are whole kilometres, ``int(RRR * acos(...) + 1)``."""

    def radians(v: np.ndarray) -> np.ndarray:
        deg = np.trunc(v)
        return _TSPLIB_PI * (deg + 5.0 * (v - deg) / 3.0) / 180.0

    lat, lon = radians(xy[:, 0]), radians(xy[:, 1])
    q1 = np.cos(lon[:, None] - lon[None, :])
    q2 = np.cos(lat[:, None] - lat[None, :])
    q3 = np.cos(lat[:, None] + lat[None, :])
    arc = np.arccos(np.clip(0.5 * ((1.0 + q1) * q2 - (1.0 - q1) * q3), -1.0, 1.0))
    d = np.trunc(_EARTH_RADIUS * arc + 1.0)
    np.fill_diagonal(d, 0.0)
    return d


def _att(xy: np.ndarray) -> np.ndarray:
    """TSPLIB ``ATT`` (pseudo-Euclidean): ``r = sqrt((dx² + dy²) / 10)``, rounded to the nearest
    integer and up by one where that fell below ``r``."""
    diff = xy[:, None, :] - xy[None, :, :]
    r = np.sqrt((diff**2).sum(axis=-1) / 10.0)
    t = np.floor(r + 0.5)
    d = np.where(t < r, t + 1.0, t)
    np.fill_diagonal(d, 0.0)
    return d


_FORMULAS = {"GEO": _geo, "ATT": _att}
"""TSPLIB edge weight types computed here into a matrix of whole numbers."""


def _finite(value: Any, key: str) -> float:
    """A specification's value as a finite number, or ``InputError`` naming the key."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = math.nan
    if not math.isfinite(v):
        raise InputError(f"{key} must be a finite number; it is {value!r}")
    return v
