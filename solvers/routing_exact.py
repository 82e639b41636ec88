"""Exact solver for small routing specs, chiefly with what PyVRP cannot express.

Objectives ``longest_route`` (min-max: the longest route's distance as small as possible) and
``longest_leg`` (bottleneck: the longest single leg as small as possible), and ``total_distance``
with visit orders (``sequences``) or vehicles restricted to some clients (``allowed_clients``), over
at most ``MAX_CLIENTS`` clients and ``MAX_VEHICLES`` vehicles; time windows are kept (waiting
allowed), and so are client groups (exactly one client of each); shipments and reloads are not
(``SUPPORTS`` declares what it takes; the routing kind gives it the specs PyVRP's declaration
refuses). Held-Karp dynamic programming (with labels of cost and time when there are windows)
gives each vehicle's best route through each subset of clients; a second dynamic program hands
the subsets out to the vehicles. The result is proven optimal, and the objective reported is the
dynamic program's own value: the verifier (``solvers.routing_verify``) recomputes it.

Energy limits with recharging (``max_distance_between_recharges``) and depots that must be visited
(``Depot.required``) are solved by a label-setting search instead (``_EnergyRoutes``): a route may
pass through recharge depots any number of times, so its states are (clients and required depots
visited so far, current place) with Pareto labels of (cost, energy used since the last recharge,
time, distance). Required depots are extra bits of the subsets; since several routes may visit
the same depot, each route's cost is taken over every route visiting at least its depots. The
same search solves ``longest_leg`` with a ``max_distance``, since it keeps each route's distance.
"""

from __future__ import annotations

import math
import time
from typing import Any

from formalizers.routing.feasibility import features, required_depots
from formalizers.routing.spec import RoutingSpec, VehicleType
from solvers.base import Limits, SolveResult, Status, Supports

MAX_CLIENTS = 12
"""Largest number of clients (and depots that must be visited) this solver takes (3**12 subset
pairs per vehicle in the split)."""

MAX_VEHICLES = 12
"""Largest fleet this solver takes (each vehicle is one round of the split)."""

MINMAX_OBJECTIVES = frozenset({"longest_route", "longest_leg"})
"""Objectives whose value is the worst route's, not the sum over routes."""


def uses_energy(spec: RoutingSpec) -> bool:
    """Whether ``spec`` has an energy limit with recharging or depots that must be visited."""
    return any(v.max_distance_between_recharges is not None for v in spec.vehicle_types) or any(
        d.required for d in spec.depots
    )


def _fleet(spec: RoutingSpec) -> list[int]:
    """One vehicle-type index per vehicle (a type without a count gets one per client)."""
    out = []
    for k, v in enumerate(spec.vehicle_types):
        out += [k] * (v.count if v.count is not None else max(1, len(spec.clients)))
    return out


def out_of_reach(spec: RoutingSpec) -> str | None:
    """What makes ``spec`` too large for this solver, or None when it is in reach."""
    why = []
    n_req = len(required_depots(spec))
    if len(spec.clients) + n_req > MAX_CLIENTS:
        also = f" and {n_req} depots that must be visited" if n_req else ""
        why.append(
            f"{len(spec.clients)} clients{also} (at most {MAX_CLIENTS}"
            + (" together)" if n_req else ")")
        )
    if len(_fleet(spec)) > MAX_VEHICLES:
        why.append(f"{len(_fleet(spec))} vehicles (at most {MAX_VEHICLES}; set count)")
    return " and ".join(why) or None


SUPPORTS = Supports(
    name="routing-exact",
    kinds=("routing",),
    features=frozenset(
        {
            "the total distance objective",
            "the longest route objective",
            "the longest leg objective",
            "visit orders",
            "per-vehicle client restrictions",
            "purchase costs",
            "a collection quota",
            "an energy limit with recharging at depots",
            "depots that must be visited",
            "time windows",
            "optional clients",
            "client groups",
            "a route distance limit",
            "fixed vehicle costs",
        }
    ),
    summary=f"exact dynamic programming over client subsets, proven optimal, for up to "
    f"{MAX_CLIENTS} clients and {MAX_VEHICLES} vehicles (what PyVRP cannot express)",
    check=out_of_reach,
)
"""What this solver takes (features of ``formalizers.routing.feasibility``): no shipments,
reloads, service times, prizes or duration limits, and at most ``MAX_CLIENTS`` clients and
``MAX_VEHICLES`` vehicles (``out_of_reach``)."""


