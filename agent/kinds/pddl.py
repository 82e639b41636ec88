"""Classical planning: PDDL domain + problem, Fast Downward, plan validation, plans in words."""

from __future__ import annotations

import string
from dataclasses import dataclass
from functools import cache
from typing import Any

from agent.errors import ArtifactError, Diagnostic, InputError
from agent.kinds.base import Kind, Options, solver_limits, verify_share
from agent.llm.chat import Chat
from formalizers.base import Artifact
from formalizers.pddl import library
from formalizers.pddl.formalizer import PddlFormalizer, PlanningTask
from formalizers.pddl.invariants import contradictions
from formalizers.pddl.model import Domain, Problem, read_domain, read_problem
from formalizers.pddl.sexpr import SList
from formalizers.pddl.simulate import check_plan, parse_step
from solvers import planning
from solvers.base import POSITIVE_STATUSES, SolveResult, Status, Verification, Violation

COST_TOL = 1e-6
"""The planner's reported plan cost must match the simulated one within COST_TOL * max(1, cost)."""


@dataclass(slots=True)
class ValidatedTask:
    """A planning task whose files passed our checks, read as data for the plan validator."""

    task: PlanningTask
    domain: Domain
    problem: Problem


def _head_is(text: str, kind: str) -> bool:
    low = text.lstrip().lower()
    while low.startswith(";"):
        low = low.split("\n", 1)[1].lstrip() if "\n" in low else ""
    return low.startswith("(define") and f"({kind}" in low[:200].replace(" ", "").replace(
        "\t", ""
    ).replace("\n", "")


def _domain_for(problem_text: str, options: Options) -> tuple[str, str]:
    """The domain text for a problem: given in ``options.extra`` (text or library key), else the
    library domain that the problem's ``(:domain NAME)`` names."""
    given = options.extra.get("domain", "")
    if given:
        if _head_is(given, "domain"):
            return given, ""
        known = _known_domain(given)
        return known.text, known.key
    import re

    m = re.search(r"\(\s*:domain\s+([^\s()]+)", problem_text, re.IGNORECASE)
    lib = library.find(m.group(1)) if m else None
    if lib is None:
        raise InputError(
            "a PDDL problem needs its domain: pass --domain DOMAIN.pddl "
            f"(or name one of the known domains: {', '.join(library.library())})"
        )
    return lib.text, lib.key


def _known_domain(given: str) -> library.LibraryDomain:
    """The library domain named ``given`` (``--domain NAME``); ``InputError`` when there is none,
    or when ``given`` is PDDL text that is not a domain (a problem file passed as the domain)."""
    text = given.strip()
    if text.startswith(("(", ";")) or "\n" in text:
        what = "a problem file" if _head_is(text, "problem") else "PDDL that is not a domain"
        raise InputError(
            f"--domain is {what}, not a domain (it begins {text[:40]!r}); a domain file starts "
            "with (define (domain NAME)"
        )
    lib = library.find(text)
    if lib is None:
        raise InputError(
            f"no domain file given and no known domain called {text[:60]!r}; known: "
            f"{', '.join(library.library())}"
        )
    return lib


