"""Routing requests (TSP family, CVRP, VRPTW, multi-depot, prize-collecting, pickup and delivery):
routing specs, VRPLIB/TSPLIB/Solomon files, PyVRP or the exact solver, and an independent route
check.

The kind wires the routing language to its backends: a spec goes to the first of the kind's
backends (``agent.kinds``' entry: PyVRP, then the exact solver) whose declaration
(``solvers.base.Supports``) takes every feature it uses (``formalizers.routing.feasibility``), and
is ``unsupported`` when none does, naming what each lacks."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

from agent.errors import ArtifactError, Diagnostic
from agent.kinds.base import Kind, Options, verification_failure
from agent.llm.chat import Chat
from formalizers.base import Artifact
from formalizers.offline.routing_files import (
    ROUTING_SUFFIXES,
    looks_like_routing_spec,
    looks_like_solomon,
    looks_like_vrplib,
    read_routing,
)
from formalizers.routing.feasibility import check_feasible, features, objective_feature
from formalizers.routing.formalizer import RoutingFormalizer
from formalizers.routing.spec import RoutingSpec, parse_spec
from solvers.base import SolveResult, Status, Verification

MAX_ROUTES_SHOWN = 30
"""Routes written out in an explanation; the rest are counted."""

VERIFY_RESERVE_S = 0.1
"""Time kept back from the solver for the independent check, at least (see ``verify_reserve``)."""

VERIFY_S_PER_STOP = 60e-6
"""The check's cost per client or shipment, generously: about 10 microseconds on a free core
(measured at 5,000 clients), times six for a loaded machine."""

ANSWER_S_PER_STOP = 150e-6
"""Writing the answer (the spec and the routes, as JSON or text) per client or shipment: about
0.2 s at 5,000 clients on a free core, 0.75 s loaded. Kept back too: the limit is the wall time
the person waits."""


def verify_reserve(spec: RoutingSpec) -> float:
    """Seconds of the time limit kept back from the solver: for ``verify_routes``, and for
    writing the answer out."""
    stops = len(spec.clients) + 2 * len(spec.shipments)
    return VERIFY_RESERVE_S + (VERIFY_S_PER_STOP + ANSWER_S_PER_STOP) * stops


def deadline(spec: RoutingSpec, options: Options) -> float:
    """The ``time.perf_counter`` instant by which the solver must return: the request's deadline
    (``Options.deadline``; without one, the time limit counted from when its file was read or its
    spec first validated, see ``RoutingSpec._clock``), less the check's reserve."""
    if options.deadline is not None:
        return options.deadline - verify_reserve(spec)
    start = spec._clock if spec._clock is not None else time.perf_counter()
    return start + options.limits.time_s - verify_reserve(spec)


BACKEND_NAMES = {"pyvrp": "PyVRP", "routing-exact": "the exact solver"}
"""How an explanation names a backend (registry name -> words)."""


@dataclass(frozen=True, slots=True)
class Choice:
    """The backend a spec goes to (a ``solvers.registry`` name), the features the spec uses, and
    why the backends before it did not take it ("PyVRP cannot express ..."; empty when none was
    passed over)."""

    backend: str
    features: tuple[str, ...]
    passed_over: str = ""


def _refusal(name: str, used: tuple[str, ...], spec: RoutingSpec) -> tuple[list[str], str]:
    """What backend ``name``'s declaration does not take of ``spec``: the features it lacks, in
    the order of ``used``, else the reason its check gives ("" when it takes the spec)."""
    from solvers.registry import declaration

    supports = declaration(name)
    missing = [f for f in used if f not in supports.features]
    if missing or supports.check is None:
        return missing, ""
    return [], supports.check(spec) or ""


def choose_backend(spec: RoutingSpec) -> Choice:
    """The first of the routing kind's backends whose declaration takes ``spec``. Raises
    ``ArtifactError("unsupported")`` when none does, naming what each lacks."""
    from agent.kinds import entry

    used = features(spec)
    refused: list[tuple[str, list[str], str]] = []
    for name in entry("routing").backends:
        missing, why = _refusal(name, used, spec)
        if not missing and not why:
            passed = "; ".join(_lacks(n, m, w) for n, m, w in refused)
            return Choice(name, used, passed)
        refused.append((name, missing, why))
    first = refused[0][1]
    objective = objective_feature(spec.objective)
    what = " and ".join(first) or "this spec"
    hint = (
        "use total_distance if the request allows it"
        if objective in first
        else "split the request into smaller ones"
        if refused[-1][2]
        else "leave out what the backends do not take, if the request allows it"
    )
    raise ArtifactError(
        "unsupported",
        [
            Diagnostic(
                "objective" if objective in first else "spec",
                f"{what} is not supported for this spec: "
                + "; ".join(_lacks(n, m, w) for n, m, w in refused),
                hint,
            )
        ],
    )


def _lacks(name: str, missing: list[str], why: str) -> str:
    who = BACKEND_NAMES.get(name, name)
    if missing:
        return f"{who} cannot express {' and '.join(missing)}"
    return f"{who} does not take {why}"


