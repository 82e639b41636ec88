"""Plan validation we can trust: our simulator is the validator (costs, undefined function values,
derived predicates), the planner's reported cost is checked, and PDDL the planners do not take is
refused by the name of the feature."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.agent import Agent
from agent.config import Config
from agent.errors import ArtifactError
from agent.kinds.base import Options
from agent.kinds.pddl import PddlKind
from agent.types import Request
from conftest import FIXTURES
from formalizers.base import Artifact
from formalizers.pddl.formalizer import PlanningTask
from formalizers.pddl.model import read_domain, read_problem
from formalizers.pddl.simulate import check_plan
from solvers.base import Limits, SolveResult, Status

PDDL = FIXTURES / "pddl"
REPO = Path(__file__).resolve().parents[3]

COSTED = [
    ("ipc08_elevators_domain.pddl", "ipc08_elevators_p8_9_1.pddl"),
    ("ipc08_transport_domain.pddl", "ipc08_transport_p01.pddl"),
]
"""IPC 2008 tasks whose action costs read static functions that the problem defines only in part."""


def text(name: str) -> str:
    return (PDDL / name).read_text()


def agent() -> Agent:
    return Agent(config=Config(cache="", time_limit=60))


def solve(domain: str, problem: str, **kw: object) -> object:
    return agent().solve(Request(problem, "p.pddl", extra={"domain": domain}, **kw))  # type: ignore[arg-type]


def validated(domain: str, problem: str) -> object:
    kind = PddlKind()
    art = Artifact("pddl", "pddl", PlanningTask(domain, problem), problem)
    return kind.validate(art, Options(limits=Limits(time_s=30)))


# -- action costs from partly defined static functions --------------------------------------------


@pytest.mark.parametrize(
    ("domain", "problem", "optimal"),
    [(*COSTED[0], False), (*COSTED[1], False), (*COSTED[1], True)],
)
def test_ipc_action_cost_tasks_plan_and_verify_with_the_planner_cost(
    domain: str, problem: str, optimal: bool
) -> None:
    answer = solve(text(domain), text(problem), optimal=optimal)
    assert answer.status in (Status.FEASIBLE, Status.OPTIMAL), answer.error
    assert answer.verified, answer.verification
    v = answer.verification
    # The cost is recomputed from the domain's cost effects and compared with the planner's.
    assert v.objective == answer.objective and v.objective > len(answer.plan)
    assert "sum of action costs" in v.message


@pytest.mark.parametrize(
    ("domain", "problem", "remove", "plan", "term"),
    [
        (
            "ipc08_transport_domain.pddl",
            "ipc08_transport_p01.pddl",
            "(= (road-length city-loc-1 city-loc-4) 28)",
            [
                "drive(truck-1, city-loc-4, city-loc-5)",
                "drive(truck-1, city-loc-5, city-loc-1)",
                "drive(truck-1, city-loc-1, city-loc-4)",
            ],
            "(road-length city-loc-1 city-loc-4)",
        ),
        (
            "ipc08_elevators_domain.pddl",
            "ipc08_elevators_p8_9_1.pddl",
            "(= (travel-fast n0 n2) 7)",
            [
                "move-down-fast(fast0, n8, n4)",
                "move-down-fast(fast0, n4, n2)",
                "move-down-fast(fast0, n2, n0)",
            ],
            "(travel-fast n0 n2)",
        ),
    ],
)
def test_a_cost_the_problem_leaves_undefined_makes_the_step_inapplicable(
    domain: str, problem: str, remove: str, plan: list[str], term: str
) -> None:
    dom = read_domain(text(domain))
    full = read_problem(text(problem), dom)
    # With every value defined, every step applies; only the goal is not reached.
    assert check_plan(dom, full, plan).step == 0
    prefix = check_plan(dom, full, plan[:-1])
    assert prefix.step == 0 and prefix.cost > 0
    # The last step reads a value the edited problem leaves out: a located refusal, never a crash.
    assert remove in text(problem)
    edited = text(problem).replace(remove, "")
    partial = read_problem(edited, dom)
    check = check_plan(dom, partial, plan)
    assert not check.ok and check.step == len(plan)
    assert term in check.reason and "no value" in check.reason
    assert check.cost == prefix.cost  # the steps before it were costed


def test_undefined_cost_on_the_planner_path_is_a_failed_check_not_a_crash() -> None:
    """The planner never sees the edited problem here: its plan is replayed against a problem
    that lacks one road length, as a wrong model-written problem would."""
    dom_text, prob_text = text(COSTED[1][0]), text(COSTED[1][1])
    task = validated(dom_text, prob_text)
    answer = solve(dom_text, prob_text)
    plan = answer.plan
    drives = [s for s in plan if s.startswith("drive(")]
    assert drives
    _, src, dst = (a.strip() for a in drives[0][len("drive(") : -1].split(","))
    edited = "\n".join(
        ln for ln in prob_text.splitlines() if f"(road-length {src} {dst})" not in ln
    )
    broken = validated(dom_text, edited)
    result = SolveResult(Status.FEASIBLE, "test", answer.objective, plan=tuple(plan))
    v = PddlKind().verify(broken, result)
    assert v is not None and not v.ok and "no value" in v.message
    assert PddlKind().verify(task, result).ok


@pytest.mark.parametrize(
    ("domain", "problem"),
    [*COSTED, ("ipc04_philosophers_domain.pddl", "ipc04_philosophers_p01.pddl")],
)
@pytest.mark.parametrize("delta", [1.0, -1.0, 0.5])
def test_a_planner_that_misreports_its_cost_fails_verification(
    domain: str, problem: str, delta: float
) -> None:
    answer = solve(text(domain), text(problem))
    assert answer.verified
    task = validated(text(domain), text(problem))
    lying = SolveResult(Status.FEASIBLE, "liar", answer.objective + delta, plan=tuple(answer.plan))
    v = PddlKind().verify(task, lying)
    assert v is not None and not v.ok
    assert v.violations[0].name == "cost" and v.violations[0].amount == pytest.approx(abs(delta))
    assert v.objective == answer.objective


def test_without_a_total_cost_metric_a_plan_costs_its_length_as_the_planner_counts() -> None:
    problem = text("ipc08_transport_p01.pddl").replace("(:metric minimize (total-cost))", "")
    answer = solve(text("ipc08_transport_domain.pddl"), problem)
    assert answer.verified, answer.verification
    assert answer.objective == len(answer.plan) == answer.verification.objective
    assert "one per step" in answer.verification.message


def test_a_planning_request_never_imports_unified_planning(tmp_path: Path) -> None:
    out = tmp_path / "answer.json"
    code = (
        "import sys, json\n"
        "from agent.cli import main\n"
        f"rc = main(['solve', {str(PDDL / 'ipc08_transport_p01.pddl')!r}, '--domain', "
        f"{str(PDDL / 'ipc08_transport_domain.pddl')!r}, '--json', '--no-cache'])\n"
        "mods = sorted(m for m in sys.modules if m.split('.')[0] in ('unified_planning', 'up_fast_downward'))\n"
        f"open({str(out)!r}, 'w').write(json.dumps({{'rc': rc, 'mods': mods}}))\n"
    )
    subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, check=True, capture_output=True, timeout=120
    )
    seen = json.loads(out.read_text())
    assert seen == {"rc": 0, "mods": []}


# -- derived predicates ----------------------------------------------------------------------------

NET_DOMAIN = """
(define (domain net)
  (:requirements :strips :typing :derived-predicates :negative-preconditions)
  (:types node)
  (:predicates (link ?a ?b - node) (source ?a - node) (reach ?a - node) (cut ?a - node)
               (marked ?a - node))
  ; recursive (a transitive closure) ...
  (:derived (reach ?b - node)
     (or (source ?b) (exists (?a - node) (and (reach ?a) (link ?a ?b)))))
  ; ... and, one stratum up, its negation
  (:derived (cut ?b - node) (not (reach ?b)))
  (:action unlink :parameters (?a ?b - node)
     :precondition (and (link ?a ?b) (reach ?a))
     :effect (not (link ?a ?b)))
  (:action mark :parameters (?a - node)
     :precondition (cut ?a)
     :effect (marked ?a)))
