"""Independent check of routes against a routing spec, in the spec's own units.

Trusts neither the solver nor the model: visits, loads, time windows, route limits, fleet size and
the objective are recomputed from the spec and the routes alone, and compared with the objective
the solver reported (its own value: PyVRP's integer cost scaled back, the exact solver's dynamic
program). What a route costs, how long it takes and what it carries are the routing language's
own measures (``formalizers.routing.measure``), which no backend uses for the value it reports.
Routes that are not even well formed (an unknown vehicle type, depot or stop) are reported as
such, never raised.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from typing import Any

import numpy as np

from formalizers.routing.measure import (
    STOP_KINDS,
    TOL,
    energy_overrun,
    places,
    route_objective,
    route_stats,
    stop_data,
    stop_location,
    trip_loads,
    trips,
)
from formalizers.routing.spec import Id, RoutingSpec
from solvers.base import SolveResult, Verification, Violation


def malformed(spec: RoutingSpec, routes: Any) -> list[str]:
    """What makes ``routes`` unreadable against ``spec``, one sentence each (empty: well formed).

    A route is a mapping with a ``vehicle_type`` (an index into the spec's vehicle types), its
    type's ``start`` and ``end`` depots, ``stops`` (``[kind, key]`` pairs naming a client, a
    shipment or a depot of the spec) and ``visits`` (the location of each stop but reloads and
    depot stops, in order: what a plot or a reader of the answer sees)."""
    if not isinstance(routes, tuple | list):
        return ["the routes are not a list"]
    out: list[str] = []
    keys: dict[str, dict[Any, Any]] = {
        "client": spec.client_by_id,
        "pickup": spec.shipment_by_name,
        "delivery": spec.shipment_by_name,
        "reload": spec.depot_by_id,
        "depot": spec.depot_by_id,
    }
    for n, r in enumerate(routes, 1):
        who = f"route {n}"
        if not isinstance(r, dict):
            out.append(f"{who} is not a mapping")
            continue
        k = r.get("vehicle_type")
        if not (
            isinstance(k, int) and not isinstance(k, bool) and 0 <= k < len(spec.vehicle_types)
        ):
            out.append(f"{who} has vehicle type {k!r}, not one of the spec's")
            continue
        for end in ("start", "end"):
            place = r.get(end)
            if not _hashable(place) or place not in spec.depot_by_id:
                out.append(f"{who} has {end} {place!r}, which is not a depot")
        stops = r.get("stops")
        if not isinstance(stops, list | tuple):
            out.append(f"{who} has no list of stops")
            continue
        bad = False
        for s in stops:
            if not (
                isinstance(s, list | tuple)
                and len(s) == 2
                and s[0] in STOP_KINDS
                and _hashable(s[1])
                and s[1] in keys[s[0]]
            ):
                out.append(f"{who} has stop {s!r}, which names nothing in the spec")
                bad = True
        if bad:
            continue
        where = [stop_location(spec, s) for s in stops if s[0] not in ("reload", "depot")]
        if list(r.get("visits", where)) != where:
            out.append(f"{who} lists visits {r.get('visits')!r}, not the places of its stops")
    return out


def _hashable(v: Any) -> bool:
    return isinstance(v, int | str) and not isinstance(v, bool)


def objective_slack(spec: RoutingSpec, routes: tuple[dict[str, Any], ...]) -> float:
    """How far a solver that works on integers may report the objective of ``routes`` from its
    exact value in the spec's units.

    PyVRP is given every distance, fixed cost and prize multiplied by ``spec.scale`` and rounded
    to the nearest integer, and durations and service times rounded up (see
    ``solvers.routing_pyvrp``); its cost, divided by the scale again, is off by at most the sum
    of those roundings over what the routes use. For whole numbers (``nearest`` or ``ceil``
    rounding, scale 1) that is 0: a claim one unit off is caught."""
    s = spec.scale
    by_time = spec.objective == "total_duration"
    slack = 0.0
    for r in routes:
        rows = [spec.index[x] for x in places(spec, r)]
        a, b = np.asarray(rows[:-1], dtype=int), np.asarray(rows[1:], dtype=int)
        if by_time:
            t = spec.durations[a, b] * s
            slack += float((np.ceil(t - 1e-9) - t).sum())
            service = np.asarray([stop_data(spec, x)[3] for x in r["stops"]], dtype=float) * s
            slack += float((np.ceil(service - 1e-9) - service).sum())
            windows = any(
                stop_data(spec, x)[1] or stop_data(spec, x)[2] != math.inf for x in r["stops"]
            )
            slack += len(r["stops"]) + 1 if windows else 0.0  # waiting, to scaled windows
        else:
            d = spec.distances[a, b] * s
            slack += float(np.abs(np.rint(d) - d).sum())
        fixed = spec.vehicle_types[r["vehicle_type"]].fixed_cost * s
        slack += abs(round(fixed) - fixed)
    prizes = np.asarray(
        [c.prize for c in spec.clients] + [x.prize for x in spec.shipments], dtype=float
    )
    slack += float(np.abs(np.rint(prizes * s) - prizes * s).sum())
    return slack / s


def verify_routes(
    spec: RoutingSpec, result: SolveResult, deadline: float | None = None
) -> Verification:
    """Recompute everything about ``result.routes`` from ``spec``; ``ok`` only when every check
    holds and the claimed objective matches the recomputed one. Past ``deadline`` (a
    ``time.perf_counter`` instant) the check stops and is inconclusive: not verified, but
    nothing found wrong either."""
    routes = result.routes or ()
    viol: list[Violation] = []
    checked = 0
    slack = 0.5 / spec.scale if spec.rounding == "none" else 0.0

    def bad(name: str, amount: float, detail: str) -> None:
        viol.append(Violation(name, float(amount), detail))

    broken = malformed(spec, routes)
    if broken:
        found = tuple(Violation("routes", 1.0, b) for b in broken)
        return Verification(
            False,
            len(found),
            1.0,
            None,
            found,
            f"{len(found)} route problem(s): " + "; ".join(broken[:5]),
        )
    # Visits.
    visits: Counter[tuple[str, Id]] = Counter()
    for r in routes:
        for s in r["stops"]:
            visits[(s[0], s[1])] += 1
    for c in spec.clients:
        checked += 1
        n = visits[("client", c.id)]
        if c.required and c.group is None and n != 1:
            bad(f"client {c.id!r}", abs(n - 1), f"required client {c.id!r} is visited {n} times")
        elif n > 1:
            bad(f"client {c.id!r}", n - 1, f"client {c.id!r} is visited {n} times")
    for g in spec.groups:
        checked += 1
        n = sum(visits[("client", c.id)] for c in spec.clients if c.group == g.name)
        if (g.required and n != 1) or n > 1:
            bad(f"group {g.name!r}", abs(n - 1), f"group {g.name!r} has {n} clients visited")
    for s in spec.shipments:
        checked += 1
        p, q = visits[("pickup", s.name)], visits[("delivery", s.name)]
        if p != q or p > 1 or (s.required and p != 1):
            bad(f"shipment {s.name!r}", 1, f"shipment {s.name!r}: {p} pickups, {q} deliveries")
    if spec.min_collect is not None:
        checked += 1
        got = [0.0] * len(spec.min_collect)
        for c in spec.clients:
            if visits[("client", c.id)] and c.pickup:
                got = [a + b for a, b in zip(got, c.pickup, strict=False)]
        short = max((need - a for need, a in zip(spec.min_collect, got, strict=True)), default=0.0)
        if short > TOL:
            bad("min_collect", short, f"the routes collect {got}, short of {spec.min_collect}")
    depot_seen = {r[k] for r in routes for k in ("start", "end")}
    depot_seen |= {s[1] for r in routes for s in r["stops"] if s[0] in ("depot", "reload")}
    for dp in spec.depots:
        if dp.required:
            checked += 1
            if dp.id not in depot_seen:
                bad(f"depot {dp.id!r}", 1, f"required depot {dp.id!r} is visited by no route")
    # Fleet size.
    used = Counter(r["vehicle_type"] for r in routes)
    for k, v in enumerate(spec.vehicle_types):
        checked += 1
        if v.count is not None and used[k] > v.count:
            bad(
                spec.vehicle_name(k),
                used[k] - v.count,
                f"{used[k]} routes use {spec.vehicle_name(k)}, of which there are {v.count}",
            )
    # Per route: depots, loads, windows, limits.
    clients = {c.id: c for c in spec.clients}
    depot_ids = {dp.id for dp in spec.depots}
    for n_route, r in enumerate(routes, 1):
        if deadline is not None and time.perf_counter() > deadline:
            return Verification(
                False,
                checked,
                0.0,
                None,
                tuple(viol),
                f"the check ran out of its time after {n_route - 1} of {len(routes)} routes",
                conclusive=False,
            )
        v = spec.vehicle_types[r["vehicle_type"]]
        who = f"route {n_route} ({r['vehicle']})"
        checked += 1
        if r["start"] != spec.start_of(v) or r["end"] != spec.end_of(v):
            bad(who, 1, f"{who} starts or ends at the wrong depot")
        for s in r["stops"]:
            if s[0] == "reload" and s[1] not in v.reload_depots:
                bad(who, 1, f"{who} reloads at {s[1]!r}, not one of its reload depots")
        route_trips = trips(r)
        if v.max_reloads is not None and len(route_trips) - 1 > v.max_reloads:
            bad(who, len(route_trips) - 1 - v.max_reloads, f"{who} reloads too often")
        on_route = [s[1] for s in r["stops"] if s[0] == "client"]
        if v.allowed_clients is not None:
            for c in on_route:
                if c not in v.allowed_clients:
                    bad(who, 1, f"{who} visits client {c!r}, which it may not serve")
        for seq in spec.sequences:
            here = [c for c in on_route if c in seq]
            if here != [c for c in seq if c in here]:
                bad(who, 1, f"{who} visits {here} out of the required order {seq}")
        picked: set[str] = set()
        for s in r["stops"]:
            if s[0] == "pickup":
                picked.add(s[1])
            elif s[0] == "delivery" and s[1] not in picked:
                bad(who, 1, f"{who} delivers shipment {s[1]!r} before picking it up")
        if v.capacity:
            for trip in route_trips:
                points = trip_loads(spec, trip, len(v.capacity))
                over = max(
                    (x - q for pt in points for x, q in zip(pt, v.capacity, strict=True)),
                    default=0.0,
                )
                checked += 1
                if over > TOL:
                    bad(who, over, f"{who} carries {over:g} more than its capacity {v.capacity}")
        if any(s[1] not in clients for s in r["stops"] if s[0] == "client"):
            continue
        if any(s[0] == "depot" and s[1] not in depot_ids for s in r["stops"]):
            continue
        if v.max_distance_between_recharges is not None:
            checked += 1
            over = energy_overrun(spec, r)
            if over is not None:
                bad(
                    who,
                    over[0] - v.max_distance_between_recharges,
                    f"{who} travels {over[0]:g} from {over[1]} to {over[2]} without recharging, "
                    f"over its energy {v.max_distance_between_recharges:g}",
                )
        st = route_stats(spec, r)
        checked += 1
        for label, amount in st.late:
            bad(who, amount, f"{who} reaches {label} {amount:.4g} after its time window closes")
        if v.max_distance is not None and st.distance > v.max_distance + TOL + slack * st.arcs:
            bad(
                who,
                st.distance - v.max_distance,
                f"{who} is {st.distance:g} long, over {v.max_distance:g}",
            )
        if v.max_duration is not None and st.duration > v.max_duration + TOL + slack * st.arcs:
            bad(
                who,
                st.duration - v.max_duration,
                f"{who} takes {st.duration:g}, over {v.max_duration:g}",
            )
    objective = route_objective(spec, routes)
    if objective is not None and not math.isfinite(objective):
        checked += 1
        bad(
            "objective",
            1.0,
            f"the recomputed objective is {objective}, not a finite number (check the "
            "coordinates, distances and speed)",
        )
    elif result.objective is not None and not math.isfinite(result.objective):
        checked += 1
        bad("objective", 1.0, f"the claimed objective is {result.objective}, not a finite number")
    elif result.objective is None:
        checked += 1
        bad("objective", 1.0, f"{result.solver or 'the solver'} reported no objective value")
    else:
        # The claim is the solver's own value; it may differ from ours by the solver's rounding
        # to integers (``objective_slack``) and floating-point noise, no more.
        checked += 1
        allowed = TOL * max(1.0, abs(objective)) + objective_slack(spec, routes)
        if abs(objective - result.objective) > allowed:
            bad(
                "objective",
                abs(objective - result.objective),
                f"the claimed objective {result.objective:g} differs from the recomputed "
                f"{objective:g} (by more than the {allowed:.3g} that rounding to the solver's "
                "integers allows)",
            )
    ok = not viol
    n_req = sum(1 for c in spec.clients if c.required and c.group is None)
    message = (
        f"{len(routes)} route(s) visit every required client ({n_req}) the right number of times, "
        "within capacity, time windows and route limits; the objective is as claimed"
        if ok
        else f"{len(viol)} violation(s): " + "; ".join(v.detail for v in viol[:5])
    )
    return Verification(
        ok, checked, max((v.amount for v in viol), default=0.0), objective, tuple(viol), message
    )
