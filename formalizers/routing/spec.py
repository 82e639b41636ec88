"""The routing instance spec: the artifact a language model fills in for a routing request.

Locations carry coordinates or the spec carries a distance matrix; clients, depots and shipment ends
are located by a location ``id``. Distances and durations are in the spec's own units; the PyVRP
backend scales them to integers (see ``RoutingSpec.scale``) and reports costs in these units again.
Distances are built by ``formalizers.routing.distances``, and what a route costs over them is
measured by ``formalizers.routing.measure``; what a spec uses and what makes it infeasible before any solver runs are in
``formalizers.routing.feasibility``.
"""

from __future__ import annotations

import json
import math
from functools import cached_property
from typing import Any, Literal

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from agent.errors import ArtifactError, Diagnostic, schema_diagnostics
from formalizers.routing.distances import euclidean, round_distances

MAX_CLIENTS = 5_000
"""Largest number of clients plus shipments accepted; larger requests are refused before parsing."""

MAX_LOCATIONS = 6_000
"""Largest number of locations (a distance matrix of this size holds 36 million entries)."""

MAX_VEHICLES = 100_000
"""Largest ``count`` of one vehicle type (leave ``count`` out for as many as needed)."""

MAX_COORDINATE = 1e12
"""Largest coordinate, in absolute value: beyond it distances lose their integer precision in the
solver (or overflow to infinity)."""

MAX_SCALED_DISTANCE = 1e15
"""Largest distance or duration once multiplied by the spec's ``scale``: PyVRP works on 64-bit
integers, and a route of thousands of such legs must still fit in one."""

Id = int | str
"""A location's identifier: a file's node number or a name."""

Objective = Literal[
    "total_distance", "total_duration", "longest_route", "longest_leg", "prize_minus_cost"
]
Rounding = Literal["none", "nearest", "ceil", "dimacs"]


def _as_list(v: Any) -> Any:
    """A single number where a list of load dimensions is expected becomes a one-element list."""
    return [v] if isinstance(v, int | float) and not isinstance(v, bool) else v


