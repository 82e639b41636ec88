"""PyVRP backend for routing specs.

PyVRP works on integers: distances and durations are multiplied by ``RoutingSpec.scale`` and
rounded (travel times rounded up and windows' ends rounded down, so a schedule PyVRP accepts also
holds in the spec's own units). Every edge is set from the full matrices. The objective reported
is PyVRP's own cost, divided by the scale: the verifier recomputes it from the routes with the
unscaled matrices and compares, allowing only for that rounding.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from formalizers.routing.feasibility import features
from formalizers.routing.measure import load_dims, stop_location
from formalizers.routing.spec import RoutingSpec
from solvers.base import Limits, SolveResult, Status, Supports

SUPPORTS = Supports(
    name="pyvrp",
    kinds=("routing",),
    features=frozenset(
        {
            "the total distance objective",
            "the total duration objective",
            "the prize minus cost objective",
            "time windows",
            "service times",
            "prizes",
            "optional clients",
            "client groups",
            "clients with both pickups and deliveries",
            "shipments",
            "reloads",
            "a route distance limit",
            "a route duration limit",
            "fixed vehicle costs",
        }
    ),
    summary="PyVRP's iterated local search on integer-scaled routing specs",
    modules=("pyvrp",),
)
"""What PyVRP expresses (features of ``formalizers.routing.feasibility``): every routing feature
but min-max and bottleneck objectives, visit orders, per-vehicle client restrictions, purchases,
collection quotas, energy limits and depots that must be visited."""

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


def build_data(spec: RoutingSpec) -> Any:
    """The ``pyvrp.ProblemData`` for ``spec``: full integer matrices, every client, depot, group,
    shipment and vehicle type."""
    import pyvrp

    s = spec.scale
    ls = _load_scale(spec)
    dims = load_dims(spec)
    ix = spec.index
    dist, dur = _matrices(spec)
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


def _matrices(spec: RoutingSpec) -> tuple[Any, Any]:
    """PyVRP's integer distance and duration matrices: distances scaled and rounded to the
    nearest integer, durations scaled and rounded up. When the distances are whole numbers at
    scale 1 and travel takes one time unit per distance unit (TSPLIB and VRPLIB files), both
    are the same array, built once: at 5,000 clients each costs a second."""
    s = spec.scale
    d = spec.distances
    if s == 1 and spec.rounding in ("nearest", "ceil"):
        dist: Any = d.astype(np.int64)  # whole numbers already (see RoutingSpec.distances)
    else:
        dist = d * s
        np.rint(dist, out=dist)
        dist = dist.astype(np.int64)
    np.fill_diagonal(dist, 0)
    if spec.durations is d and spec.rounding in ("nearest", "ceil"):
        return dist, dist
    t = spec.durations * s
    t -= 1e-9
    np.ceil(t, out=t)
    dur: Any = t.astype(np.int64)
    np.fill_diagonal(dur, 0)
    return dist, dur


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
                "visits": [stop_location(spec, s) for s in stops if s[0] != "reload"],
            }
        )
    return tuple(out)


AFTER_DISTANCES = 5.0
"""Building PyVRP's data and its neighbourhood take about this many times the distance matrix
(all three quadratic in the clients; measured 2.5x to 4.8x at 5,000 clients, idle to loaded)."""

NEIGHBOURS_PER_BUILD = 5.5
"""PyVRP's granular neighbourhood costs at most about this many times the integer matrices
(both are quadratic in the clients; measured 2x to 5.2x on 300 to 5,000 clients, loaded or not)."""

SEARCH_PER_NEIGHBOURS = 3.5
"""The first, exhaustive local search costs at most about this many times the neighbourhood at
1,000 clients, and relatively less above, as ``(1000 / n) ** SEARCH_SIZE_EXPONENT`` (measured
2.7x to 3.4x at 1,000 and 0.5x to 1.04x at 5,000, the last at load 7)."""

SEARCH_SIZE_EXPONENT = 0.7

QUICK_FIT = 0.7
"""Without time for that first search, the search still starts only while this share of its
estimate is left; else the solve stops with TIMEOUT rather than end late: the search's first
iteration, from a random solution, is an uninterruptible local search that costs about the
estimate or more (0.74 s at 1,000 clients against 0.7 s estimated; 4.25 s at 5,000), so what it
may run over is at most about 30% of the estimate, within the check's reserve and the slack."""

EXHAUSTIVE_ON_BEST = 4.0
"""A new best solution gets another exhaustive search only while more than this many times the
first one's time (and ``EXHAUSTIVE_MARGIN_S``) is left: each is uninterruptible, and on a busy
machine one can take several times the first."""

EXHAUSTIVE_MARGIN_S = 0.2


class _Deadline:
    """Stops PyVRP's search at an absolute time (``time.perf_counter``), whatever ran before the
    search's first iteration (``MaxRuntime`` starts its clock there, after the neighbourhood and
    the first local search). Also turns off the exhaustive search of new best solutions once
    one would no longer fit before the deadline."""

    def __init__(self, at: float, params: Any, exhaustive_s: float) -> None:
        self.at = at
        self.params = params
        self.exhaustive_s = exhaustive_s

    def __call__(self, best_cost: int) -> bool:
        left = self.at - time.perf_counter()
        self.params.exhaustive_on_best = (
            left > EXHAUSTIVE_ON_BEST * self.exhaustive_s + EXHAUSTIVE_MARGIN_S
        )
        return left <= 0


