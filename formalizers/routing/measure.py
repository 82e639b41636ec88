"""What a route costs, in a routing spec's own units: the routing language's measures.

The arithmetic of a route over the spec's distance and travel-time matrices
(``RoutingSpec.distances`` and ``durations``, built by ``formalizers.routing.distances``): the
place of each stop, its legs, its length and duration (with waiting for time windows), its
lateness, the load it carries between reloads, the distance it travels between recharges, and the
objective of a set of routes.

These are the definitions the independent check (``solvers.routing_verify``) recomputes an answer
with. The solver backends do not call them for the objective they report: each reports its own
solver's value, and the check compares the two.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from formalizers.routing.spec import Id, RoutingSpec

TOL = 1e-6
"""Absolute tolerance of a window, capacity or energy comparison, in the spec's units."""

STOP_KINDS = ("client", "pickup", "delivery", "reload", "depot")
"""The kinds of stop a route may hold (see ``solvers.base.SolveResult.routes``)."""


def load_dims(spec: RoutingSpec) -> int:
    """Number of load dimensions (0 when nothing has a load)."""
    lens = [len(c.demand) or len(c.pickup) for c in spec.clients]
    lens += [len(s.amount) for s in spec.shipments] + [len(v.capacity) for v in spec.vehicle_types]
    return max(lens, default=0)


# -- one route ---------------------------------------------------------------------------------
@dataclass(slots=True)
class RouteStats:
    """One route measured: ``distance`` and ``duration`` (from the latest start that keeps every
    window, so waiting is least) in the spec's units; ``late`` lists ``(stop, time late)``."""

    distance: float = 0.0
    duration: float = 0.0
    start_time: float = 0.0
    late: list[tuple[str, float]] = field(default_factory=list)
    arcs: int = 0


def stop_location(spec: RoutingSpec, stop: list[Any]) -> Id:
    """The location id of a well-formed stop (a shipment's pickup or delivery place)."""
    if stop[0] in ("pickup", "delivery"):
        sh = spec.shipment_by_name[stop[1]]
        return sh.pickup if stop[0] == "pickup" else sh.delivery
    key: Id = stop[1]
    return key


def places(spec: RoutingSpec, route: dict[str, Any]) -> list[Id]:
    """The location ids ``route`` passes, from its start depot to its end depot."""
    return [route["start"], *(stop_location(spec, x) for x in route["stops"]), route["end"]]


def stop_data(spec: RoutingSpec, stop: list[Any]) -> tuple[int, float, float, float, str]:
    """(matrix row, window start, window end, service time, label) of one stop."""
    kind, key = stop[0], stop[1]
    ix = spec.index
    inf = float("inf")
    if kind == "client":
        c = spec.client_by_id[key]
        late = c.tw_late if c.tw_late is not None else inf
        return ix[c.id], c.tw_early, late, c.service, f"client {c.id!r}"
    if kind in ("pickup", "delivery"):
        s = spec.shipment_by_name[key]
        loc = s.pickup if kind == "pickup" else s.delivery
        tw = (s.pickup_tw if kind == "pickup" else s.delivery_tw) or (0.0, inf)
        service = s.pickup_service if kind == "pickup" else s.delivery_service
        return ix[loc], tw[0], tw[1], service, f"{kind} of shipment {s.name!r}"
    d = spec.depot_by_id[key]
    late = d.tw_late if d.tw_late is not None else inf
    what = "reload at" if kind == "reload" else "stop at"
    return ix[d.id], d.tw_early, late, 0.0, f"{what} depot {d.id!r}"


def route_stats(spec: RoutingSpec, route: dict[str, Any]) -> RouteStats:
    """Distance, duration and lateness of one route (see ``RouteStats``)."""
    inf = float("inf")
    v = spec.vehicle_types[route["vehicle_type"]]
    start = spec.depot_by_id[route["start"]]
    end = spec.depot_by_id[route["end"]]
    seq: list[tuple[int, float, float, float, str]] = [
        (
            spec.index[start.id],
            max(v.tw_early, start.tw_early),
            min(x for x in (v.tw_late, start.tw_late, inf) if x is not None),
            0.0,
            f"start at depot {start.id!r}",
        )
    ]
    seq += [stop_data(spec, s) for s in route["stops"]]
    seq.append(
        (
            spec.index[end.id],
            0.0,
            min(x for x in (v.tw_late, end.tw_late, inf) if x is not None),
            0.0,
            f"return to depot {end.id!r}",
        )
    )
    d, t = spec.distances, spec.durations
    stats = RouteStats(arcs=len(seq) - 1)
    stats.distance = float(sum(d[a[0], b[0]] for a, b in zip(seq, seq[1:], strict=False)))
    # Latest start that keeps every window (backward pass), then the schedule forward from it.
    latest = seq[-1][2]
    for i in range(len(seq) - 2, -1, -1):
        latest = min(seq[i][2], latest - t[seq[i][0], seq[i + 1][0]] - seq[i][3])
    s0 = seq[0][1] if latest == inf else max(seq[0][1], min(latest, seq[0][2]))
    now = s0 + seq[0][3]
    for i in range(1, len(seq)):
        arrive = now + t[seq[i - 1][0], seq[i][0]]
        begin = max(arrive, seq[i][1])
        if begin > seq[i][2] + TOL:
            stats.late.append((seq[i][4], begin - seq[i][2]))
        now = begin + seq[i][3]
    stats.start_time = s0
    stats.duration = now - s0
    return stats