class _Routes:
    """Best route of one vehicle type through every subset of clients."""

    def __init__(self, spec: RoutingSpec, v: VehicleType, deadline: float) -> None:
        inf = math.inf
        self.bottleneck = spec.objective == "longest_leg"
        ix = spec.index
        d, t = spec.distances, spec.durations
        start, end = ix[spec.start_of(v)], ix[spec.end_of(v)]
        depot = next(dp for dp in spec.depots if dp.id == spec.start_of(v))
        last = next(dp for dp in spec.depots if dp.id == spec.end_of(v))
        t0 = max(v.tw_early, depot.tw_early)
        close = min(x for x in (v.tw_late, last.tw_late, inf) if x is not None)
        cl = spec.clients
        m = len(cl)
        nodes = [ix[c.id] for c in cl]
        early = [c.tw_early for c in cl]
        late = [c.tw_late if c.tw_late is not None else inf for c in cl]
        pos = {c.id: i for i, c in enumerate(cl)}
        after = [0] * m
        for seq in spec.sequences:
            for a, x in enumerate(seq):
                for y in seq[a + 1 :]:
                    after[pos[x]] |= 1 << pos[y]
        allowed = (1 << m) - 1
        if v.allowed_clients is not None:
            allowed = sum(1 << pos[i] for i in v.allowed_clients if i in pos)
        full = (1 << m) - 1
        # labels[S][j]: Pareto set of (cost, time, previous client, previous label index).
        labels: list[list[list[tuple[float, float, int, int]]]] = [
            [[] for _ in range(m)] for _ in range(full + 1)
        ]
        for j in range(m):
            if (allowed >> j) & 1:
                arr = max(t0 + t[start, nodes[j]], early[j])
                if arr <= late[j] + 1e-9:
                    labels[1 << j][j].append((d[start, nodes[j]], arr, -1, -1))
        for s in range(1, full + 1):
            if s & ~allowed:
                continue
            for j in range(m):
                for li, (cost, now, _, _) in enumerate(labels[s][j]):
                    for k in range(m):
                        if (s >> k) & 1 or s & after[k] or not (allowed >> k) & 1:
                            continue
                        arr = max(now + t[nodes[j], nodes[k]], early[k])
                        if arr > late[k] + 1e-9:
                            continue
                        leg = d[nodes[j], nodes[k]]
                        c = max(cost, leg) if self.bottleneck else cost + leg
                        _add(labels[s | (1 << k)][k], (c, arr, j, li))
            if time.perf_counter() > deadline:
                raise TimeoutError
        self.labels, self.nodes, self.end, self.m = labels, nodes, end, m
        self.cost = [inf] * (full + 1)
        self.cost[0] = 0.0
        self.last: list[tuple[int, int]] = [(-1, -1)] * (full + 1)
        cap = v.capacity
        dem = [c.demand or c.pickup for c in cl]  # a client has one or the other here
        paid = [c.cost for c in cl]
        fixed = v.fixed_cost if spec.objective == "total_distance" else 0.0
        for s in range(1, full + 1):
            if cap and any(
                sum(dem[i][q] for i in range(m) if (s >> i) & 1 and dem[i]) > cap[q] + 1e-9
                for q in range(len(cap))
            ):
                continue
            purchase = 0.0 if self.bottleneck else sum(paid[i] for i in range(m) if (s >> i) & 1)
            for j in range(m):
                for li, (cost, now, _, _) in enumerate(labels[s][j]):
                    if now + t[nodes[j], end] > close + 1e-9:
                        continue
                    leg = d[nodes[j], end]
                    c = max(cost, leg) if self.bottleneck else cost + leg
                    if v.max_distance is not None and not self.bottleneck and c > v.max_distance:
                        continue
                    c += purchase + fixed  # a vehicle that serves anyone costs its fixed cost
                    if c < self.cost[s]:
                        self.cost[s], self.last[s] = c, (j, li)

    def stops(self, s: int, spec: RoutingSpec) -> list[list[Any]]:
        """The stops of the best route through subset ``s``."""
        return [["client", spec.clients[j].id] for j in self.order(s)]

    def order(self, s: int) -> list[int]:
        """The clients of subset ``s`` in the order of its best route."""
        out = []
        j, li = self.last[s]
        while j >= 0:
            out.append(j)
            _, _, pj, pli = self.labels[s][j][li]
            s &= ~(1 << j)
            j, li = pj, pli
        return out[::-1]


