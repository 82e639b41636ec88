"""What a routing spec asks for, and what makes it infeasible before any solver runs.

``features`` names, in words, each part of the routing language a spec uses (its objective, visit
orders, time windows, an energy limit...): the solver backends declare which of these they take
(``SUPPORTS`` in ``solvers.routing_pyvrp`` and ``solvers.routing_exact``), and the routing kind
(``agent.kinds.routing``) gives a spec to the first backend that takes all of them.

``check_feasible`` refuses a spec that cannot have a feasible solution for a reason that can be
named without solving: a required client whose load no vehicle carries, a time window that closes
before any vehicle can arrive, a client out of an energy limit's reach, a fleet too small for the
total demand. Each is measured with ``formalizers.routing.measure`` and the spec's own matrices.
"""

from __future__ import annotations

import math

import numpy as np

from agent.errors import ArtifactError, Diagnostic
from formalizers.routing.spec import RoutingSpec

FEATURES: tuple[str, ...] = (
    "the total distance objective",
    "the total duration objective",
    "the prize minus cost objective",
    "the longest route objective",
    "the longest leg objective",
    "visit orders",
    "per-vehicle client restrictions",
    "purchase costs",
    "a collection quota",
    "an energy limit with recharging at depots",
    "depots that must be visited",
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
)
"""Every feature of the routing language a backend may or may not take, in the order they are
named (a spec's objective first)."""


def objective_feature(objective: str) -> str:
    """The feature naming an objective (``longest_route``: "the longest route objective")."""
    return f"the {objective.replace('_', ' ')} objective"


def features(spec: RoutingSpec) -> tuple[str, ...]:
    """The features of ``FEATURES`` that ``spec`` uses, in that order."""
    clients, ships, vts = spec.clients, spec.shipments, spec.vehicle_types
    used = {
        objective_feature(spec.objective),
        *(["visit orders"] if spec.sequences else []),
        *(
            ["per-vehicle client restrictions"]
            if any(v.allowed_clients is not None for v in vts)
            else []
        ),
        *(["purchase costs"] if any(c.cost for c in clients) else []),
        *(["a collection quota"] if spec.min_collect is not None else []),
        *(
            ["an energy limit with recharging at depots"]
            if any(v.max_distance_between_recharges is not None for v in vts)
            else []
        ),
        *(["depots that must be visited"] if any(d.required for d in spec.depots) else []),
    }
    windows = (
        any(c.tw_early or c.tw_late is not None for c in clients)
        or any(d.tw_early or d.tw_late is not None for d in spec.depots)
        or any(v.tw_early or v.tw_late is not None for v in vts)
        or any(s.pickup_tw is not None or s.delivery_tw is not None for s in ships)
    )
    flags = {
        "time windows": windows,
        "service times": any(c.service for c in clients)
        or any(s.pickup_service or s.delivery_service for s in ships),
        "prizes": any(c.prize for c in clients) or any(s.prize for s in ships),
        "optional clients": any(not c.required for c in clients)
        or any(not s.required for s in ships),
        "client groups": bool(spec.groups) or any(c.group is not None for c in clients),
        "clients with both pickups and deliveries": any(c.pickup and c.demand for c in clients),
        "shipments": bool(ships),
        "reloads": any(v.reload_depots for v in vts),
        "a route distance limit": any(v.max_distance is not None for v in vts),
        "a route duration limit": any(v.max_duration is not None for v in vts),
        "fixed vehicle costs": any(v.fixed_cost for v in vts),
    }
    used |= {name for name, on in flags.items() if on}
    return tuple(f for f in FEATURES if f in used)


def required_depots(spec: RoutingSpec) -> list[int]:
    """Indices (in ``spec.depots``) of the depots some route must visit."""
    return [i for i, d in enumerate(spec.depots) if d.required]