class _Base(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Location(_Base):
    """A place: ``x``, ``y`` coordinates (needed unless the spec gives a distance matrix)."""

    id: Id
    x: float | None = None
    y: float | None = None


class Depot(_Base):
    """A depot at location ``id``, open from ``tw_early`` to ``tw_late`` (time units).
    ``required``: some route must pass through it at least once (starting or ending there counts;
    otherwise as a ``["depot", id]`` stop), e.g. "every depot city must be visited"."""

    id: Id
    tw_early: float = 0.0
    tw_late: float | None = None
    required: bool = False


class Client(_Base):
    """A client at location ``id``: ``demand`` (delivered from the depot) and ``pickup`` (brought
    back), one number per load dimension; service starts within [``tw_early``, ``tw_late``] and takes
    ``service`` time units. An optional client (``required`` false) earns ``prize`` when visited.
    ``group``: the name of a group of which exactly one client is visited."""

    id: Id
    demand: list[float] = Field(default_factory=list)
    pickup: list[float] = Field(default_factory=list)
    tw_early: float = 0.0
    tw_late: float | None = None
    service: float = 0.0
    prize: float = 0.0
    required: bool = True
    group: str | None = None
    cost: float = 0.0
    """Paid when the client is visited (a purchase there), in the objective's units."""

    _lists = field_validator("demand", "pickup", mode="before")(_as_list)


class Group(_Base):
    """Clients of which exactly one (``required``) or at most one is visited."""

    name: str
    required: bool = True


class Shipment(_Base):
    """A load of ``amount`` picked up at location ``pickup`` and delivered at ``delivery`` by the
    same vehicle, later on the same route."""

    name: str
    pickup: Id
    delivery: Id
    amount: list[float] = Field(default_factory=list)
    pickup_tw: tuple[float, float] | None = None
    delivery_tw: tuple[float, float] | None = None
    pickup_service: float = 0.0
    delivery_service: float = 0.0
    required: bool = True
    prize: float = 0.0

    _lists = field_validator("amount", mode="before")(_as_list)


class VehicleType(_Base):
    """``count`` vehicles (None: as many as needed) of ``capacity`` per load dimension, starting at
    ``start_depot`` and ending at ``end_depot`` (default: the first depot, and the start). Route
    limits: ``max_distance``, ``max_duration``; ``fixed_cost`` is paid per vehicle used;
    ``reload_depots`` let a vehicle go back to reload (multi-trip), at most ``max_reloads`` times.

    Energy: ``max_distance_between_recharges`` (None: no limit) is the most distance a vehicle
    travels between two visits to a recharge location; it leaves ``start_depot`` fully charged and
    must reach a recharge location (or its end depot) before the energy runs out. It recharges
    fully at each of ``recharge_depots`` (None: at every depot except those that are only end
    depots, see ``RoutingSpec.recharges_of``), which it may pass through any
    number of times, as ``["depot", id]`` stops of its route (passing through does not reload
    its load; see ``reload_depots``). Clients are still visited once. Of the backends, only the
    exact solver (``solvers.routing_exact``) declares energy limits and ``required`` depots."""

    name: str = ""
    count: int | None = None
    capacity: list[float] = Field(default_factory=list)
    start_depot: Id | None = None
    end_depot: Id | None = None
    max_distance: float | None = None
    max_duration: float | None = None
    fixed_cost: float = 0.0
    tw_early: float = 0.0
    tw_late: float | None = None
    reload_depots: list[Id] = Field(default_factory=list)
    max_reloads: int | None = None
    allowed_clients: list[Id] | None = None
    """The only clients this vehicle type may visit (None: any)."""
    max_distance_between_recharges: float | None = None
    """Energy: the most distance travelled between recharges (None: no limit)."""
    recharge_depots: list[Id] | None = None
    """Depots where the energy is fully recharged (None: every depot but end-only ones)."""

    _lists = field_validator("capacity", mode="before")(_as_list)


class RoutingSpec(_Base):
    """A routing instance.

    Distances: ``distance_matrix`` (rows and columns in the order of ``locations``) or Euclidean
    distances between coordinates, each rounded by ``rounding`` (``none``; ``nearest`` integer as
    TSPLIB EUC_2D; ``ceil``; ``dimacs``: truncated to one decimal). Durations: ``duration_matrix`` or
    distance divided by ``speed``. ``precision``: decimal digits kept when ``rounding`` is ``none``.
    """

    name: str = ""
    locations: list[Location]
    distance_matrix: list[list[float]] | None = None
    duration_matrix: list[list[float]] | None = None
    rounding: Rounding = "none"
    precision: int = Field(3, ge=0, le=6)
    speed: float = Field(1.0, gt=0)
    depots: list[Depot]
    clients: list[Client] = Field(default_factory=list)
    groups: list[Group] = Field(default_factory=list)
    shipments: list[Shipment] = Field(default_factory=list)
    vehicle_types: list[VehicleType]
    objective: Objective = "total_distance"
    sequences: list[list[Id]] = Field(default_factory=list)
    """Visit orders: the clients of each list that share a route are visited in the list's order."""
    min_collect: list[float] | None = None
    """The routes together pick up at least this much (per load dimension) from the clients they
    visit (a purchase quota)."""

    _clock: float | None = PrivateAttr(default=None)
    """When the request's time limit began (``time.perf_counter``): set by the routing kind when
    it reads a file or first validates a spec, so that reading and building count against the
    limit too. Not part of the spec's data (nor of its schema)."""

    @model_validator(mode="after")
    def _check(self) -> RoutingSpec:
        errors = check_spec(self)
        if errors:
            raise ValueError("\n".join(errors))
        return self

    # -- derived values ----------------------------------------------------------------------
    @cached_property
    def index(self) -> dict[Id, int]:
        """Location id -> row of the matrices."""
        return {loc.id: i for i, loc in enumerate(self.locations)}

    @cached_property
    def client_by_id(self) -> dict[Id, Client]:
        """Client id -> client (ids are unique, see ``check_spec``)."""
        return {c.id: c for c in self.clients}

    @cached_property
    def depot_by_id(self) -> dict[Id, Depot]:
        """Depot id -> depot (the first, should a spec repeat one)."""
        out: dict[Id, Depot] = {}
        for d in self.depots:
            out.setdefault(d.id, d)
        return out

    @cached_property
    def shipment_by_name(self) -> dict[str, Shipment]:
        """Shipment name -> shipment (the first, should a spec repeat a name)."""
        out: dict[str, Shipment] = {}
        for s in self.shipments:
            out.setdefault(s.name, s)
        return out

    @property
    def scale(self) -> int:
        """Integer scaling factor for PyVRP: 1 for ``nearest`` and ``ceil``, 10 for ``dimacs``,
        ``10**precision`` otherwise."""
        return {"nearest": 1, "ceil": 1, "dimacs": 10}.get(self.rounding, 10**self.precision)

    @cached_property
    def distances(self) -> np.ndarray:
        """The distance matrix in the spec's units, after ``rounding``."""
        d = self.compute_distances()
        assert d is not None  # no deadline: always computed
        return d

    def compute_distances(
        self, deadline: float | None = None, rest: float = 0.0
    ) -> np.ndarray | None:
        """``distances``, computed from the coordinates a block of rows at a time
        (``formalizers.routing.distances.euclidean``); None (and nothing kept) as soon as the
        blocks done show that the matrix, and then ``rest`` times the time it took for the work
        that follows, would not be done by ``deadline`` (a ``time.perf_counter`` instant). The
        complete matrix is cached as ``distances``."""
        if "distances" in self.__dict__:
            cached: np.ndarray = self.__dict__["distances"]
            return cached
        if self.distance_matrix is not None:
            d: np.ndarray | None = round_distances(
                np.array(self.distance_matrix, dtype=float), self.rounding
            )
        else:
            x = np.array([loc.x for loc in self.locations], dtype=float)
            y = np.array([loc.y for loc in self.locations], dtype=float)
            d = euclidean(x, y, self.rounding, deadline, rest)
            if d is None:
                return None
        self.__dict__["distances"] = d
        return d

    @cached_property
    def durations(self) -> np.ndarray:
        """The travel-time matrix in the spec's time units (the distance matrix itself when
        travel takes one time unit per distance unit; neither is ever modified)."""
        if self.duration_matrix is not None:
            return np.asarray(self.duration_matrix, dtype=float)
        if self.speed == 1:
            return self.distances
        return self.distances / self.speed

    def vehicle_name(self, k: int) -> str:
        return self.vehicle_types[k].name or f"vehicle type {k}"

    def start_of(self, vt: VehicleType) -> Id:
        return vt.start_depot if vt.start_depot is not None else self.depots[0].id

    def end_of(self, vt: VehicleType) -> Id:
        return vt.end_depot if vt.end_depot is not None else self.start_of(vt)

    def recharges_of(self, vt: VehicleType) -> set[Id]:
        """The depots where vehicles of type ``vt`` recharge: those it names, else every depot but
        those that are only end depots (some type's end and no type's start: often a dummy "end"
        at distance 0 from everywhere, which would recharge for free on the way)."""
        if vt.recharge_depots is not None:
            return set(vt.recharge_depots)
        starts = {self.start_of(v) for v in self.vehicle_types}
        ends = {self.end_of(v) for v in self.vehicle_types}
        return {d.id for d in self.depots if d.id in starts or d.id not in ends}

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_defaults=True)