class _EnergyRoutes:
    """Best route of one vehicle type through every subset of clients and required depots, when
    there is an energy limit with recharging or a depot to visit (see the module docstring).

    Bits ``0..m-1`` are the clients, ``m..`` the required depots. A label is (cost, energy used
    since the last recharge, time, distance, subset, place, parent label); places are the clients,
    then the depots the vehicle may pass through (recharge depots and required depots), then the
    start. Labels leave the heap in order of cost; one whose place and subset already hold a label
    with no more energy, time and distance is dropped."""

    def __init__(self, spec: RoutingSpec, v: VehicleType, deadline: float) -> None:
        import heapq

        inf = math.inf
        self.bottleneck = bottleneck = spec.objective == "longest_leg"
        ix = spec.index
        d, t = spec.distances, spec.durations
        cl = spec.clients
        m = len(cl)
        req = required_depots(spec)
        depot_bit = {spec.depots[i].id: 1 << (m + a) for a, i in enumerate(req)}
        full = (1 << (m + len(req))) - 1
        energy = v.max_distance_between_recharges
        cap_e = inf if energy is None else energy
        recharge = spec.recharges_of(v) if energy is not None else set()
        start_id, end_id = spec.start_of(v), spec.end_of(v)
        depots = {dp.id: dp for dp in spec.depots}
        hubs = [dp.id for dp in spec.depots if dp.id in recharge or dp.id in depot_bit]
        # Places: (location row, window start, window end, recharges, subset bit, stop).
        places: list[tuple[int, float, float, bool, int, list[Any]]] = []
        pos = {c.id: i for i, c in enumerate(cl)}
        allowed = full
        if v.allowed_clients is not None:
            allowed = sum(1 << pos[i] for i in v.allowed_clients if i in pos)
            allowed |= full & ~((1 << m) - 1)
        for c in cl:
            late = c.tw_late if c.tw_late is not None else inf
            places.append((ix[c.id], c.tw_early, late, False, 1 << pos[c.id], ["client", c.id]))
        for h in hubs:
            dp = depots[h]
            late = dp.tw_late if dp.tw_late is not None else inf
            places.append(
                (ix[h], dp.tw_early, late, h in recharge, depot_bit.get(h, 0), ["depot", h])
            )
        home = len(places)
        places.append((ix[start_id], 0.0, inf, True, depot_bit.get(start_id, 0), []))
        after = [0] * m
        for seq in spec.sequences:
            for a, x in enumerate(seq):
                for y in seq[a + 1 :]:
                    after[pos[x]] |= 1 << pos[y]
        end_row, end_bit = ix[end_id], depot_bit.get(end_id, 0)
        close = min(x for x in (v.tw_late, depots[end_id].tw_late, inf) if x is not None)
        t0 = max(v.tw_early, depots[start_id].tw_early)
        dem = [c.demand or c.pickup for c in cl]
        cap = v.capacity
        paid = [c.cost for c in cl]
        fixed = v.fixed_cost if spec.objective == "total_distance" else 0.0
        fits: dict[int, bool] = {}
        client_mask = (1 << m) - 1

        def fits_load(s: int) -> bool:
            if s not in fits:
                fits[s] = not cap or all(
                    sum(dem[i][q] for i in range(m) if (s >> i) & 1 and dem[i]) <= cap[q] + 1e-9
                    for q in range(len(cap))
                )
            return fits[s]

        # labels[i] = (cost, energy, time, distance, subset, place, parent)
        labels: list[tuple[float, float, float, float, int, int, int]] = []
        settled: dict[tuple[int, int], list[int]] = {}
        heap: list[tuple[float, int]] = []

        def push(label: tuple[float, float, float, float, int, int, int]) -> None:
            labels.append(label)
            heapq.heappush(heap, (label[0], len(labels) - 1))

        self.cost = [inf] * (full + 1)
        self.cost[0] = 0.0
        self.last = [-1] * (full + 1)
        push((0.0, 0.0, t0, 0.0, places[home][4], home, -1))
        n_pop = 0
        while heap:
            _, li = heapq.heappop(heap)
            cost, e, now, dist, s, p, _ = labels[li]
            bucket = settled.setdefault((s, p), [])
            if any(
                labels[o][1] <= e + 1e-12
                and labels[o][2] <= now + 1e-12
                and labels[o][3] <= dist + 1e-12
                for o in bucket
            ):
                continue
            bucket.append(li)
            n_pop += 1
            if n_pop % 4096 == 0 and time.perf_counter() > deadline:
                raise TimeoutError
            row = places[p][0]
            # End the route here (a route that visits nothing is the unused vehicle, cost[0]).
            leg = d[row, end_row]
            if (
                (s & client_mask or p != home)
                and e + leg <= cap_e + 1e-9
                and now + t[row, end_row] <= close + 1e-9
                and (v.max_distance is None or dist + leg <= v.max_distance + 1e-9)
                and fits_load(s)
            ):
                c = max(cost, leg) if bottleneck else cost + leg
                c += 0.0 if bottleneck else sum(paid[i] for i in range(m) if (s >> i) & 1)
                c += fixed
                fs = s | end_bit
                if c < self.cost[fs]:
                    self.cost[fs], self.last[fs] = c, li
            for q, (qrow, early, late, charge, bit, _) in enumerate(places[:home]):
                if qrow == row:
                    continue
                if q < m:
                    if s & bit or not allowed & bit or s & after[q]:
                        continue
                leg = d[row, qrow]
                if e + leg > cap_e + 1e-9:
                    continue
                arr = max(now + t[row, qrow], early)
                if arr > late + 1e-9:
                    continue
                if v.max_distance is not None and dist + leg > v.max_distance + 1e-9:
                    continue
                c = max(cost, leg) if bottleneck else cost + leg
                push((c, 0.0 if charge else e + leg, arr, dist + leg, s | bit, q, li))
        # A route may stand in for any subset of the required depots it visits.
        self.src = list(range(full + 1))
        for a in range(len(req)):
            b = 1 << (m + a)
            for s in range(full + 1):
                if not s & b and self.cost[s | b] < self.cost[s]:
                    self.cost[s], self.src[s] = self.cost[s | b], self.src[s | b]
        self.labels, self.places, self.home = labels, places, home

    def stops(self, s: int, spec: RoutingSpec) -> list[list[Any]]:
        """The stops of the best route through (at least) subset ``s``."""
        li = self.last[self.src[s]]
        out = []
        while li >= 0:
            p = self.labels[li][5]
            if p != self.home:
                out.append(self.places[p][5])
            li = self.labels[li][6]
        return out[::-1]