class PddlKind(Kind):
    name = "pddl"
    follow_up = (
        'the request is planned again with the follow-up: "now block c must end on the '
        'table", "instead start with the gripper empty"'
    )
    words: tuple[str, ...] = (
        "plan",
        "move",
        "goal",
        "robot",
        "blocks",
        "stack",
        "deliver",
        "gripper",
        "initial state",
        "sequence of actions",
        "tile",
        "tyre",
        "hoist",
        "crate",
    )

    def is_formal(self, text: str, name: str) -> bool:
        return (
            name.lower().endswith(".pddl") or _head_is(text, "problem") or _head_is(text, "domain")
        )

    def read(self, text: str, name: str, options: Options) -> Artifact:
        if _head_is(text, "domain") and not _head_is(text, "problem"):
            raise InputError(
                "this is a domain file; give the problem file, with --domain for this domain"
            )
        domain, key = _domain_for(text, options)
        return Artifact("pddl", "pddl", PlanningTask(domain, text, key), text)

    def formalizer(self, client: Chat, options: Options) -> PddlFormalizer:
        given = options.extra.get("domain", "")
        if given and _head_is(given, "domain"):
            # The model writes only the problem: it cannot repair the person's domain, so a
            # domain the planners cannot take stops the request before any model call.
            try:
                read_domain(given)
            except ArtifactError as e:
                raise InputError(
                    f"the domain file cannot be used ({e.kind}):\n{e.feedback()}"
                ) from e
            return PddlFormalizer(client, None, given)
        if given:
            return PddlFormalizer(client, _known_domain(given))
        return PddlFormalizer(client, library.pick(options.request) if options.request else None)

    def validate(self, artifact: Artifact, options: Options) -> ValidatedTask:
        task: PlanningTask = artifact.model
        lib = library.find(task.library_key) if task.library_key else None
        dom = lib.domain if lib is not None else read_domain(task.domain)
        prob = read_problem(task.problem, dom)
        return ValidatedTask(task, dom, prob)

    def solve(self, validated: ValidatedTask, options: Options) -> SolveResult:
        result = planning.run_planner(
            validated.task.domain,
            validated.task.problem,
            # What is left of the request's time, less the plan simulation's share.
            solver_limits(options, verify_share(options, 0.05, 0.1, 2.0)),
            optimal=options.optimal,
            planner=options.planner,
        )
        if result.status is Status.INFEASIBLE:
            from dataclasses import replace

            from solvers.base import Diagnosis

            hints = start_state_contradictions(validated) + missing_static_facts(
                validated.domain, validated.problem
            )
            summary = result.message + (f"; {hints[0]['text']}" if hints else "")
            result = replace(result, diagnosis=Diagnosis("unreachable", summary, tuple(hints)))
        return result

    def verify(
        self, validated: ValidatedTask, result: SolveResult, opts: Options | None = None
    ) -> Verification | None:
        """Simulate the plan from the initial state (``formalizers.pddl.simulate``, independent of
        the planner) and compare its cost with the cost the planner reported."""
        if result.plan is None:
            return None
        plan = list(result.plan)
        sim = check_plan(validated.domain, validated.problem, plan)
        violations: list[Violation] = []
        if not sim.ok:
            violations.append(
                Violation(f"step {sim.step}" if sim.step else "goal", 1.0, sim.reason)
            )
        elif result.objective is not None:
            gap = abs(sim.cost - result.objective)
            if gap > COST_TOL * max(1.0, abs(sim.cost)):
                violations.append(
                    Violation(
                        "cost",
                        gap,
                        f"the planner reported cost {result.objective:g}, the plan costs "
                        f"{sim.cost:g} ({_counted(sim.unit)})",
                    )
                )
        if not violations:
            message = (
                f"plan of {len(plan)} step(s) checked by simulation: every precondition holds, "
                f"the goal holds at the end, cost {sim.cost:g} ({_counted(sim.unit)})"
            )
        else:
            message = f"plan rejected by simulation: {violations[0].detail}"
        return Verification(
            not violations,
            len(plan) + 1 + (result.objective is not None),
            max((v.amount for v in violations), default=0.0),
            sim.cost,
            tuple(violations),
            message,
        )

    def explain(
        self, validated: ValidatedTask, result: SolveResult, verification: Verification | None
    ) -> str:
        lines = []
        lib = library.find(validated.task.library_key) if validated.task.library_key else None
        if validated.task.experimental:
            lines.append("(Experimental: the planning domain was written by the language model.)")
        if result.plan is not None:
            kind = "An optimal" if result.status is Status.OPTIMAL else "A"
            lines.append(
                f"{kind} plan of {len(result.plan)} step(s)"
                + (
                    f", cost {verification.objective:g}"
                    if verification and verification.objective is not None
                    else ""
                )
                + (" (verified)." if verification and verification.ok else ".")
            )
            templates = lib.templates if lib else {}
            for n, step in enumerate(result.plan, 1):
                lines.append(f"{n:3d}. {describe_step(step, validated.domain, templates)}")
        elif result.status is Status.INFEASIBLE:
            lines.append("No plan reaches the goal from the initial state.")
            if result.diagnosis is not None:
                for m in result.diagnosis.members:
                    lines.append(f"  {m['text']}")
        else:
            lines.append(f"{result.status.value}: {result.message}")
        return "\n".join(lines)

    def problem(
        self, validated: ValidatedTask, result: SolveResult, verification: Verification | None
    ) -> ArtifactError | None:
        if verification is not None and not verification.ok:
            return ArtifactError("verification", [Diagnostic("plan", verification.message)])
        if result.status in POSITIVE_STATUSES:
            return None
        if result.status is Status.INFEASIBLE:
            members = result.diagnosis.members if result.diagnosis else ()
            diags = [
                Diagnostic(m.get("location", "init"), m["text"], m.get("hint", "")) for m in members
            ]
            if any(m.get("name") == CONTRADICTION for m in members):
                summary = (
                    "no plan exists from this initial state to this goal, and the initial state "
                    "contradicts itself: it lists facts that this domain's actions never allow "
                    "together; remove the ones the request does not describe"
                )
            else:
                summary = (
                    "no plan exists from this initial state to this goal; check the initial "
                    "facts, e.g. connections between places or tiles, and that the goal is what "
                    "was asked"
                )
            return ArtifactError(
                "infeasible", diags or [Diagnostic("init", "check the initial facts")], summary
            )
        return None  # TIMEOUT, ERROR, UNSUPPORTED: the status stops the loop


