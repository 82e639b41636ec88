"""Start states that contradict themselves: exclusion groups found from a domain's actions
(formalizers.pddl.invariants), and the infeasible-plan diagnosis that names a breach first."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.agent import Agent
from agent.config import Config
from agent.errors import ArtifactError
from agent.kinds.base import Options
from agent.kinds.pddl import CONTRADICTION, PddlKind, _library_references
from agent.types import Request
from conftest import FIXTURES
from formalizers.base import Artifact
from formalizers.pddl import library
from formalizers.pddl.formalizer import PlanningTask, extract_pddl
from formalizers.pddl.invariants import Group, contradictions, exclusion_groups
from formalizers.pddl.model import Domain, Problem, read_domain, read_problem
from formalizers.pddl.simulate import _Sim
from solvers import planning
from solvers.base import SolveResult, Status

PDDL = FIXTURES / "pddl"

LAMPS = """(define (domain lamps)
  (:requirements :strips)
  (:predicates (lit ?l) (dark ?l) (powered))
  (:action switch-on :parameters (?l)
    :precondition (and (dark ?l) (powered)) :effect (and (lit ?l) (not (dark ?l))))
  (:action switch-off :parameters (?l)
    :precondition (lit ?l) :effect (and (dark ?l) (not (lit ?l)))))"""
"""A domain of no library, with names of its own: each lamp is lit or dark."""


def _groups(key: str) -> set[str]:
    lib = library.find(key)
    assert lib is not None
    return {g.render() for g in exclusion_groups(lib.domain)}


def _with_init(text: str, *facts: str) -> str:
    """``text`` with ``facts`` added first under :init, each on a line of its own."""
    head, rest = text.split("(:init", 1)
    return head + "(:init\n" + "\n".join(facts) + "\n" + rest


@pytest.mark.parametrize(
    ("key", "groups"),
    [
        (
            "blocksworld",
            {
                "at most one of (arm-empty), (holding *)",
                "at most one of (holding x), (on x *), (on-table x)",
                "at most one of (clear x), (holding x), (on * x)",
            },
        ),
        (
            "grippers",
            {"at most one of (at-robby x *)", "at most one of (carry x * y), (free x y)"},
        ),
        (
            "storage",
            {
                "at most one of (at x *)",
                "at most one of (available x), (lifting x *)",
                "at most one of (lifting * x), (on x *)",
            },
        ),
        (
            "tyreworld",
            {
                "at most one of (closed x), (open x)",
                "at most one of (fastened x), (unfastened x)",
                "at most one of (free x), (on * x)",
                "at most one of (not-on-ground x), (on-ground x)",
                "at most one of (loose * x), (tight * x), (unfastened x)",
                "at most one of (have x), (in x *), (loose x *), (on x *), (tight x *)",
            },
        ),
    ],
)
def test_the_groups_found_are_exactly_those_the_actions_keep(key: str, groups: set[str]) -> None:
    # blocksworld: the arm, where a block is, what is on a block; gripper: a robot in one room, a
    # gripper free or carrying one ball; no group that an action could break (stack adds (clear
    # ?ob) and (arm-empty) at once, so no group holds both)
    assert _groups(key) == groups


def test_a_count_over_all_objects_is_not_kept_beside_the_per_object_group() -> None:
    # switch-on also never raises the count of lit-or-dark lamps in all; that count is no exclusion
    assert {g.render() for g in exclusion_groups(read_domain(LAMPS))} == {
        "at most one of (dark x), (lit x)"
    }


def _valid_tasks() -> list[tuple[str, str, str, str]]:
    """(name, domain text, problem text, library key) of start states known to be right."""
    out = []
    for key, lib in library.library().items():
        if _library_references(key):  # the floortile example names undeclared objects
            out.append((f"{key}-example", lib.text, lib.example_problem, key))
    for name in (
        "blocksworld_p01",
        "blocksworld_p08",
        "floortile_p01",
        "grippers_p01",
        "storage_p01",
        "tyreworld_p20",
    ):
        key = name.split("_")[0]
        found = library.find(key)
        assert found is not None
        out.append((name, found.text, (PDDL / f"{name}.pddl").read_text(), key))
    for domain, problem in (
        ("ipc04_philosophers_domain", "ipc04_philosophers_p01"),
        ("ipc08_elevators_domain", "ipc08_elevators_p8_9_1"),
        ("ipc08_transport_domain", "ipc08_transport_p01"),
    ):
        out.append(
            (
                problem,
                (PDDL / f"{domain}.pddl").read_text(),
                (PDDL / f"{problem}.pddl").read_text(),
                "",
            )
        )
    return out


@pytest.mark.parametrize(("name", "domain", "problem", "key"), _valid_tasks())
def test_a_right_start_state_shows_no_contradiction(
    name: str, domain: str, problem: str, key: str
) -> None:
    dom = read_domain(domain)
    prob = read_problem(problem, dom)
    refs = _library_references(key) if key else ()
    assert contradictions(dom, prob, refs) == [], name
    assert contradictions(dom, prob) == [], name  # no reference: the state's own evidence


def test_an_arm_both_empty_and_holding_is_named_with_its_lines() -> None:
    lib = library.find("blocksworld")
    assert lib is not None
    text = _with_init(lib.example_problem, "(holding b3)")
    prob = read_problem(text, lib.domain)
    found = contradictions(lib.domain, prob, _library_references("blocksworld"))
    facts = [set(c.facts) for c in found]
    assert {"(arm-empty)", "(holding b3)"} in facts
    # b3 is also clear (held and clear at once) and on b2 (held and on a block at once)
    assert {"(holding b3)", "(clear b3)"} in facts
    assert {"(holding b3)", "(on b3 b2)"} in facts
    arm = next(c for c in found if set(c.facts) == {"(arm-empty)", "(holding b3)"})
    text_ = arm.text()
    assert "pickup adds (holding ?ob) and deletes (arm-empty)" in text_
    line_of = {ln.strip(): i for i, ln in enumerate(text.splitlines(), 1)}
    assert (
        f"has both (holding b3), at line {line_of['(holding b3)']}, column 1, and (arm-empty), "
        f"at line {line_of['(arm-empty)']}, column 1, which this domain's actions never allow"
    ) in text_
    assert "remove (holding b3) or (arm-empty) from :init" in arm.hint()


def test_a_robot_in_two_rooms_is_named() -> None:
    lib = library.find("grippers")
    assert lib is not None
    prob = read_problem(_with_init(lib.example_problem, "(at-robby robot1 room4)"), lib.domain)
    found = contradictions(lib.domain, prob, _library_references("grippers"))
    assert [set(c.facts) for c in found] == [{"(at-robby robot1 room4)", "(at-robby robot1 room2)"}]
    assert "move adds (at-robby ?r ?to) and deletes (at-robby ?r ?from)" in found[0].text()


def test_a_domain_of_no_library_is_checked_on_its_own_evidence() -> None:
    dom = read_domain(LAMPS)
    problem = """(define (problem three) (:domain lamps) (:objects l1 l2 l3 l4)
      (:init (powered) (lit l1) (dark l2) (dark l3) (lit l3) (dark l4))
      (:goal (lit l2)))"""
    found = contradictions(dom, read_problem(problem, dom))
    assert [c.facts for c in found] == [["(dark l3)", "(lit l3)"]]
    assert "switch-on adds (lit ?l) and deletes (dark ?l)" in found[0].text()
    # one lamp alone shows nothing of what the domain means: no reference, no report
    lone = problem.replace("(lit l1) (dark l2) ", "").replace("(dark l4)", "")
    assert contradictions(dom, read_problem(lone.replace("(lit l2)", "(lit l3)"), dom)) == []


def test_a_count_a_right_state_breaks_is_not_called_a_contradiction() -> None:
    # floortile: moving a robot keeps the number of clear tiles, and every task has many
    lib = library.find("floortile")
    assert lib is not None
    assert "at most one of (clear *)" in _groups("floortile")
    prob = read_problem((PDDL / "floortile_p01.pddl").read_text(), lib.domain)
    assert contradictions(lib.domain, prob) == []
    # while a robot standing on a clear tile is a breach of the per-tile group the state keeps
    robot_on_clear = _with_init((PDDL / "floortile_p01.pddl").read_text(), "(clear tile_4-1)")
    assert "(robot-at robot1 tile_4-1)" in robot_on_clear
    found = contradictions(lib.domain, read_problem(robot_on_clear, lib.domain))
    assert [set(c.facts) for c in found] == [{"(clear tile_4-1)", "(robot-at robot1 tile_4-1)"}]


def _infeasible(monkeypatch: pytest.MonkeyPatch, text: str) -> tuple[PddlKind, object, SolveResult]:
    def no_plan(*args: object, **kw: object) -> SolveResult:
        return SolveResult(Status.INFEASIBLE, "test", message="no plan exists")

    monkeypatch.setattr(planning, "run_planner", no_plan)
    kind = PddlKind()
    lib = library.find("blocksworld")
    assert lib is not None
    art = Artifact("pddl", "pddl", PlanningTask(lib.text, text, lib.key), text)
    validated = kind.validate(art, Options())
    return kind, validated, kind.solve(validated, Options())


def test_the_repair_feedback_names_the_contradiction_first(monkeypatch: pytest.MonkeyPatch) -> None:
    lib = library.find("blocksworld")
    assert lib is not None
    text = _with_init(lib.example_problem, "(holding b3)")
    kind, validated, result = _infeasible(monkeypatch, text)
    assert result.diagnosis is not None
    first = result.diagnosis.members[0]
    assert first["name"] == CONTRADICTION
    assert "(holding b3)" in result.diagnosis.summary
    err = kind.problem(validated, result, None)  # type: ignore[arg-type]
    assert isinstance(err, ArtifactError) and err.kind == "infeasible"
    assert "contradicts itself" in err.summary
    d = err.diagnostics[0]
    assert d.location.startswith("init, line ")
    assert "(holding b3)" in d.message and "never allow together" in d.message
    assert "remove (holding b3) or" in d.hint
    assert "(holding b3)" in err.feedback()
    explained = kind.explain(validated, result, None)  # type: ignore[arg-type]
    assert "the start state has both (holding b3)" in explained


def test_without_a_contradiction_the_feedback_is_as_before(monkeypatch: pytest.MonkeyPatch) -> None:
    lib = library.find("blocksworld")
    assert lib is not None
    kind, validated, result = _infeasible(monkeypatch, lib.example_problem)
    err = kind.problem(validated, result, None)  # type: ignore[arg-type]
    assert isinstance(err, ArtifactError)
    assert "check the initial facts" in err.summary
    assert all(CONTRADICTION not in d.message for d in err.diagnostics)


def test_the_parse_hint_asks_for_the_bare_define_form() -> None:
    with pytest.raises(ArtifactError) as e:
        extract_pddl("Here is the plan you asked for.")
    hint = e.value.diagnostics[0].hint
    assert "```" not in hint
    assert "(define (problem NAME)" in hint and "no fences" in hint


def _walk(
    dom: Domain, prob: Problem, seed: int, steps: int
) -> list[set[tuple[str, tuple[str, ...]]]]:
    """The states of a random walk of applicable steps from ``prob``'s start state, stepped by the
    plan simulator (which shares no code with the invariant check)."""
    rng = random.Random(seed)
    sim = _Sim(dom, prob)
    states = [set(sim.state)]
    for _ in range(steps):
        applicable = []
        for action in dom.actions.values():
            domains = [sim.of_type(types) for _, types in action.params]
            for args in itertools.product(*domains):
                env = {var: obj for (var, _), obj in zip(action.params, args, strict=True)}
                if action.precondition is None or sim.holds(action.precondition, env):
                    applicable.append((action, env))
        if not applicable:
            break
        action, env = rng.choice(applicable)
        adds: list[tuple[str, tuple[str, ...]]] = []
        dels: list[tuple[str, tuple[str, ...]]] = []
        if action.effect is not None:
            sim.effects(action.effect, env, adds, dels, [])
        sim.state.difference_update(dels)
        sim.state.update(adds)
        sim.derive()
        states.append(set(sim.state))
    return states


WALKED = [key for key in sorted(library.library()) if _library_references(key)]
"""The library domains whose example start state reads (the random walks start there)."""


@pytest.mark.parametrize("key", WALKED)
@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_no_state_the_actions_reach_breaks_a_group_the_start_keeps(key: str, seed: int) -> None:
    # The soundness of the check: a group is kept by every action, so a start state that keeps
    # it leads only to states that keep it (and none is ever called a contradiction).
    lib = library.find(key)
    assert lib is not None
    dom = lib.domain
    (start,) = _library_references(key)
    groups = [
        g
        for g in exclusion_groups(dom)
        if all(len(v) < 2 for v in _by_instance(g, start.init).values())
    ]
    for state in _walk(dom, start, seed, 12):
        for g in groups:
            crowded = [v for v in _by_instance(g, state).values() if len(v) > 1]
            assert not crowded, (g.render(), crowded)
        reached = Problem(start.name, start.domain_name, start.objects, sorted(state))
        assert contradictions(dom, reached, (start,)) == []


def _by_instance(
    g: Group, facts: object
) -> dict[tuple[str, ...], list[tuple[str, tuple[str, ...]]]]:
    out: dict[tuple[str, ...], list[tuple[str, tuple[str, ...]]]] = {}
    for pred, args in set(facts):  # type: ignore[call-overload]
        part = g.part(pred)
        if part is not None and len(args) == len(part.slots):
            out.setdefault(part.instance(args), []).append((pred, args))
    return out


def test_a_planner_proof_of_no_plan_is_explained_by_the_contradiction_first() -> None:
    # The arm is both empty and holding b1, and b2 is never said to be clear: the planner proves
    # no plan exists, and the answer names the contradiction before anything else.
    text = """(define (problem clash) (:domain blocksworld-4ops) (:objects b1 b2)
      (:init (arm-empty) (holding b1) (on-table b2))
      (:goal (on b1 b2)))"""
    answer = Agent(config=Config(cache="", time_limit=30)).solve(Request(text, "p.pddl"))
    assert answer.status is Status.INFEASIBLE
    assert answer.diagnosis is not None
    first = answer.diagnosis.members[0]
    assert first["name"] == CONTRADICTION
    assert first["facts"] == "(arm-empty) (holding b1)"
    assert "line 2" in first["location"]
    assert "both (arm-empty)" in answer.explanation