def _add(bucket: list[tuple[float, float, int, int]], label: tuple[float, float, int, int]) -> None:
    """Add ``label`` unless another is no worse in cost and time; drop those it beats."""
    c, now = label[0], label[1]
    for o in bucket:
        if o[0] <= c + 1e-12 and o[1] <= now + 1e-12:
            return
    bucket[:] = [o for o in bucket if not (c <= o[0] and now <= o[1])]
    bucket.append(label)


def _best_cover(spec: RoutingSpec, g: list[float], depots: int = 0) -> int:
    """The set of clients to serve: every required client outside groups, exactly one client of
    each required group (at most one of an optional group), optional clients as they help, and the
    pickups reaching ``min_collect``, with the bits ``depots`` (required depots) all set; the one of
    least cost ``g``, or -1 if none."""
    cl = spec.clients
    base = depots | sum(1 << i for i, c in enumerate(cl) if c.group is None and c.required)
    quota = spec.min_collect
    groups = [
        (sum(1 << i for i, c in enumerate(cl) if c.group == grp.name), grp.required)
        for grp in spec.groups
    ]
    best, best_s = math.inf, -1
    for s in range(len(g)):
        if s & base != base or g[s] >= best:
            continue
        if quota is not None and any(
            sum(c.pickup[q] for i, c in enumerate(cl) if (s >> i) & 1 and c.pickup) < need - 1e-9
            for q, need in enumerate(quota)
        ):
            continue
        if all(
            (n := (s & mask).bit_count()) == 1 or (n == 0 and not required)
            for mask, required in groups
        ):
            best, best_s = g[s], s
    return best_s