def _dims(values: list[float]) -> int:
    return len(values)


def check_spec(spec: RoutingSpec) -> list[str]:
    """Every problem with ``spec`` that the schema alone does not catch, one sentence each."""
    errs: list[str] = []
    n = len(spec.locations)
    ids = [loc.id for loc in spec.locations]
    if len(set(ids)) != n:
        dup = sorted({str(i) for i in ids if ids.count(i) > 1})
        errs.append(f"location ids must be unique; repeated: {', '.join(dup[:10])}")
    if n > MAX_LOCATIONS:
        errs.append(f"{n} locations is more than the {MAX_LOCATIONS:,} this solver path accepts")
        return errs
    known = set(ids)
    for name in ("distance_matrix", "duration_matrix"):
        m = getattr(spec, name)
        if m is None:
            continue
        if len(m) != n or any(len(row) != n for row in m):
            shape = f"{len(m)} rows of lengths {sorted({len(r) for r in m})}"
            errs.append(
                f"{name} must be square with one row and column per location ({n} x {n}); it has {shape}"
            )
        elif any(v < 0 or not math.isfinite(v) for row in m for v in row):
            errs.append(f"{name} has a negative or non-finite entry")
        elif (
            max((max(row, default=0.0) for row in m), default=0.0) * spec.scale
            > MAX_SCALED_DISTANCE
        ):
            errs.append(
                f"{name} has an entry over {MAX_SCALED_DISTANCE / spec.scale:g}, more than the "
                f"solver's integers hold at scale {spec.scale} (use larger units, or a lower "
                "precision)"
            )
    far = [
        str(loc.id)
        for loc in spec.locations
        if any(v is not None and not abs(v) <= MAX_COORDINATE for v in (loc.x, loc.y))
    ]
    if far:
        errs.append(
            f"location coordinates must be finite numbers of at most {MAX_COORDINATE:g} in absolute "
            f"value; not so for: {', '.join(far[:10])}"
        )
    errs += _non_finite(spec)
    xs = [loc.x for loc in spec.locations if loc.x is not None and abs(loc.x) <= MAX_COORDINATE]
    ys = [loc.y for loc in spec.locations if loc.y is not None and abs(loc.y) <= MAX_COORDINATE]
    if (
        spec.distance_matrix is None  # coordinates beside a matrix are only drawn
        and xs
        and ys
        and math.hypot(max(xs) - min(xs), max(ys) - min(ys)) * spec.scale > MAX_SCALED_DISTANCE
    ):
        errs.append(
            f"the locations span more than {MAX_SCALED_DISTANCE / spec.scale:g}, more than the "
            f"solver's integers hold at scale {spec.scale} (use larger units, or a lower precision)"
        )
    if spec.distance_matrix is None:
        missing = [str(loc.id) for loc in spec.locations if loc.x is None or loc.y is None]
        if missing:
            errs.append(
                "without a distance_matrix every location needs x and y; missing for: "
                + ", ".join(missing[:10])
            )
    if not spec.depots:
        errs.append("there must be at least one depot")
    if not spec.vehicle_types:
        errs.append("there must be at least one vehicle type")

    def ref(what: str, i: Id) -> None:
        if i not in known:
            errs.append(f"{what} refers to location {i!r}, which is not in locations")

    depot_ids = {d.id for d in spec.depots}
    for d in spec.depots:
        ref(f"depot {d.id!r}", d.id)
        if d.tw_late is not None and d.tw_late < d.tw_early:
            errs.append(
                f"depot {d.id!r}: its time window ends ({d.tw_late}) before it starts ({d.tw_early})"
            )
    dims = {_dims(c.demand) for c in spec.clients if c.demand} | {
        _dims(c.pickup) for c in spec.clients if c.pickup
    }
    dims |= {_dims(s.amount) for s in spec.shipments if s.amount}
    dims |= {_dims(v.capacity) for v in spec.vehicle_types if v.capacity}
    if len(dims) > 1:
        errs.append(
            f"demands, amounts and capacities must all have the same number of load dimensions; found {sorted(dims)}"
        )
    group_names = {g.name for g in spec.groups}
    seen: set[Id] = set()
    for c in spec.clients:
        who = f"client {c.id!r}"
        ref(who, c.id)
        if c.id in seen:
            errs.append(f"{who} appears twice; each location holds at most one client")
        seen.add(c.id)
        if c.id in depot_ids:
            errs.append(f"{who} is at a depot's location; give it a location of its own")
        if any(v < 0 for v in c.demand) or any(v < 0 for v in c.pickup):
            errs.append(f"{who} has a negative demand or pickup; loads must be zero or more")
        if c.tw_late is not None and c.tw_late < c.tw_early:
            errs.append(
                f"{who}: its time window ends ({c.tw_late}) before it starts ({c.tw_early})"
            )
        if c.service < 0 or c.prize < 0 or c.cost < 0:
            errs.append(f"{who}: service time, prize and cost must be zero or more")
        if c.group is not None and c.group not in group_names:
            errs.append(f"{who} is in group {c.group!r}, which is not in groups")
    for s in spec.shipments:
        who = f"shipment {s.name!r}"
        ref(f"{who} (pickup)", s.pickup)
        ref(f"{who} (delivery)", s.delivery)
        if any(v < 0 for v in s.amount):
            errs.append(f"{who} has a negative amount")
        for end, tw in (("pickup", s.pickup_tw), ("delivery", s.delivery_tw)):
            if tw is not None and tw[1] < tw[0]:
                errs.append(
                    f"{who}: its {end} time window ends ({tw[1]}) before it starts ({tw[0]})"
                )
    client_ids = {c.id for c in spec.clients}
    for seq in spec.sequences:
        strangers = [str(i) for i in seq if i not in client_ids]
        if strangers:
            errs.append(
                f"sequence {seq} names locations that are not clients: {', '.join(strangers)}"
            )
    for g in spec.groups:
        if not any(c.group == g.name for c in spec.clients):
            errs.append(f"group {g.name!r} has no clients")
    for k, v in enumerate(spec.vehicle_types):
        who = spec.vehicle_name(k)
        if v.count is not None and v.count < 1:
            errs.append(f"{who}: count must be at least 1 (leave it out for as many as needed)")
        if v.count is not None and v.count > MAX_VEHICLES:
            errs.append(
                f"{who}: count {v.count:,} is more than the {MAX_VEHICLES:,} vehicles of a type "
                "this service takes (leave it out for as many as needed)"
            )
        if any(q < 0 for q in v.capacity):
            errs.append(f"{who}: capacity must be zero or more")
        refs: list[tuple[str, Id | None]] = [
            ("start_depot", v.start_depot),
            ("end_depot", v.end_depot),
            *(("reload_depots", r) for r in v.reload_depots),
            *(("recharge_depots", r) for r in v.recharge_depots or ()),
        ]
        for what, dep in refs:
            if dep is not None and dep not in depot_ids:
                errs.append(f"{who}: {what} {dep!r} is not a depot")
        if v.allowed_clients is not None and (
            strangers := [str(i) for i in v.allowed_clients if i not in client_ids]
        ):
            errs.append(f"{who}: allowed_clients names non-clients: {', '.join(strangers)}")
        if v.tw_late is not None and v.tw_late < v.tw_early:
            errs.append(f"{who}: its shift ends ({v.tw_late}) before it starts ({v.tw_early})")
        for what, lim in (("max_distance", v.max_distance), ("max_duration", v.max_duration)):
            if lim is not None and lim < 0:
                errs.append(f"{who}: {what} must be zero or more")
        energy = v.max_distance_between_recharges
        if energy is not None and not (energy > 0 and math.isfinite(energy)):
            errs.append(
                f"{who}: max_distance_between_recharges (its energy) must be a positive number; "
                f"it is {energy:g} (leave it out for no energy limit)"
            )
        if v.recharge_depots is not None and energy is None:
            errs.append(
                f"{who}: recharge_depots is given without max_distance_between_recharges; "
                "give the energy limit or leave recharge_depots out"
            )
    return errs


