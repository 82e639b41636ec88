"""The planning path: reading and checking PDDL, planning, validation, explanation, repair."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from agent.agent import Agent
from agent.config import Config
from agent.errors import ArtifactError, InputError
from agent.types import Request
from conftest import FIXTURES, agent_with, scripted
from formalizers.pddl import library
from formalizers.pddl.model import read_domain, read_problem
from formalizers.pddl.simulate import check_plan
from solvers.base import Limits, Status
from solvers.planning import run_fast_downward, run_planner, run_portfolio, run_symk

PDDL = FIXTURES / "pddl"
BLOCKS = library.find("blocksworld")
assert BLOCKS is not None


def fixture(name: str) -> str:
    return (PDDL / name).read_text()


def agent(**kw: object) -> Agent:
    return Agent(config=Config(cache="", **kw))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("problem", "domain", "length"),
    [
        ("blocksworld_p01.pddl", "blocksworld", None),
        ("grippers_p01.pddl", "grippers", None),
        ("storage_p01.pddl", "storage", None),
        ("tyreworld_p20.pddl", "tyreworld", None),
    ],
)
def test_gold_problems_plan_and_validate(problem: str, domain: str, length: int | None) -> None:
    answer = agent().solve(Request(fixture(problem), problem, extra={"domain": domain}))
    assert answer.status is Status.FEASIBLE
    assert (
        answer.plan is not None and answer.verified
    )  # blocksworld p01's goal holds at the start: []
    assert answer.kind == "pddl"


def test_storage_with_either_types_is_validated_by_simulation() -> None:
    """storage's `either` types (which unified-planning's reader rejected) plan and validate."""
    answer = agent().solve(
        Request(fixture("storage_p01.pddl"), "p.pddl", extra={"domain": "storage"})
    )
    assert answer.verified
    assert answer.verification is not None and "simulation" in answer.verification.message


def test_optimal_plan_is_marked_optimal() -> None:
    answer = agent().solve(Request(fixture("blocksworld_p01.pddl"), "p.pddl", optimal=True))
    assert answer.status is Status.OPTIMAL and answer.verified
    satisficing = agent().solve(Request(fixture("blocksworld_p01.pddl"), "p.pddl"))
    assert len(answer.plan or []) <= len(satisficing.plan or [])


def test_plan_is_explained_from_templates() -> None:
    answer = agent().solve(Request(fixture("blocksworld_p08.pddl"), "p.pddl"))
    lines = answer.explanation.splitlines()
    assert lines[0].startswith("A plan of") and "(verified)" in lines[0]
    assert any("Pick up block" in ln or "Lift block" in ln for ln in lines[1:])
    assert len(lines) == 1 + len(answer.plan or [])


def test_cli_json_for_a_problem_and_domain_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import json

    from agent.cli import main

    dom = tmp_path / "domain.pddl"
    dom.write_text(BLOCKS.text)
    code = main(
        ["solve", str(PDDL / "blocksworld_p08.pddl"), "--domain", str(dom), "--json", "--no-cache"]
    )
    data = json.loads(capsys.readouterr().out)
    assert code == 0
    assert data["status"] == "FEASIBLE" and data["verified"] is True
    assert data["plan_length"] == len(data["plan"]) > 0
    assert all("(" in step and step.endswith(")") for step in data["plan"])


def test_problem_without_a_domain_is_a_clear_input_error() -> None:
    text = fixture("blocksworld_p01.pddl").replace("blocksworld-4ops", "unknown-domain")
    with pytest.raises(InputError, match="needs its domain"):
        agent().solve(Request(text, "p.pddl"))


def test_unsolvable_problem_is_infeasible_and_names_missing_facts() -> None:
    gold = fixture("floortile_p01.pddl")
    no_sideways = "\n".join(
        ln for ln in gold.splitlines() if "(right " not in ln and "(left " not in ln
    )
    t0 = time.perf_counter()
    answer = agent(time_limit=30).solve(Request(no_sideways, "p.pddl"))
    assert time.perf_counter() - t0 < 30
    assert answer.status is Status.INFEASIBLE
    assert answer.diagnosis is not None
    names = {m["name"] for m in answer.diagnosis.members}
    assert {"right", "left"} <= names


def _descendants() -> list[int]:
    """Processes descended from this one (the planner and its children, if any were left)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], [os.getpid()]
    while frontier:
        pid = frontier.pop()
        kids = [p for p, pp in parents.items() if pp == pid]
        found += kids
        frontier += kids
    return found