class RoutingKind(Kind):
    """Routing specs (JSON), VRPLIB/TSPLIB ``.vrp``/``.tsp`` files and Solomon files; solved by
    PyVRP or the exact solver (``choose_backend``), re-checked by ``solvers.routing_verify``."""

    name = "routing"
    follow_up = (
        'the request is formalized again with the follow-up: "now with 2 vehicles", '
        '"what if each van carries at most 80?"'
    )
    words: tuple[str, ...] = (
        "route",
        "routing",
        "depot",
        "salesman",
        "tsp",
        "vrp",
        "tour",
        "cities",
        "city",
        "vehicle routing",
        "pickup and delivery",
        "time window",
    )

    def is_formal(self, text: str, name: str) -> bool:
        low = name.lower()
        if low.endswith(ROUTING_SUFFIXES):
            return True
        if low and not low.endswith((".json", ".txt")):
            return False
        return looks_like_routing_spec(text) or looks_like_solomon(text) or looks_like_vrplib(text)

    def read(self, text: str, name: str, options: Options) -> Artifact:
        started = time.perf_counter()
        language, spec = read_routing(text, name)
        spec._clock = started
        return Artifact("routing", language, spec, text)

    def formalizer(self, client: Chat, options: Options) -> RoutingFormalizer:
        return RoutingFormalizer(client)

    def validate(self, artifact: Artifact, options: Options) -> RoutingSpec:
        started = time.perf_counter()
        spec = (
            artifact.model if isinstance(artifact.model, RoutingSpec) else parse_spec(artifact.text)
        )
        if spec._clock is None:
            spec._clock = started
        choose_backend(spec)  # unsupported before infeasible
        check_feasible(spec)
        return spec

    def solve(self, validated: RoutingSpec, options: Options) -> SolveResult:
        from solvers.registry import solve_with

        choice = choose_backend(validated)
        end = deadline(validated, options)
        result = solve_with(
            choice.backend,
            "routing",
            choice.features,
            validated,
            validated,
            options.limits,
            deadline=end,
        )
        if choice.passed_over and result.routes is not None:
            result = dataclasses.replace(result, message=f"{result.message} ({choice.passed_over})")
        return result

    def verify(
        self, validated: RoutingSpec, result: SolveResult, opts: Options | None = None
    ) -> Verification | None:
        if result.routes is None:
            return None
        from solvers.routing_verify import verify_routes

        # The check may use what the solver left of the limit, its reserve included, and always
        # gets its own share from now: a solver that ran over must not leave a correct answer
        # unverified (the check itself takes about a sixth of that share).
        own = VERIFY_RESERVE_S + VERIFY_S_PER_STOP * (
            len(validated.clients) + 2 * len(validated.shipments)
        )
        limit_end = deadline(validated, opts or Options()) + verify_reserve(validated)
        return verify_routes(validated, result, deadline=max(limit_end, time.perf_counter() + own))

    def explain(
        self, validated: RoutingSpec, result: SolveResult, verification: Verification | None
    ) -> str:
        return explain_routes(validated, result, verification)

    def problem(
        self, validated: RoutingSpec, result: SolveResult, verification: Verification | None
    ) -> ArtifactError | None:
        if verification is not None and not verification.ok:
            return verification_failure(verification, "routes")
        if result.status in (Status.FEASIBLE, Status.OPTIMAL):
            return None
        if result.status is Status.INFEASIBLE:
            return ArtifactError("infeasible", [Diagnostic("routes", result.message)])
        return None  # TIMEOUT, ERROR, UNSUPPORTED: the status stops the loop


_UNITS = {
    "nearest": "each distance rounded to the nearest integer (TSPLIB EUC_2D)",
    "ceil": "each distance rounded up",
    "dimacs": "each distance truncated to one decimal (DIMACS convention)",
    "none": "Euclidean distances as they are",
}


def explain_routes(
    spec: RoutingSpec, result: SolveResult, verification: Verification | None
) -> str:
    """The objective, each route as a list of stops, and the check."""
    if result.routes is None:
        return f"No routes: {result.message}"
    what = {
        "total_distance": "total distance",
        "total_duration": "total duration",
        "prize_minus_cost": "collected prize minus cost",
        "longest_route": "longest route",
        "longest_leg": "longest leg",
    }.get(spec.objective, spec.objective)
    conv = _UNITS[spec.rounding] if spec.distance_matrix is None else "the given distance matrix"
    how = (
        "solved by PyVRP, a heuristic: good, not proven optimal"
        if result.solver == "pyvrp"
        else f"solved by {result.message}"
    )
    lines = [f"{len(result.routes)} route(s), {what} {result.objective:.6g} ({conv}); {how}."]
    if verification is not None:
        lines.append(f"{verification.verdict}: " + verification.message + ".")
    for n, r in enumerate(result.routes[:MAX_ROUTES_SHOWN], 1):
        stops = " -> ".join(str(s[1]) if s[0] == "client" else f"{s[0]} {s[1]}" for s in r["stops"])
        lines.append(f"  route {n} ({r['vehicle']}): {r['start']} -> {stops} -> {r['end']}")
    more = len(result.routes) - MAX_ROUTES_SHOWN
    if more > 0:
        lines.append(f"  ... and {more} more route(s)")
    return "\n".join(lines)