def _non_finite(spec: RoutingSpec) -> list[str]:
    """A sentence for each part of ``spec`` with a NaN or infinite number (coordinates and the
    matrices are checked on their own)."""
    out: list[str] = []

    def check(who: str, values: Any) -> None:
        bad = [v for v in values if v is not None and not math.isfinite(v)]
        if bad:
            out.append(
                f"{who} has a value that is not a finite number ({bad[0]}); leave a limit out "
                "rather than making it infinite"
            )

    check("speed", [spec.speed])
    check("min_collect", spec.min_collect or [])
    for d in spec.depots:
        check(f"depot {d.id!r}", [d.tw_early, d.tw_late])
    for c in spec.clients:
        check(
            f"client {c.id!r}",
            [*c.demand, *c.pickup, c.tw_early, c.tw_late, c.service, c.prize, c.cost],
        )
    for s in spec.shipments:
        check(
            f"shipment {s.name!r}",
            [
                *s.amount,
                *(s.pickup_tw or ()),
                *(s.delivery_tw or ()),
                s.pickup_service,
                s.delivery_service,
                s.prize,
            ],
        )
    for k, v in enumerate(spec.vehicle_types):
        check(
            spec.vehicle_name(k),
            [*v.capacity, v.max_distance, v.max_duration, v.fixed_cost, v.tw_early, v.tw_late],
        )
    return out


