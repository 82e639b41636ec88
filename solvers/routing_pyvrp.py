"""PyVRP backend for routing specs.

PyVRP works on integers: distances and durations are multiplied by ``RoutingSpec.scale`` and
rounded (travel times rounded up and windows' ends rounded down, so a schedule PyVRP accepts also
holds in the spec's own units). Every edge is set from the full matrices. Costs are reported in the
spec's units, recomputed from the routes with the unscaled matrices.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from formalizers.routing.spec import RoutingSpec
from solvers.base import Limits, SolveResult, Status

INT_MAX = 2**62
"""Stands for "no limit" in PyVRP's integer fields (its own default is 2**63 - 1)."""

NO_IMPROVEMENT = 20_000
"""Iterations without improvement after which the search stops early (None: use the whole budget)."""


def _ceil(v: float, scale: int) -> int:
    return int(math.ceil(v * scale - 1e-9))


def _floor(v: float | None, scale: int) -> int:
    return INT_MAX if v is None else int(math.floor(v * scale + 1e-9))


def _load_scale(spec: RoutingSpec) -> int:
    """1 when every load is whole; else 1000 (loads kept to three decimals)."""
    values = [x for c in spec.clients for x in (*c.demand, *c.pickup)]
    values += [x for s in spec.shipments for x in s.amount]
    values += [x for v in spec.vehicle_types for x in v.capacity]
    return 1 if all(float(x).is_integer() for x in values) else 1000


def _loads(values: list[float], scale: int, dims: int, up: bool = True) -> list[int]:
    if not values:
        return [0] * dims
    return [
        int(math.ceil(x * scale - 1e-9)) if up else int(math.floor(x * scale + 1e-9))
        for x in values
    ]


def dims_of(spec: RoutingSpec) -> int:
    """Number of load dimensions (0 when nothing has a load)."""
    lens = [len(c.demand) or len(c.pickup) for c in spec.clients]
    lens += [len(s.amount) for s in spec.shipments] + [len(v.capacity) for v in spec.vehicle_types]
    return max(lens, default=0)


def build_data(spec: RoutingSpec) -> Any:
    """The ``pyvrp.ProblemData`` for ``spec``: full integer matrices, every client, depot, group,
    shipment and vehicle type."""
    import pyvrp

    s = spec.scale
    ls = _load_scale(spec)
    dims = dims_of(spec)
    ix = spec.index
    dist: Any = np.rint(spec.distances * s).astype(np.int64)
    dur: Any = np.ceil(spec.durations * s - 1e-9).astype(np.int64)
    np.fill_diagonal(dist, 0)
    np.fill_diagonal(dur, 0)
    locations = [pyvrp.Location(loc.x or 0.0, loc.y or 0.0) for loc in spec.locations]
    depot_ix = {d.id: k for k, d in enumerate(spec.depots)}
    depots = [
        pyvrp.Depot(ix[d.id], tw_early=_ceil(d.tw_early, s), tw_late=_floor(d.tw_late, s))
        for d in spec.depots
    ]
    group_names = [g.name for g in spec.groups]
    objective = spec.objective
    clients = [
        pyvrp.Client(
            ix[c.id],
            delivery=_loads(c.demand, ls, dims),
            pickup=_loads(c.pickup, ls, dims),
            service_duration=_ceil(c.service, s),
            tw_early=_ceil(c.tw_early, s),
            tw_late=_floor(c.tw_late, s),
            prize=int(round(c.prize * s)),
            required=c.required and c.group is None,
            group=group_names.index(c.group) if c.group is not None else None,
            name=str(c.id),
        )
        for c in spec.clients
    ]
    groups = [
        pyvrp.ClientGroup(
            [i for i, c in enumerate(spec.clients) if c.group == g.name],
            required=g.required,
            name=g.name,
        )
        for g in spec.groups
    ]
    shipments = []
    for sh in spec.shipments:
        ptw = sh.pickup_tw or (0.0, None)
        dtw = sh.delivery_tw or (0.0, None)
        shipments.append(
            pyvrp.Shipment(
                ix[sh.pickup],
                ix[sh.delivery],
                pickup_tw_early=_ceil(ptw[0] or 0.0, s),
                pickup_tw_late=_floor(ptw[1], s),
                pickup_service_duration=_ceil(sh.pickup_service, s),
                delivery_tw_early=_ceil(dtw[0] or 0.0, s),
                delivery_tw_late=_floor(dtw[1], s),
                delivery_service_duration=_ceil(sh.delivery_service, s),
                amount=_loads(sh.amount, ls, dims),
                prize=int(round(sh.prize * s)),
                required=sh.required,
                name=sh.name,
            )
        )
    n_jobs = len(spec.clients) + len(spec.shipments)
    vehicle_types = []
    for k, v in enumerate(spec.vehicle_types):
        by_time = objective == "total_duration"
        vehicle_types.append(
            pyvrp.VehicleType(
                # Each route PyVRP uses serves a client or a shipment: more vehicles than jobs
                # would only make it reserve room for routes that stay empty.
                num_available=min(v.count, max(1, n_jobs))
                if v.count is not None
                else max(1, n_jobs),
                capacity=_loads(v.capacity, ls, dims, up=False) if v.capacity else [INT_MAX] * dims,
                start_depot=depot_ix[spec.start_of(v)],
                end_depot=depot_ix[spec.end_of(v)],
                fixed_cost=int(round(v.fixed_cost * s)),
                tw_early=_ceil(v.tw_early, s),
                tw_late=_floor(v.tw_late, s),
                shift_duration=_floor(v.max_duration, s),
                max_distance=_floor(v.max_distance, s),
                unit_distance_cost=0 if by_time else 1,
                unit_duration_cost=1 if by_time else 0,
                reload_depots=[depot_ix[d] for d in v.reload_depots],
                max_reloads=v.max_reloads if v.max_reloads is not None else 2**32,
                name=spec.vehicle_name(k),
            )
        )
    return pyvrp.ProblemData(
        locations, clients, depots, vehicle_types, [dist], [dur], groups, shipments
    )