def legs(spec: RoutingSpec, route: dict[str, Any]) -> list[float]:
    """The length of each leg of ``route``, depots included."""
    ids = [
        route["start"],
        *(s[1] for s in route["stops"] if s[0] in ("client", "reload", "depot")),
        route["end"],
    ]
    if any(s[0] in ("pickup", "delivery") for s in route["stops"]):
        ids = [route["start"], *route["visits"], route["end"]]
    rows = [spec.index[i] for i in ids]
    return [float(spec.distances[a, b]) for a, b in zip(rows, rows[1:], strict=False)]


def energy_overrun(spec: RoutingSpec, route: dict[str, Any]) -> tuple[float, str, str] | None:
    """The worst stretch of ``route`` between recharges that is longer than its vehicle's energy
    (``max_distance_between_recharges``): (distance, from, to); None when every stretch fits. The
    vehicle leaves its start fully charged and recharges at each recharge depot it reaches."""
    v = spec.vehicle_types[route["vehicle_type"]]
    energy = v.max_distance_between_recharges
    if energy is None:
        return None
    recharge = spec.recharges_of(v)
    depot_ids = {d.id for d in spec.depots}
    where: list[tuple[Id, bool]] = [(route["start"], True)]
    for s in route["stops"]:
        if s[0] in ("pickup", "delivery"):
            where.append((stop_location(spec, s), False))
        else:
            where.append((s[1], s[0] in ("depot", "reload") and s[1] in depot_ids))
    where.append((route["end"], True))
    d, ix = spec.distances, spec.index
    worst: tuple[float, str, str] | None = None
    used, since = 0.0, route["start"]
    for (a, _), (b, at_depot) in zip(where, where[1:], strict=False):
        used += float(d[ix[a], ix[b]])
        if used > energy + TOL and (worst is None or used > worst[0]):
            worst = (used, str(since), str(b))
        if at_depot and b in recharge:
            used, since = 0.0, b
    return worst


def trips(route: dict[str, Any]) -> list[list[list[Any]]]:
    """The stops of ``route`` split at its reloads: one list per trip from the depot."""
    out: list[list[list[Any]]] = [[]]
    for s in route["stops"]:
        if s[0] == "reload":
            out.append([])
        else:
            out[-1].append(s)
    return out


def trip_loads(spec: RoutingSpec, trip: Iterable[list[Any]], dims: int) -> list[list[float]]:
    """The load on board over one trip (``dims`` load dimensions): leaving the depot with every
    client's delivery of the trip, then after each stop (a client's delivery dropped and its
    pickup taken on; a shipment's amount taken on at its pickup, dropped at its delivery)."""
    stops = list(trip)
    clients, ships = spec.client_by_id, spec.shipment_by_name
    zero = [0.0] * dims
    load = list(zero)
    for s in stops:
        if s[0] == "client" and s[1] in clients and clients[s[1]].demand:
            load = [a + b for a, b in zip(load, clients[s[1]].demand, strict=True)]
    points = [list(load)]
    for s in stops:
        if s[0] == "client" and s[1] in clients:
            c = clients[s[1]]
            dem = c.demand or zero
            pick = c.pickup or zero
            load = [a - b + p for a, b, p in zip(load, dem, pick, strict=True)]
        elif s[0] in ("pickup", "delivery") and s[1] in ships:
            amt = ships[s[1]].amount or zero
            sign = 1 if s[0] == "pickup" else -1
            load = [a + sign * b for a, b in zip(load, amt, strict=True)]
        points.append(list(load))
    return points


# -- a set of routes -----------------------------------------------------------------------------
def route_objective(spec: RoutingSpec, routes: Iterable[dict[str, Any]]) -> float:
    """The objective of ``routes`` in the spec's units: total distance or duration plus fixed
    costs and purchases (minimized), collected prize minus that cost (``prize_minus_cost``,
    maximized), the longest route's distance (``longest_route``) or the longest leg
    (``longest_leg``)."""
    routes = list(routes)
    paid = {c.id: c.cost for c in spec.clients}

    def purchases(r: dict[str, Any]) -> float:
        return sum(paid.get(s[1], 0.0) for s in r["stops"] if s[0] == "client")

    if spec.objective in ("longest_route", "longest_leg"):
        worst = 0.0
        for r in routes:
            if spec.objective == "longest_route":
                worst = max(worst, route_stats(spec, r).distance + purchases(r))
            else:
                worst = max(worst, max(legs(spec, r), default=0.0))
        return worst
    cost = 0.0
    prize = 0.0
    prizes: dict[tuple[str, Id], float] = {("client", c.id): c.prize for c in spec.clients}
    prizes |= {("pickup", s.name): s.prize for s in spec.shipments}
    for r in routes:
        st = route_stats(spec, r)
        cost += st.duration if spec.objective == "total_duration" else st.distance
        cost += spec.vehicle_types[r["vehicle_type"]].fixed_cost + purchases(r)
        prize += sum(prizes.get((s[0], s[1]), 0.0) for s in r["stops"])
    return prize - cost if spec.objective == "prize_minus_cost" else cost