def parse_spec(data: Any) -> RoutingSpec:
    """A ``RoutingSpec`` from JSON data or text. Raises ``ArtifactError("schema")`` listing every
    problem, and refuses more than ``MAX_CLIENTS`` clients before building anything."""
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except json.JSONDecodeError as e:
            raise ArtifactError(
                "parse",
                [Diagnostic(f"line {e.lineno}, column {e.colno}", e.msg)],
                f"the routing spec is not valid JSON: {e.msg}",
            ) from e
    if not isinstance(data, dict):
        raise ArtifactError("schema", [Diagnostic("spec", "a routing spec is a JSON object")])
    sizes = {
        k: len(v)
        for k in ("clients", "shipments", "locations")
        if isinstance(v := data.get(k), list)
    }
    count = sizes.get("clients", 0) + sizes.get("shipments", 0)
    if count > MAX_CLIENTS or sizes.get("locations", 0) > MAX_LOCATIONS:
        raise ArtifactError(
            "too_large",
            [
                Diagnostic(
                    "clients",
                    f"{count:,} clients and shipments ({sizes.get('locations', 0):,} locations) is more "
                    f"than this service solves: at most {MAX_CLIENTS:,} clients and {MAX_LOCATIONS:,} locations",
                    "split the request into regions",
                )
            ],
        )
    try:
        return RoutingSpec.model_validate(data)
    except ValidationError as e:
        raise ArtifactError(
            "schema", schema_diagnostics(e, "spec"), "the routing spec is invalid:"
        ) from e