def check_feasible(spec: RoutingSpec) -> None:
    """Refuse a spec that cannot have a feasible solution for a reason that can be named without
    a solver. Raises ``ArtifactError("infeasible")`` naming each client at fault."""
    diags: list[Diagnostic] = []
    caps = [v.capacity for v in spec.vehicle_types]
    for c in spec.clients:
        if not c.required or c.group is not None:
            continue  # a client that may be left out cannot make the spec infeasible
        load = [
            max(d, p)
            for d, p in zip(
                c.demand or [0.0] * len(c.pickup), c.pickup or [0.0] * len(c.demand), strict=True
            )
        ]
        if (
            load
            and caps
            and all(cap and any(x > q for x, q in zip(load, cap, strict=True)) for cap in caps)
        ):
            best = max(caps, key=lambda cap: sum(cap))
            diags.append(
                Diagnostic(
                    f"client {c.id!r}",
                    f"needs a load of {_fmt(load)} but no vehicle carries that much (largest capacity {_fmt(best)})",
                    "check the client's demand and the vehicle capacities",
                )
            )
    ix = spec.index  # the durations are built only if a window needs them: quadratic
    diags += _energy_reach(spec)
    for c in spec.clients:
        if c.tw_late is None:
            continue
        reach = []
        for v in spec.vehicle_types:
            start = ix[spec.start_of(v)]
            depot = spec.depot_by_id[spec.start_of(v)]
            leave = max(v.tw_early, depot.tw_early)
            reach.append(leave + spec.durations[start, ix[c.id]])
        earliest = min(reach)
        if earliest > c.tw_late + 1e-9:
            diags.append(
                Diagnostic(
                    f"client {c.id!r}",
                    f"its time window [{_fmt([c.tw_early])}, {_fmt([c.tw_late])}] closes before any vehicle "
                    f"can arrive (the earliest arrival is {earliest:.4g})",
                    "check the time window and the travel times",
                )
            )
    counts = [v.count for v in spec.vehicle_types]
    if (
        caps
        and all(caps)
        and None not in counts
        and not any(v.reload_depots for v in spec.vehicle_types)
    ):
        total = [
            sum(
                (c.demand[i] if c.demand else 0.0)
                for c in spec.clients
                if c.required and c.group is None
            )
            for i in range(len(caps[0]))
        ]
        fleet = [
            sum(v.capacity[i] * (v.count or 0) for v in spec.vehicle_types)
            for i in range(len(caps[0]))
        ]
        if any(a > b + 1e-9 for a, b in zip(total, fleet, strict=True)):
            diags.append(
                Diagnostic(
                    "vehicle_types",
                    f"the fleet carries {_fmt(fleet)} in all but the required clients need {_fmt(total)}",
                    "add vehicles (count), raise capacity, or allow reloads",
                )
            )
    if diags:
        raise ArtifactError("infeasible", diags, "the routing spec cannot be satisfied as written:")


ENERGY_CHECK_MAX = 400
"""Most locations for which ``check_feasible`` looks for clients out of an energy limit's reach."""


def _energy_reach(spec: RoutingSpec) -> list[Diagnostic]:
    """A required client that no vehicle can reach from a place where it is charged (its start or
    a recharge depot) and leave for one (a recharge depot or its end) within its energy.

    Distances are shortest paths (a matrix need not keep the triangle inequality, nor do rounded
    distances), so the trip is a lower bound and a client it rules out is out of reach. Above
    ``ENERGY_CHECK_MAX`` locations the check is skipped (no backend that takes energy limits
    takes specs that large)."""
    if len(spec.locations) > ENERGY_CHECK_MAX:
        return []
    d, ix = np.array(spec.distances, dtype=float), spec.index
    for k in range(len(d)):  # Floyd-Warshall
        np.minimum(d, d[:, k : k + 1] + d[k : k + 1, :], out=d)
    out = []
    for c in spec.clients:
        if not c.required or c.group is not None:
            continue
        best = math.inf
        for v in spec.vehicle_types:
            if v.max_distance_between_recharges is None:
                best = 0.0
                break
            charged = spec.recharges_of(v)
            come = min(d[ix[a], ix[c.id]] for a in charged | {spec.start_of(v)})
            go = min(d[ix[c.id], ix[b]] for b in charged | {spec.end_of(v)})
            need = float(come + go)
            if need > v.max_distance_between_recharges + 1e-9:
                best = min(best, need)
            else:
                best = 0.0
                break
        if best > 0:
            energies = sorted({v.max_distance_between_recharges or 0.0 for v in spec.vehicle_types})
            out.append(
                Diagnostic(
                    f"client {c.id!r}",
                    f"no vehicle can reach it and get back to a recharge depot on one charge: the "
                    f"shortest such trip is {best:.4g}, more than the energy "
                    f"({', '.join(f'{e:g}' for e in energies)})",
                    "check max_distance_between_recharges and recharge_depots",
                )
            )
    return out


def _fmt(values: list[float]) -> str:
    text = [f"{v:g}" for v in values]
    return text[0] if len(text) == 1 else "[" + ", ".join(text) + "]"