def solve(spec: RoutingSpec, limits: Limits, deadline: float | None = None) -> SolveResult:
    """Solve ``spec`` exactly (see the module docstring); TIMEOUT past ``deadline`` (a
    ``time.perf_counter`` instant; default ``limits.time_s`` from now). The objective is the
    dynamic program's own optimal value, not recomputed from the routes: the verifier does
    that. A spec outside ``SUPPORTS`` is ``UNSUPPORTED``, naming what this solver lacks."""
    refused = SUPPORTS.unsupported(features(spec), spec)
    if refused:
        return SUPPORTS.refuse(refused)
    t_start = time.perf_counter()
    if deadline is None:
        deadline = t_start + limits.time_s
    m = len(spec.clients)
    n_req = len(required_depots(spec))
    full = (1 << (m + n_req)) - 1
    inf = math.inf
    minmax = spec.objective in MINMAX_OBJECTIVES
    energy = uses_energy(spec)
    # The label search also keeps each route's distance, which the bottleneck objective needs
    # for a distance limit (its cost is the longest leg).
    labelled = energy or (
        spec.objective == "longest_leg"
        and any(v.max_distance is not None for v in spec.vehicle_types)
    )
    try:
        per_type: dict[int, _Routes | _EnergyRoutes] = {
            k: (_EnergyRoutes if labelled else _Routes)(spec, spec.vehicle_types[k], deadline)
            for k in sorted(set(_fleet(spec)))
        }
        fleet = _fleet(spec)
        # g[S]: best value covering S with the vehicles so far; picks[i][S]: vehicle i's subset.
        g = list(per_type[fleet[0]].cost)
        picks: list[list[int]] = [list(range(full + 1))]
        for k in fleet[1:]:
            rc = per_type[k].cost
            new = [inf] * (full + 1)
            pick = [0] * (full + 1)
            for s in range(full + 1):
                sub = s
                while True:  # every subset of S (the empty one included) goes to this vehicle
                    a, b = rc[sub], g[s & ~sub]
                    c = max(a, b) if minmax else a + b
                    if c < new[s]:
                        new[s], pick[s] = c, sub
                    if sub == 0:
                        break
                    sub = (sub - 1) & s
            g = new
            picks.append(pick)
            if time.perf_counter() > deadline:
                raise TimeoutError
    except TimeoutError:
        return SolveResult(
            Status.TIMEOUT,
            "exact-dp",
            time_s=time.perf_counter() - t_start,
            message=f"the exact solver did not finish within {limits.time_s:g} s",
        )
    elapsed = time.perf_counter() - t_start
    target = _best_cover(spec, g, full & ~((1 << m) - 1))
    if target < 0:
        what = "window, order, capacity and distance limit"
        if energy:
            what = (
                "window, order, capacity, distance and energy limit and visits every required depot"
            )
        return SolveResult(
            Status.INFEASIBLE,
            "exact-dp",
            time_s=elapsed,
            message=f"no assignment of the clients to the vehicles meets every {what} "
            "(proven by exhaustive dynamic programming)",
        )
    routes: list[dict[str, Any]] = []
    s = target
    for i in range(len(fleet) - 1, -1, -1):
        sub = picks[i][s]
        s &= ~sub
        if not sub:
            continue
        k = fleet[i]
        v = spec.vehicle_types[k]
        stops = per_type[k].stops(sub, spec)
        routes.append(
            {
                "vehicle": spec.vehicle_name(k),
                "vehicle_type": k,
                "start": spec.start_of(v),
                "end": spec.end_of(v),
                "stops": stops,
                "visits": [st[1] for st in stops if st[0] == "client"],
            }
        )
    routes.reverse()
    return SolveResult(
        Status.OPTIMAL,
        "exact-dp",
        objective=float(g[target]),
        time_s=elapsed,
        routes=tuple(routes),
        message=f"exact dynamic programming over client subsets in {elapsed:.2f} s",
    )
