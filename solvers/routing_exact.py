"""Exact solver for small routing specs with what PyVRP cannot express.

Objectives ``longest_route`` (min-max: the longest route's distance as small as possible) and
``longest_leg`` (bottleneck: the longest single leg as small as possible), and ``total_distance``
with visit orders (``sequences``) or vehicles restricted to some clients (``allowed_clients``), over
at most ``MAX_CLIENTS`` clients and ``MAX_VEHICLES`` vehicles; time windows are kept (waiting
allowed), and so are client groups (exactly one client of each); shipments and reloads are not. Held-Karp dynamic programming (with labels of cost
and time when there are windows) gives each vehicle's best route through each subset of clients; a
second dynamic program hands the subsets out to the vehicles. The result is proven optimal.
"""

from __future__ import annotations

import math
import time
from typing import Any

from formalizers.routing.spec import RoutingSpec, VehicleType
from solvers.base import Limits, SolveResult, Status

MAX_CLIENTS = 12
"""Largest number of clients this solver takes (3**12 subset pairs per vehicle in the split)."""

MAX_VEHICLES = 12
"""Largest fleet this solver takes (each vehicle is one round of the split)."""

EXACT_OBJECTIVES = frozenset({"longest_route", "longest_leg"})
"""Objectives only this solver takes; it also takes ``total_distance`` with visit orders or
restricted vehicles."""


def needs_exact(spec: RoutingSpec) -> bool:
    """Whether ``spec`` uses something only this solver expresses."""
    return (
        spec.objective in EXACT_OBJECTIVES
        or bool(spec.sequences)
        or any(v.allowed_clients is not None for v in spec.vehicle_types)
        or any(c.cost for c in spec.clients)
        or spec.min_collect is not None
    )


def _fleet(spec: RoutingSpec) -> list[int]:
    """One vehicle-type index per vehicle (a type without a count gets one per client)."""
    out = []
    for k, v in enumerate(spec.vehicle_types):
        out += [k] * (v.count if v.count is not None else max(1, len(spec.clients)))
    return out


def unsupported_reason(spec: RoutingSpec) -> str:
    """Why ``spec`` is out of this solver's reach, or "" when it is in reach."""
    why = []
    if len(spec.clients) > MAX_CLIENTS:
        why.append(f"it has {len(spec.clients)} clients (at most {MAX_CLIENTS})")
    if len(_fleet(spec)) > MAX_VEHICLES:
        why.append(f"it has {len(_fleet(spec))} vehicles (at most {MAX_VEHICLES}; set count)")
    if spec.shipments:
        why.append("it has shipments")
    if any(c.prize or c.service or (c.pickup and c.demand) for c in spec.clients):
        why.append("clients have prizes, service time, or both pickups and deliveries")
    if any(v.reload_depots or v.max_duration is not None for v in spec.vehicle_types):
        why.append("vehicles reload or have a duration limit")
    if spec.objective not in (*EXACT_OBJECTIVES, "total_distance"):
        why.append(f"its objective is {spec.objective}")
    return "; ".join(why)


class _Routes:
    """Best route of one vehicle type through every subset of clients."""

    def __init__(self, spec: RoutingSpec, v: VehicleType, deadline: float) -> None:
        inf = math.inf
        self.bottleneck = spec.objective == "longest_leg"
        ix = spec.index
        d, t = spec.distances, spec.durations
        start, end = ix[spec.start_of(v)], ix[spec.end_of(v)]
        depot = next(dp for dp in spec.depots if dp.id == spec.start_of(v))
        t0 = max(v.tw_early, depot.tw_early)
        close = min(x for x in (v.tw_late, inf) if x is not None)
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
                    c += purchase
                    if c < self.cost[s]:
                        self.cost[s], self.last[s] = c, (j, li)

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


def _add(bucket: list[tuple[float, float, int, int]], label: tuple[float, float, int, int]) -> None:
    """Add ``label`` unless another is no worse in cost and time; drop those it beats."""
    c, now = label[0], label[1]
    for o in bucket:
        if o[0] <= c + 1e-12 and o[1] <= now + 1e-12:
            return
    bucket[:] = [o for o in bucket if not (c <= o[0] and now <= o[1])]
    bucket.append(label)


def _best_cover(spec: RoutingSpec, g: list[float]) -> int:
    """The set of clients to serve: every required client outside groups, exactly one client of
    each required group (at most one of an optional group), optional clients as they help, and the
    pickups reaching ``min_collect``; the one of least cost ``g``, or -1 if none."""
    cl = spec.clients
    base = sum(1 << i for i, c in enumerate(cl) if c.group is None and c.required)
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


def solve(spec: RoutingSpec, limits: Limits) -> SolveResult:
    """Solve ``spec`` exactly (see the module docstring); TIMEOUT past ``limits.time_s``."""
    t_start = time.perf_counter()
    deadline = t_start + limits.time_s
    m = len(spec.clients)
    full = (1 << m) - 1
    inf = math.inf
    minmax = spec.objective in EXACT_OBJECTIVES
    try:
        per_type = {
            k: _Routes(spec, spec.vehicle_types[k], deadline) for k in sorted(set(_fleet(spec)))
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
    target = _best_cover(spec, g)
    if target < 0:
        return SolveResult(
            Status.INFEASIBLE,
            "exact-dp",
            time_s=elapsed,
            message="no assignment of the clients to the vehicles meets every window, order, "
            "capacity and distance limit (proven by exhaustive dynamic programming)",
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
        ids = [spec.clients[j].id for j in per_type[k].order(sub)]
        routes.append(
            {
                "vehicle": spec.vehicle_name(k),
                "vehicle_type": k,
                "start": spec.start_of(v),
                "end": spec.end_of(v),
                "stops": [["client", c] for c in ids],
                "visits": ids,
            }
        )
    routes.reverse()
    from solvers.routing_verify import route_objective

    what = (
        f"the {spec.objective.replace('_', ' ')} objective"
        if minmax
        else "visit orders or per-vehicle client restrictions"
    )
    return SolveResult(
        Status.OPTIMAL,
        "exact-dp",
        objective=route_objective(spec, tuple(routes)),
        time_s=elapsed,
        routes=tuple(routes),
        message=f"exact dynamic programming over client subsets in {elapsed:.2f} s (PyVRP "
        f"cannot express {what})",
    )