def routes_of(spec: RoutingSpec, solution: Any) -> tuple[dict[str, Any], ...]:
    """A PyVRP solution's routes in the spec's terms (see ``SolveResult.routes``)."""
    out = []
    for route in solution.routes():
        v = spec.vehicle_types[route.vehicle_type()]
        stops: list[list[Any]] = []
        acts = list(route)
        for a in acts[1:-1]:
            if a.is_depot():
                stops.append(["reload", spec.depots[a.idx].id])
            elif a.is_pickup():
                stops.append(["pickup", spec.shipments[a.idx].name])
            elif a.is_delivery():
                stops.append(["delivery", spec.shipments[a.idx].name])
            else:
                stops.append(["client", spec.clients[a.idx].id])
        out.append(
            {
                "vehicle": spec.vehicle_name(route.vehicle_type()),
                "vehicle_type": route.vehicle_type(),
                "start": spec.start_of(v),
                "end": spec.end_of(v),
                "stops": stops,
                "visits": [_location_of(spec, s) for s in stops if s[0] != "reload"],
            }
        )
    return tuple(out)


def _location_of(spec: RoutingSpec, stop: list[Any]) -> Any:
    """The location id of a stop (a shipment's pickup or delivery place)."""
    if stop[0] in ("pickup", "delivery"):
        sh = next(s for s in spec.shipments if s.name == stop[1])
        return sh.pickup if stop[0] == "pickup" else sh.delivery
    return stop[1]


def solve(
    spec: RoutingSpec,
    limits: Limits,
    seed: int = 0,
    no_improvement: int | None = NO_IMPROVEMENT,
) -> SolveResult:
    """Solve ``spec`` with PyVRP's iterated local search within ``limits.time_s`` (wall clock,
    model building included). PyVRP is a heuristic: a solution is FEASIBLE, never proven OPTIMAL;
    finding none is TIMEOUT, since nothing is proven infeasible."""
    import pyvrp
    from pyvrp.stop import MaxRuntime, MultipleCriteria, NoImprovement

    from solvers.routing_exact import exact_features, uses_energy
    from solvers.routing_verify import route_objective

    if uses_energy(spec):
        return SolveResult(
            Status.ERROR,
            "pyvrp",
            message=f"PyVRP cannot express {' and '.join(exact_features(spec))}; "
            "solve this spec with solvers.routing_exact",
        )
    t0 = time.perf_counter()
    data = build_data(spec)
    budget = max(0.01, limits.time_s - (time.perf_counter() - t0))
    stop: Any = MaxRuntime(budget)
    if no_improvement is not None:
        stop = MultipleCriteria([stop, NoImprovement(no_improvement)])
    result = pyvrp.solve(data, stop, seed=seed, collect_stats=False, display=False)
    elapsed = time.perf_counter() - t0
    best = result.best
    if not best.is_feasible():
        return SolveResult(
            Status.TIMEOUT,
            "pyvrp",
            time_s=elapsed,
            message=f"PyVRP found no feasible routes within {limits.time_s:g} s (the windows, "
            "capacities or route limits may be impossible to meet together)",
        )
    routes = routes_of(spec, best)
    return SolveResult(
        Status.FEASIBLE,
        "pyvrp",
        objective=route_objective(spec, routes),
        time_s=elapsed,
        routes=routes,
        message=f"PyVRP (heuristic, not proven optimal) in {elapsed:.2f} s, "
        f"{result.num_iterations} iterations; distances scaled by {spec.scale} to integers",
    )