"""

NET_PROBLEM = """
(define (problem cut-c) (:domain net)
  (:objects s a b c - node)
  (:init (source s) (link s a) (link a b) (link b c) (link s c))
  (:goal (and (marked c) (reach b))))
"""


def test_derived_predicates_are_read_and_stratified() -> None:
    dom = read_domain(NET_DOMAIN)
    assert dom.derived == {"reach", "cut"}
    assert dom.strata == [["reach"], ["cut"]]


@pytest.mark.parametrize(
    ("plan", "ok", "step"),
    [
        (["unlink(b, c)", "unlink(s, c)", "mark(c)"], True, 3),
        (["unlink(s, c)", "unlink(b, c)", "mark(c)"], True, 3),
        # c is still reached through b: the derived (cut c) is false, mark's precondition fails
        (["unlink(s, c)", "mark(c)"], False, 2),
        # cutting a first leaves b unreached: the goal's (reach b) fails
        (["unlink(s, a)", "unlink(s, c)", "mark(c)"], False, 0),
        # after cutting s -> a, a is no longer reached: unlink's derived precondition fails
        (["unlink(s, a)", "unlink(a, b)"], False, 2),
    ],
)
def test_the_simulator_evaluates_axioms_after_every_step(
    plan: list[str], ok: bool, step: int
) -> None:
    dom = read_domain(NET_DOMAIN)
    check = check_plan(dom, read_problem(NET_PROBLEM, dom), plan)
    assert (check.ok, check.step) == (ok, step), check.reason


@pytest.mark.parametrize(
    ("domain", "problem"),
    [
        ("ipc04_philosophers_domain.pddl", "ipc04_philosophers_p01.pddl"),
        (NET_DOMAIN, NET_PROBLEM),
    ],
)
def test_domains_with_derived_predicates_plan_and_verify(domain: str, problem: str) -> None:
    d = text(domain) if domain.endswith(".pddl") else domain
    p = text(problem) if problem.endswith(".pddl") else problem
    answer = solve(d, p)
    assert answer.status is Status.FEASIBLE and answer.verified, (answer.error, answer.verification)
    dom = read_domain(d)
    prob = read_problem(p, dom)
    # The goal needs derived facts: dropping the last step leaves it unmet.
    assert not check_plan(dom, prob, answer.plan[:-1]).ok


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda d, p: (
                d.replace(":effect (marked ?a)", ":effect (and (marked ?a) (cut ?a))"),
                p,
            ),
            "derived predicate: actions cannot change it",
        ),
        (lambda d, p: (d, p.replace("(source s)", "(source s) (reach a)")), ":init cannot list it"),
        (
            lambda d, p: (
                d.replace("(:derived (reach ?b - node)", "(:derived (rich ?b - node)"),
                p,
            ),
            "derived predicate 'rich' is not declared",
        ),
    ],
)
def test_misused_derived_predicates_are_located_errors(edit: object, message: str) -> None:
    d, p = edit(NET_DOMAIN, NET_PROBLEM)  # type: ignore[operator]
    with pytest.raises(ArtifactError) as e:
        read_problem(p, read_domain(d))
    assert message in e.value.feedback() and "line" in e.value.feedback()


def test_derived_predicates_defined_by_their_own_negation_are_refused() -> None:
    d = NET_DOMAIN.replace("(:derived (cut ?b - node) (not (reach ?b)))", "").replace(
        "(or (source ?b)", "(or (source ?b) (not (reach ?b))"
    )
    with pytest.raises(ArtifactError) as e:
        read_domain(d)
    assert e.value.kind == "unsupported" and "not stratifiable" in e.value.feedback()


# -- features beyond the planners are refused by name ---------------------------------------------

BLOCKS = """(define (domain b) (:requirements :strips :typing)
  (:types block) (:predicates (clear ?x - block) (held ?x - block))
  (:functions (total-cost) - number (weight ?x - block) - number)
  (:action lift :parameters (?x - block) :precondition (clear ?x)
     :effect (and (held ?x) (not (clear ?x)) (increase (total-cost) (weight ?x)))))"""
PROBLEM = """(define (problem p) (:domain b) (:objects a c - block)
  (:init (clear a) (clear c) (= (weight a) 2) (= (weight c) 3))
  (:goal (held a)) (:metric minimize (total-cost)))"""


@pytest.mark.parametrize(
    ("domain", "problem", "feature"),
    [
        (text("ipc08_elevators_numeric_domain.pddl"), None, "numeric condition (< (passengers"),
        (
            BLOCKS.replace("(clear ?x)", "(and (clear ?x) (<= (weight ?x) 5))", 1),
            None,
            "numeric condition",
        ),
        (
            BLOCKS.replace("(held ?x) (not", "(held ?x) (assign (weight ?x) 0) (not"),
            None,
            "numeric effect",
        ),
        (
            BLOCKS.replace(
                "(increase (total-cost)", "(increase (weight ?x) 1) (increase (total-cost)"
            ),
            None,
            "numeric effect",
        ),
        (
            BLOCKS.replace("(increase (total-cost)", "(decrease (total-cost)"),
            None,
            "action costs only increase",
        ),
        (BLOCKS.replace("(weight ?x)))))", "(* 2 (weight ?x))))))"), None, "action cost (* 2"),
        (BLOCKS.replace("(weight ?x)))))", "-3))))"), None, "action cost '-3'"),
        (BLOCKS.replace("(weight ?x)))))", "2.5))))"), None, "action cost '2.5'"),
        (
            BLOCKS.replace(
                "(weight ?x - block) - number)",
                "(weight ?x - block) - number (place ?x - block) - block)",
            ),
            None,
            "object fluents",
        ),
        (
            BLOCKS.replace(
                "(:action lift",
                "(:durative-action slide :parameters (?x - block) :duration (= ?duration 2)"
                " :condition (at start (clear ?x)) :effect (at end (held ?x)))\n(:action lift",
            ),
            None,
            "durative action",
        ),
        (
            BLOCKS,
            PROBLEM.replace("(:goal (held a))", "(:goal (preference p1 (held a)))"),
            "preference",
        ),
        (BLOCKS, PROBLEM.replace("minimize (total-cost)", "maximize (total-cost)"), "the metric"),
        (
            BLOCKS,
            PROBLEM.replace("(clear c)", "(clear c) (at 10 (held c))"),
            "timed initial literal",
        ),
        (BLOCKS, PROBLEM.replace("(= (weight c) 3)", "(= (weight c) 2.5)"), "the value 2.5"),
        (BLOCKS, PROBLEM.replace("(= (weight c) 3)", "(= (weight c) -1)"), "the value -1"),
        (
            BLOCKS,
            PROBLEM.replace("(:metric", "(:constraints (always (clear c))) (:metric"),
            "constraints",
        ),
    ],
)
def test_pddl_beyond_the_planners_is_refused_by_the_feature(
    domain: str, problem: str | None, feature: str
) -> None:
    with pytest.raises(ArtifactError) as e:
        read_problem(problem or PROBLEM, read_domain(domain))
    assert e.value.kind == "unsupported"
    fb = e.value.feedback()
    assert feature in fb and "not support" in fb and "line" in fb
    assert "is not declared" not in fb  # never "predicate '<=' is not declared"


def test_the_plain_blocks_task_with_costs_plans_and_verifies() -> None:
    answer = solve(BLOCKS, PROBLEM, optimal=True)
    assert answer.status is Status.OPTIMAL and answer.verified
    assert answer.objective == 2.0 == answer.verification.objective


def test_cli_refuses_numeric_fluents_by_name_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from agent.cli import main

    dom = tmp_path / "d.pddl"
    dom.write_text(BLOCKS.replace("(clear ?x)", "(and (clear ?x) (>= (weight ?x) 1))", 1))
    prob = tmp_path / "p.pddl"
    prob.write_text(PROBLEM)
    code = main(["solve", str(prob), "--domain", str(dom), "--no-cache"])
    out = capsys.readouterr()
    assert code == 2, out
    assert "numeric condition" in out.out + out.err and "Traceback" not in out.out + out.err


@pytest.mark.parametrize(
    "plan",
    [[""], ["()"], ["lift"], ["lift(a, c)"], ["lift(zz)"], ["fly(a)"], ["lift(a)", "lift(a)"]],
)
def test_junk_plans_fail_the_check_and_never_raise(plan: list[str]) -> None:
    dom = read_domain(BLOCKS)
    check = check_plan(dom, read_problem(PROBLEM, dom), plan)
    assert not check.ok and check.reason


def test_an_unsolvable_task_never_blames_derived_predicates_for_missing_facts() -> None:
    """(reach s) holds for the source whatever is unlinked, so (cut s) never does: no plan. The
    derived predicates are never in :init and no action sets them, yet they are not missing facts."""
    problem = NET_PROBLEM.replace("(:goal (and (marked c) (reach b)))", "(:goal (marked s))")
    answer = agent().solve(Request(problem, "p.pddl", extra={"domain": NET_DOMAIN}))
    assert answer.status is Status.INFEASIBLE
    named = {m["name"] for m in answer.diagnosis.members} if answer.diagnosis else set()
    assert not named & {"reach", "cut"}


def test_an_optimal_plan_with_derived_predicates_comes_from_a_planner_that_takes_axioms() -> None:
    """LM-cut refuses axioms; the portfolio passes the task on to SymK, which takes them."""
    answer = solve(NET_DOMAIN, NET_PROBLEM, optimal=True)
    assert answer.status is Status.OPTIMAL and answer.verified, answer.error
    assert len(answer.plan) == 3 and answer.solver.startswith("symk")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["unlink", "mark", "fly", ""]),
            st.lists(st.sampled_from(["s", "a", "b", "c", "zz", "?x", "(", ","]), max_size=3),
        ),
        max_size=6,
    )
)
def test_any_plan_gets_a_verdict_and_an_accepted_plan_reaches_the_goal(
    steps: list[tuple[str, list[str]]],
) -> None:
    dom = read_domain(NET_DOMAIN)
    prob = read_problem(NET_PROBLEM, dom)
    plan = [f"{name}({', '.join(args)})" for name, args in steps]
    check = check_plan(dom, prob, plan)  # never raises
    assert check.ok or check.reason
    if check.ok:
        final = check_plan(dom, prob, plan)
        assert final.step == len(plan) and final.cost == len(plan)
        # the goal needs (marked c), which only mark(c) makes true
        assert "mark(c)" in plan


def test_a_persons_domain_the_planners_cannot_take_stops_before_any_model_call() -> None:
    from agent.errors import InputError
    from conftest import agent_with, scripted

    client = scripted()  # no replies: any model call would fail the test
    numeric = text("ipc08_elevators_numeric_domain.pddl")
    with pytest.raises(InputError, match="numeric condition") as e:
        agent_with(client).solve(
            Request("Take passenger p0 to floor 3.", kind="pddl", extra={"domain": numeric})
        )
    assert "cannot be used (unsupported)" in str(e.value)
    assert client.chat_model.calls == []


def test_the_planner_and_the_validator_agree_that_an_undefined_cost_is_no_road() -> None:
    """Without a length for the road city-loc-1 -> city-loc-4 (28), the optimal plan goes round by
    city-loc-5 (35 + 32): the planner, like the validator, takes that step as inapplicable."""
    problem = text("ipc08_transport_p01.pddl")
    problem = "\n".join(
        ln for ln in problem.splitlines() if "(road-length city-loc-1 city-loc-4)" not in ln
    )
    problem = problem.replace("(at truck-1 city-loc-4)", "(at truck-1 city-loc-1)")
    problem = problem.replace("(at package-2 city-loc-4)", "(at package-2 city-loc-1)")
    problem = problem.replace("(at package-2 city-loc-2)", "(at package-2 city-loc-4)")
    answer = solve(text("ipc08_transport_domain.pddl"), problem, optimal=True)
    assert answer.status is Status.OPTIMAL and answer.verified, answer.error
    assert not any(s.replace(" ", "").endswith("city-loc-1,city-loc-4)") for s in answer.plan)
    assert any(s.replace(" ", "").endswith("city-loc-5,city-loc-4)") for s in answer.plan)


def test_cost_lines_the_planners_accept_for_a_domain_without_costs_are_accepted() -> None:
    """(= (total-cost) 0) and a total-cost metric beside a domain with no costs: Fast Downward
    takes both (every step then costs 0), and so do the reader and the validator."""
    problem = text("blocksworld_p08.pddl").replace("(:init", "(:init (= (total-cost) 0)", 1)
    problem = problem.rstrip()[:-1] + "(:metric minimize (total-cost)))\n"
    answer = agent().solve(Request(problem, "p.pddl", extra={"domain": "blocksworld"}))
    assert answer.verified, answer.verification
    assert answer.objective == 0.0 == answer.verification.objective