def _timeout(spec: RoutingSpec, elapsed: float, limit: float, why: str) -> SolveResult:
    return SolveResult(
        Status.TIMEOUT,
        "pyvrp",
        time_s=elapsed,
        message=f"no routes within the {limit:g} s limit for {len(spec.clients):,} clients: {why}",
    )


def solve(
    spec: RoutingSpec,
    limits: Limits,
    seed: int = 0,
    no_improvement: int | None = NO_IMPROVEMENT,
    deadline: float | None = None,
) -> SolveResult:
    """Solve ``spec`` with PyVRP's iterated local search, returning by ``deadline`` (a
    ``time.perf_counter`` instant; default ``limits.time_s`` from now): building the integer
    data, the neighbourhood and the first local search count against it, and a step that its
    measured forerunners say would not fit is not started. PyVRP is a heuristic: a solution is
    FEASIBLE, never proven OPTIMAL; finding none is TIMEOUT, since nothing is proven infeasible.

    The objective is PyVRP's own (its integer cost, less the prizes of clients left out, divided
    by ``spec.scale``; for ``prize_minus_cost`` the prizes collected less that cost), not
    recomputed here: the verifier recomputes it. A spec outside ``SUPPORTS`` is ``UNSUPPORTED``,
    naming what PyVRP cannot express."""
    import pyvrp
    from pyvrp.IteratedLocalSearch import IteratedLocalSearch, IteratedLocalSearchParams
    from pyvrp.PenaltyManager import PenaltyManager
    from pyvrp.search import LocalSearch, PerturbationManager, compute_neighbours
    from pyvrp.solve import SolveParams
    from pyvrp.stop import MultipleCriteria, NoImprovement

    refused = SUPPORTS.unsupported(features(spec), spec)
    if refused:
        return SUPPORTS.refuse(refused)
    t0 = time.perf_counter()
    end = t0 + limits.time_s if deadline is None else deadline
    limit = limits.time_s
    if t0 >= end:
        return _timeout(spec, 0.0, limit, "reading and checking the request used it all")
    if spec.compute_distances(deadline=end, rest=AFTER_DISTANCES) is None:
        return _timeout(
            spec,
            time.perf_counter() - t0,
            limit,
            "the distance matrix and the solver's data would not be ready in time (they are "
            "quadratic in the clients)",
        )
    t1 = time.perf_counter()
    data = build_data(spec)
    t_build = time.perf_counter() - t1
    if time.perf_counter() + NEIGHBOURS_PER_BUILD * t_build > end:
        return _timeout(
            spec,
            time.perf_counter() - t0,
            limit,
            f"building the solver's data took {t_build:.2f} s, and its neighbourhood would not "
            "be ready in time",
        )
    params = SolveParams()
    ils = IteratedLocalSearchParams(exhaustive_on_best=True)
    rng = pyvrp.RandomNumberGenerator(seed=seed)
    t1 = time.perf_counter()
    neighbours = compute_neighbours(data, params.neighbourhood)
    t_neighbours = time.perf_counter() - t1
    ls = LocalSearch(data, rng, neighbours, PerturbationManager(params.perturbation))
    for op in params.operators:
        if op.supports(data):
            ls.add_operator(op(data))
    pm = PenaltyManager(params.penalty.midpoint_penalties(data), params.penalty)
    init = pyvrp.Solution.make_random(data, rng)
    n = max(1, len(spec.clients) + len(spec.shipments))
    first_search = (
        SEARCH_PER_NEIGHBOURS * t_neighbours * min(1.0, (1000 / n) ** SEARCH_SIZE_EXPONENT)
    )
    quick = time.perf_counter() + first_search > end
    if quick and time.perf_counter() + QUICK_FIT * first_search > end:
        return _timeout(
            spec,
            time.perf_counter() - t0,
            limit,
            f"the limit left no time for a first local search (about {first_search:.1f} s after "
            f"{time.perf_counter() - t0:.1f} s of building)",
        )
    t_search = 0.0
    if not quick:
        t2 = time.perf_counter()
        init = ls(init, pm.max_cost_evaluator(), exhaustive=True)
        t_search = time.perf_counter() - t2
    stop: Any = _Deadline(end, ils, t_search if not quick else math.inf)
    if no_improvement is not None:
        stop = MultipleCriteria([stop, NoImprovement(no_improvement)])
    result = IteratedLocalSearch(data, pm, ls, init, ils).run(stop, collect_stats=False)
    elapsed = time.perf_counter() - t0
    best = result.best
    if not best.is_feasible():
        why = (
            "the windows, capacities or route limits may be impossible to meet together"
            if not quick
            else f"the limit left no time for a first full local search (about "
            f"{first_search:.1f} s after {time.perf_counter() - t0:.1f} s of building)"
        )
        return _timeout(spec, elapsed, limit, why)
    routes = routes_of(spec, best)
    cost = result.cost()
    if spec.objective == "prize_minus_cost":
        value = (best.prizes() - (cost - best.uncollected_prizes())) / spec.scale
    else:
        value = (cost - best.uncollected_prizes()) / spec.scale
    rough = (
        "; the time allowed no full local search, so the routes may be far from good"
        if quick
        else ""
    )
    return SolveResult(
        Status.FEASIBLE,
        "pyvrp",
        objective=value,
        time_s=elapsed,
        routes=routes,
        message=f"PyVRP (heuristic, not proven optimal) in {elapsed:.2f} s, "
        f"{result.num_iterations} iterations; distances scaled by {spec.scale} to integers" + rough,
    )