def _counted(unit: bool) -> str:
    return "one per step: no (:metric minimize (total-cost))" if unit else "sum of action costs"


def describe_step(step: str, dom: Domain, templates: dict[str, str]) -> str:
    """One plan step in words, from the domain's template for the action (the step itself if none)."""
    name, args = parse_step(step)
    action = dom.actions.get(name)
    tmpl = templates.get(name)
    if action is None or tmpl is None or len(args) != len(action.params):
        return step
    values = {var.lstrip("?"): arg for (var, _), arg in zip(action.params, args, strict=True)}
    try:
        return string.Formatter().vformat(tmpl, (), values)
    except (KeyError, IndexError, ValueError):
        return step


CONTRADICTION = "contradiction"
"""The ``name`` of a diagnosis member for facts of the start state that exclude each other."""


@cache
def _library_references(key: str) -> tuple[Problem, ...]:
    """The library domain's example start state, known to be right (none if it does not read)."""
    lib = library.find(key)
    if lib is None:
        return ()
    try:
        return (read_problem(lib.example_problem, lib.domain),)
    except ArtifactError:
        return ()


def start_state_contradictions(validated: ValidatedTask) -> list[dict[str, str]]:
    """Facts of the start state that the domain's actions never allow together
    (``formalizers.pddl.invariants``), as diagnosis members with the facts to remove; a start
    state that no plan could have produced is the likeliest reason for no plan."""
    key = validated.task.library_key
    refs = _library_references(key) if key else ()
    out = []
    for c in contradictions(validated.domain, validated.problem, refs):
        first = next((w for w in c.lines if w), "")
        out.append(
            {
                "name": CONTRADICTION,
                "facts": " ".join(c.facts),
                "location": f"init, {first}" if first else "init",
                "text": c.text(),
                "hint": c.hint(),
            }
        )
    return out


def missing_static_facts(dom: Domain, prob: Problem) -> list[dict[str, str]]:
    """Predicates that no action changes, that some action needs, and that the initial state never
    mentions: the usual reason a model-written problem has no plan (floortile without connections)."""
    changed: set[str] = set()
    needed: dict[str, list[str]] = {}

    def walk(f: Any, effect: bool, action: str, positive: bool = True) -> None:
        if not isinstance(f, SList) or not f.items:
            return
        head = f.head()
        if head in ("and", "or", "imply"):
            for g in f.items[1:]:
                walk(g, effect, action, positive)
        elif head == "not":
            walk(f.items[1], effect, action, not positive)
        elif head in ("forall", "exists"):
            walk(f.items[2], effect, action, positive)
        elif head == "when":
            walk(f.items[1], False, action, positive)
            walk(f.items[2], True, action, positive)
        elif head not in ("=", "increase", "decrease"):
            if effect:
                changed.add(head)
            elif positive:
                needed.setdefault(head, []).append(action)

    for a in dom.actions.values():
        walk(a.precondition, False, a.name)
        walk(a.effect, True, a.name)
    present = {pred for pred, _ in prob.init}
    derived = dom.derived  # computed from the state, never listed in :init
    out = []
    for pred, actions in sorted(needed.items()):
        if pred not in changed and pred not in present and pred not in derived:
            acts = ", ".join(sorted(set(actions)))
            out.append(
                {
                    "name": pred,
                    "text": f"the initial state has no ({pred} ...) facts, but action(s) {acts} need them "
                    "and no action makes them true",
                    "hint": f"list every true ({pred} ...) fact in :init",
                }
            )
    return out