def test_time_limit_holds_and_no_planner_is_left_behind() -> None:
    dom = library.find("floortile")
    assert dom is not None
    t0 = time.perf_counter()
    result = run_fast_downward(
        dom.text, fixture("floortile_p01.pddl"), Limits(time_s=1.0), optimal=True
    )
    elapsed = time.perf_counter() - t0
    assert result.status is Status.TIMEOUT
    assert elapsed < 2.0, elapsed
    assert _descendants() == []


def test_symk_plans_floortile_optimally() -> None:
    dom = library.find("floortile")
    assert dom is not None
    problem = fixture("floortile_p01.pddl")
    result = run_symk(dom.text, problem, Limits(time_s=60))
    assert result.status is Status.OPTIMAL and result.solver == "symk:sym_bd"
    assert result.plan and check_plan(dom.domain, read_problem(problem, dom.domain), result.plan).ok


def test_the_portfolio_passes_a_timed_out_task_to_symk_and_says_so() -> None:
    """Fast Downward gets 2% of the limit (too little even to translate), SymK the rest."""
    dom = library.find("floortile")
    assert dom is not None
    problem = fixture("floortile_p01.pddl")
    result = run_portfolio(dom.text, problem, Limits(time_s=60), optimal=True, share=0.02)
    assert result.status is Status.OPTIMAL and result.solver == "symk:sym_bd"
    assert result.message.startswith("fast-downward:seq-opt-lmcut stopped after")
    assert result.plan and check_plan(dom.domain, read_problem(problem, dom.domain), result.plan).ok


def test_the_portfolio_keeps_the_first_planners_plan() -> None:
    result = run_planner(BLOCKS.text, fixture("blocksworld_p01.pddl"), Limits(time_s=60))
    assert result.status is Status.FEASIBLE and result.solver == "fast-downward:lama-first"


def test_the_portfolio_time_limit_holds_and_leaves_no_planner() -> None:
    dom = library.find("floortile")
    assert dom is not None
    t0 = time.perf_counter()
    result = run_portfolio(dom.text, fixture("floortile_p01.pddl"), Limits(time_s=1.0), True)
    assert result.status is Status.TIMEOUT
    assert time.perf_counter() - t0 < 2.0
    assert _descendants() == []


COST_DOMAIN = """(define (domain g) (:requirements :strips :typing :action-costs)
 (:types n)
 (:predicates (at ?x - n) (e ?a ?b - n))
 (:functions (total-cost) - number (c ?a ?b - n) - number)
 (:action mv :parameters (?a ?b - n) :precondition (and (at ?a) (e ?a ?b))
   :effect (and (not (at ?a)) (at ?b) (increase (total-cost) (c ?a ?b)))))"""
COST_PROBLEM = """(define (problem p) (:domain g) (:objects a b c d - n)
 (:init (at a) (e a d) (e a b) (e b c) (e c d) (= (total-cost) 0)
   (= (c a d) 10) (= (c a b) 2) (= (c b c) 2) (= (c c d) 2))
 (:goal (at d)) (:metric minimize (total-cost)))"""


@pytest.mark.parametrize("planner", ["fast-downward", "symk"])
def test_a_plans_objective_is_its_cost_not_its_length(planner: str) -> None:
    result = run_planner(COST_DOMAIN, COST_PROBLEM, Limits(time_s=60), True, planner)
    assert result.status is Status.OPTIMAL
    assert result.plan == ("mv(a, b)", "mv(b, c)", "mv(c, d)")
    assert result.objective == 6.0


def test_the_portfolio_passes_a_task_lmcut_cannot_take_to_symk() -> None:
    """LM-cut refuses conditional effects (exit 34); SymK plans the task optimally."""
    domain = """(define (domain ce) (:requirements :strips :conditional-effects
        :negative-preconditions) (:predicates (lit ?x) (b ?x))
      (:action push :parameters () :precondition ()
        :effect (forall (?x) (and (when (lit ?x) (and (not (lit ?x)) (b ?x)))
                                  (when (not (lit ?x)) (lit ?x))))))"""
    problem = """(define (problem p) (:domain ce) (:objects o1 o2) (:init (lit o1))
      (:goal (and (lit o1) (b o1) (b o2))))"""
    alone = run_fast_downward(domain, problem, Limits(time_s=30), optimal=True)
    assert alone.status is Status.ERROR and "does not support" in alone.message
    result = run_portfolio(domain, problem, Limits(time_s=30), optimal=True)
    assert result.status is Status.OPTIMAL and result.solver == "symk:sym_bd"
    assert result.plan == ("push()", "push()")


# -- reading and checking -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (
            lambda t: t.replace("(arm-empty)", "(hand-empty)"),
            "predicate 'hand-empty' is not declared",
        ),
        (
            lambda t: t.replace("(clear b2)", "(clear b2 b3)"),
            "'clear' takes 1 argument(s), given 2",
        ),
        (lambda t: t.replace("(on b2 b3)", "(on b2 b9)", 1), "object 'b9' is not declared"),
        (lambda t: t.replace("(:init", "(:init (", 1), "unbalanced parentheses"),
        (lambda t: t + ")", "closes nothing"),
        (
            lambda t: t.replace("(:domain blocksworld-4ops)", "(:domain blocks)"),
            "is for domain 'blocks'",
        ),
    ],
)
def test_checks_name_the_defect_with_a_location(mutate, needle: str) -> None:
    with pytest.raises(ArtifactError) as e:
        read_problem(mutate(fixture("blocksworld_p01.pddl")), BLOCKS.domain)
    assert needle in e.value.feedback()
    assert "line" in e.value.feedback()


def test_type_mismatch_is_reported() -> None:
    grippers = library.find("grippers")
    assert grippers is not None
    text = fixture("grippers_p01.pddl").replace(
        "(at-robby robot1 room1)", "(at-robby room1 robot1)"
    )
    if text == fixture("grippers_p01.pddl"):
        pytest.skip("fixture layout changed")
    with pytest.raises(ArtifactError, match="expects"):
        read_problem(text, grippers.domain)


@pytest.mark.parametrize(
    ("gpt4", "gold", "outcome", "defect"),
    [
        (
            "gpt4_blocksworld_p08.pddl",
            "blocksworld_p08.pddl",
            "symbol",
            "object 'table' is not declared",
        ),
        (
            "gpt4_storage_p01.pddl",
            "storage_p01.pddl",
            "symbol",
            "object 'container-0-0' is not declared",
        ),
        (
            "gpt4_tyreworld_p20.pddl",
            "tyreworld_p20.pddl",
            "parse",
            "'...' in :init must be an atom",
        ),
    ],
)
def test_model_written_problem_is_repaired_from_feedback(
    gpt4: str, gold: str, outcome: str, defect: str
) -> None:
    """GPT-4's problem files (LLM+P run 0) as a model's first reply; the gold file as its second."""
    domain = gold.split("_")[0]
    client = scripted(f"```pddl\n{fixture(gpt4)}\n```", f"```pddl\n{fixture(gold)}\n```")
    answer = agent_with(client).solve(
        Request("(the request)", kind="pddl", extra={"domain": domain})
    )
    assert answer.status is Status.FEASIBLE and answer.verified
    first = answer.trace[0]
    assert first.outcome == outcome and defect in first.feedback
    # the repair turn carried the feedback
    assert defect in client.chat_model.calls[1][-1]["content"]


def test_undeclared_predicate_then_fixed() -> None:
    good = fixture("blocksworld_p01.pddl")
    bad = good.replace("(on-table b1)", "(ontable b1)")
    answer = agent_with(scripted(bad, good)).solve(
        Request("3 blocks", kind="pddl", extra={"domain": "blocksworld"})
    )
    assert [a.outcome for a in answer.trace] == ["symbol", "ok"]
    assert "predicate 'ontable' is not declared" in answer.trace[0].feedback
    assert "did you mean 'on-table'?" in answer.trace[0].feedback


def test_request_routes_to_the_domain_by_similarity() -> None:
    text = (PDDL / "blocksworld_p01.nl").read_text()
    client = scripted(f"```pddl\n{fixture('blocksworld_p01.pddl')}\n```")
    answer = agent_with(client).solve(Request(text, kind="pddl"))
    assert answer.verified
    prompt = client.chat_model.calls[0][1]["content"]
    assert "(define (domain blocksworld-4ops)" in prompt  # the domain itself is in the prompt


def test_model_written_domain_is_experimental() -> None:
    domain = """(define (domain lights) (:requirements :strips :typing) (:types lamp)
      (:predicates (on ?l - lamp) (off ?l - lamp))
      (:action switch-on :parameters (?l - lamp) :precondition (off ?l) :effect (and (on ?l) (not (off ?l)))))"""
    problem = "(define (problem p) (:domain lights) (:objects a b - lamp) (:init (off a) (off b)) (:goal (and (on a) (on b))))"
    reply = f"```pddl\n{domain}\n```\n```pddl\n{problem}\n```"
    answer = agent_with(scripted(reply)).solve(
        Request("Turn on the two reading lamps a and b", kind="pddl")
    )
    assert answer.verified and len(answer.plan or []) == 2
    assert answer.artifact["experimental"] is True
    assert "Experimental" in answer.explanation


def test_simulation_rejects_a_wrong_plan() -> None:
    dom = BLOCKS.domain
    prob = read_problem(fixture("blocksworld_p01.pddl"), dom)
    bad = check_plan(dom, prob, ["stack(b1, b2)"])
    assert not bad.ok and bad.step == 1 and "precondition" in bad.reason


def test_llmp_gpt4_outputs_sort_into_valid_and_invalid() -> None:
    """Every GPT-4 problem file in the LLM+P experiments, read against its domain."""
    root = Path(__file__).resolve().parents[4] / "shared" / "data" / "llmp"
    if not root.is_dir():
        pytest.skip("shared/data/llmp is not beside this checkout")
    invalid: dict[str, str] = {}
    valid = 0
    for f in sorted(root.glob("experiments/run*/problems/*/*/p*.pddl")):
        domain = f.parent.name
        lib = library.find(domain)
        if lib is None:
            continue  # manipulation is not in the library
        try:
            read_problem(f.read_text(), lib.domain)
            valid += 1
        except ArtifactError as e:
            invalid[str(f.relative_to(root))] = e.feedback()
    assert valid > 100 and invalid
    # each invalid file's feedback names a concrete defect with a location
    assert all("line" in fb for fb in invalid.values())
    assert any("is not declared" in fb for fb in invalid.values())


def test_every_library_domain_reads_and_has_templates_for_every_action() -> None:
    for d in library.library().values():
        dom = read_domain(d.text)
        assert set(d.templates) == set(dom.actions), d.key


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs /proc")
def test_fd_children_helper_sees_nothing_when_idle() -> None:
    assert _descendants() == []


def test_pyperplan_agrees_with_fast_downward_on_optimal_length() -> None:
    fd = agent().solve(Request(fixture("blocksworld_p08.pddl"), "p.pddl", optimal=True))
    pp = Agent(config=Config(cache="", planner="pyperplan")).solve(
        Request(fixture("blocksworld_p08.pddl"), "p.pddl", optimal=True)
    )
    assert fd.status is pp.status is Status.OPTIMAL
    assert len(fd.plan or []) == len(pp.plan or []) == 14
    assert pp.verified and pp.solver.startswith("pyperplan")


def test_pyperplan_has_a_time_limit_that_holds() -> None:
    from solvers.planning import run_pyperplan

    dom = library.find("tyreworld")
    assert dom is not None
    t0 = time.perf_counter()
    result = run_pyperplan(
        dom.text, fixture("tyreworld_p20.pddl"), Limits(time_s=1.0), optimal=True
    )
    assert result.status is Status.TIMEOUT
    assert time.perf_counter() - t0 < 2.0
    assert _descendants() == []


def test_a_name_outside_ascii_is_refused_where_it_stands() -> None:
    """The planners' translators refuse non-ASCII names with a bare exit code; our reader names
    the line and column instead. Comments may hold any text."""
    blocks = library.find("blocksworld")
    assert blocks is not None
    problem = blocks.example_problem.replace("(:objects", "; Blöcke\n(:objects", 1)
    assert read_problem(problem, blocks.domain).objects
    bad = blocks.example_problem.replace("(:objects", "(:objects blöck", 1)
    with pytest.raises(ArtifactError, match="'blöck' has characters outside ASCII") as e:
        read_problem(bad, blocks.domain)
    assert e.value.diagnostics[0].location.startswith("problem line")


def test_pyperplan_refuses_what_it_cannot_read_by_name() -> None:
    """pyperplan plans STRIPS with types; on floortile's action costs its parser used to fail
    with a bare traceback. Now the answer says what it cannot take and which planner can."""
    from solvers.planning import run_pyperplan

    floortile = library.find("floortile")
    assert floortile is not None
    result = run_pyperplan(floortile.text, floortile.example_problem, Limits(time_s=10))
    assert result.status is Status.ERROR
    assert (
        "numeric functions (action costs)" in result.message and "fast-downward" in result.message
    )
