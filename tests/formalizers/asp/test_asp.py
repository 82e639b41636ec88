"""Answer set programming with clingo: solving, unsat cores, errors, limits, verification, repair."""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.cli import main
from agent.errors import ArtifactError
from agent.kinds import KINDS, Options
from agent.router import route
from agent.types import Request
from conftest import agent_with, scripted
from formalizers.asp.formalizer import extract_program, load_examples
from formalizers.asp.program import check_program, looks_like_clingo
from formalizers.offline.milp_files import looks_like_cplex_lp
from solvers import clingo_backend
from solvers.asp_verify import verify_asp
from solvers.base import Limits, SolveResult, Status

ROOT = Path(__file__).resolve().parents[3]
ASP = KINDS["asp"]

TRIANGLE = """node(1..3). col(r;g). edge(1,2). edge(2,3). edge(1,3).
% each node one colour
1 { color(X,C) : col(C) } 1 :- node(X).
% adjacent nodes differ
:- edge(X,Y), color(X,C), color(Y,C).
#show color/2.
"""
"""Three mutually adjacent nodes and two colours: unsatisfiable (lines 3 and 5 clash)."""

SQUARE = TRIANGLE.replace("edge(1,3).", "node(4). edge(3,4). edge(4,1).")
"""A four-cycle and two colours: exactly two colourings."""

KNAPSACK = """item(a;b;c;d). weight(a,3). weight(b,4). weight(c,2). weight(d,5).
value(a,4). value(b,5). value(c,3). value(d,7).
{ take(I) : item(I) }.
% the bag holds 9 kg
:- #sum { W,I : take(I), weight(I,W) } > 9.
#maximize { V,I : take(I), value(I,V) }.
#show take/1.
"""
"""Four items and a 9 kg bag: the best value is 12 (b and d, or a, b and c)."""

PIGEONS = """pigeon(1..14). hole(1..13).
1 { in(P, H) : hole(H) } 1 :- pigeon(P).
#minimize { 1,P,Q,H : in(P, H), in(Q, H), P < Q }.
"""
"""Fourteen pigeons, thirteen holes: models come at once, proving optimum 1 takes ages."""

BLOWUP = "num(1..100000). p(X,Y,Z) :- num(X), num(Y), num(Z)."
"""10^15 ground rules: grounding never finishes."""


def solve(program: str, time_s: float = 10.0, **kwargs: object) -> SolveResult:
    return clingo_backend.solve(program, Limits(time_s=time_s), **kwargs)  # type: ignore[arg-type]


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


# -- solving -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("program", "answer"),
    [
        ("a. b :- a. c :- d.", ("a", "b")),
        ("p(1..3). q(X) :- p(X), X > 1. #show q/1.", ("q(2)", "q(3)")),
        ("p(1..2). #show. #show (X,X) : p(X).", ("(1,1)", "(2,2)")),
        ("{ a }. :- a. #show a/0.", ()),
    ],
    ids=["facts-and-rule", "show-signature", "show-terms", "empty-answer-set"],
)
def test_satisfiable_program_gives_its_answer_set(program: str, answer: tuple[str, ...]) -> None:
    result = solve(program)
    assert result.status is Status.FEASIBLE  # nothing to optimize: no optimum is claimed
    assert result.answer_set == answer
    assert result.cost is None and result.objective is None
    assert verify_asp(program, result).ok


@pytest.mark.parametrize(
    ("program", "cost"),
    [
        (KNAPSACK, (-12,)),
        (SQUARE.replace("#show", "#minimize { 1,X : color(X,r) }.\n#show"), (2,)),
        ("{ a; b }. :- not a, not b. #minimize { 1@2,a : a; 1@1,b : b }.", (0, 1)),
    ],
    ids=["maximize-value", "minimize-red", "two-priorities"],
)
def test_optimization_returns_the_optimal_cost(program: str, cost: tuple[int, ...]) -> None:
    result = solve(program)
    assert result.status is Status.OPTIMAL
    assert result.cost == cost
    assert result.objective == cost[0]
    assert verify_asp(program, result).ok


def test_knapsack_answer_respects_the_bag() -> None:
    result = solve(KNAPSACK)
    weights = {"a": 3, "b": 4, "c": 2, "d": 5}
    values = {"a": 4, "b": 5, "c": 3, "d": 7}
    taken = [atom[5] for atom in result.answer_set or ()]
    assert sum(weights[i] for i in taken) <= 9
    assert sum(values[i] for i in taken) == 12


# -- unsatisfiable programs ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("program", "named"),
    [
        (TRIANGLE, {"choice rule at line 3", "constraint at line 5"}),
        (
            "{ a; b }.\n% need a\n:- not a.\n% never a\n:- a.\n:- b.\n",
            {"constraint at line 3", "constraint at line 5"},
        ),
        ("p :- not p.", set()),
    ],
    ids=["two-colour-triangle", "constraints-only", "rules-contradict"],
)
def test_unsat_program_is_infeasible_with_the_constraints_named(
    program: str, named: set[str]
) -> None:
    result = solve(program)
    assert result.status is Status.INFEASIBLE and result.answer_set is None
    assert result.diagnosis is not None and result.diagnosis.irreducible
    assert {m["name"] for m in result.diagnosis.members} == named
    if not named:
        assert "rules contradict" in result.diagnosis.summary


def test_unsat_members_quote_the_constraint_and_its_comment() -> None:
    members = {m["name"]: m for m in solve(TRIANGLE).diagnosis.members}  # type: ignore[union-attr]
    edge = members["constraint at line 5"]
    assert edge == {
        "name": "constraint at line 5",
        "family": "integrity constraint",
        "text": ":- edge(X,Y), color(X,C), color(Y,C).",
        "description": "adjacent nodes differ",
    }
    assert members["choice rule at line 3"]["description"] == "each node one colour"


# -- errors in the program -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("program", "kind", "location", "words"),
    [
        ("a.\np(1) q(2).\n", "parse", "line 2, column 6", "syntax error"),
        ('p("é") q.\n', "parse", "line 1, column 8", "syntax error"),
        ("node(1..3).\nlonely(X) :- not node(X).\n", "safety", "line 2, column 8", "variable X"),
        ("a(1).\nb(X,Y) :- a(X), Y > X.\n", "safety", "line 2, column 5", "variable Y"),
        ('#include "/etc/passwd".\n', "parse", "line 1, column 1", "#include"),
        ("a.\n#script (python)\nimport os\n#end.\n", "parse", "line 2, column 1", "#script"),
        ("", "parse", "program", "empty"),
    ],
    ids=[
        "syntax",
        "syntax-utf8-column",
        "unsafe-negation",
        "unsafe-comparison",
        "include",
        "script",
        "empty",
    ],
)
def test_program_errors_are_located(program: str, kind: str, location: str, words: str) -> None:
    with pytest.raises(ArtifactError) as checked:
        check_program(program)
    assert checked.value.kind == kind
    assert checked.value.diagnostics[0].location == location
    assert words in checked.value.feedback()
    if program:  # the solver reports the same error, from its worker
        with pytest.raises(ArtifactError) as solved:
            solve(program)
        assert (solved.value.kind, solved.value.diagnostics[0].location) == (kind, location)


def test_unsafe_variable_names_the_rule() -> None:
    with pytest.raises(ArtifactError) as e:
        check_program("node(1..3).\nlonely(X) :- not node(X).\n")
    assert "`lonely(X) :- not node(X).`" in e.value.feedback()
    assert "positive body literal" in e.value.feedback()


def test_directives_in_comments_and_strings_are_harmless() -> None:
    program = '% #include "x.lp"\nlabel("#script").\n'
    assert solve(program).answer_set == ('label("#script")',)


# -- limits ---------------------------------------------------------------------------------------
def test_grounding_blowup_is_stopped_at_the_limit_and_leaves_no_process() -> None:
    pids: list[int] = []
    t0 = time.monotonic()
    result = solve(BLOWUP, time_s=2.0, on_start=pids.append)
    elapsed = time.monotonic() - t0
    assert elapsed < 3.0, elapsed
    assert result.status in (Status.TIMEOUT, Status.ERROR)
    assert "grounding" in result.message
    assert len(pids) == 1 and gone(pids[0])


def test_memory_limit_turns_a_blowup_into_an_error() -> None:
    pids: list[int] = []
    result = solve(BLOWUP, time_s=8.0, memory_bytes=100 * 2**20, on_start=pids.append)
    assert result.status is Status.ERROR
    assert "out of memory" in result.message and "grounding" in result.message
    assert gone(pids[0])


def test_search_timeout_keeps_the_best_answer_set() -> None:
    t0 = time.monotonic()
    result = solve(PIGEONS, time_s=1.0)
    assert time.monotonic() - t0 < 2.0
    assert result.status is Status.TIMEOUT and result.answer_set is not None
    assert result.cost is not None and result.cost[0] >= 1
    assert len([a for a in result.answer_set if a.startswith("in(")]) == 14
    assert verify_asp(PIGEONS, result).ok


# -- verification ---------------------------------------------------------------------------------
def _swap(r: SolveResult) -> SolveResult:
    atoms = list(r.answer_set or ())
    atoms[0] = atoms[0].replace(",r)", ",x)").replace(",g)", ",r)").replace(",x)", ",g)")
    return dataclasses.replace(r, answer_set=tuple(atoms))


@pytest.mark.parametrize(
    ("tamper", "culprit"),
    [
        (_swap, "constraint at line 5"),
        (lambda r: dataclasses.replace(r, answer_set=r.answer_set[1:]), "choice rule at line 3"),
        (lambda r: dataclasses.replace(r, answer_set=(*r.answer_set, "color(9,r)")), "color(9,r)"),
        (lambda r: dataclasses.replace(r, answer_set=(*r.answer_set, "color(")), "color("),
        (lambda r: dataclasses.replace(r, cost=(r.cost[0] - 1,)), "cost"),
    ],
    ids=["neighbours-share-colour", "node-without-colour", "unknown-atom", "not-a-term", "cost"],
)
def test_verification_fails_for_a_tampered_answer(tamper, culprit: str) -> None:  # type: ignore[no-untyped-def]
    program = SQUARE.replace("#show", "#minimize { 1,X : color(X,r) }.\n#show")
    result = solve(program)
    assert verify_asp(program, result).ok
    check = verify_asp(program, tamper(result))
    assert not check.ok and check.max_violation > 0
    assert culprit in {v.name for v in check.violations}, check.violations


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.integers(1, 6), st.integers(1, 6)).filter(lambda e: e[0] < e[1]),
        max_size=10,
        unique=True,
    ),
    st.integers(2, 3),
)
def test_every_colouring_found_verifies(edges: list[tuple[int, int]], colours: int) -> None:
    facts = " ".join(f"edge({a},{b})." for a, b in edges)
    program = (
        f"node(1..6). col(1..{colours}). {facts}\n"
        "1 { color(X,C) : col(C) } 1 :- node(X).\n"
        ":- edge(X,Y), color(X,C), color(Y,C).\n"
        "#minimize { C,X : color(X,C) }.\n#show color/2.\n"
    )
    result = solve(program)
    if result.status is Status.INFEASIBLE:
        assert result.diagnosis is not None
        assert {m["name"] for m in result.diagnosis.members} == {
            "choice rule at line 2",
            "constraint at line 3",
        }
        return
    assert result.status is Status.OPTIMAL
    assert verify_asp(program, result).ok
    colour = dict(a[6:-1].split(",") for a in result.answer_set or ())
    assert all(colour[str(a)] != colour[str(b)] for a, b in edges)


# -- the formalizer --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("reply", "program"),
    [
        ("Here:\n```asp\na.\nb :- a.\n```\nDone.", "a.\nb :- a.\n"),
        ("```prolog\np(1).\n```", "p(1).\n"),
        ("```json\n{}\n```\n```\nq.\n```", "q.\n"),
        ("```python\nprint(1)\n```", "print(1)\n"),
        ("a. b :- a.", "a. b :- a."),
    ],
    ids=["asp-fence", "prolog-fence", "bare-fence-wins", "other-fence", "no-fence"],
)
def test_program_is_extracted_from_the_reply(reply: str, program: str) -> None:
    assert extract_program(reply) == program


@pytest.mark.parametrize("reply", ["", "   \n", "```asp\n\n```"])
def test_empty_reply_is_a_parse_error(reply: str) -> None:
    with pytest.raises(ArtifactError) as e:
        extract_program(reply)
    assert e.value.kind == "parse"


@pytest.mark.parametrize(
    ("name", "answer"),
    [
        ("map_colouring", None),
        (
            "meeting_slots",
            (
                "when(budget,mon_am)",
                "when(hiring,tue_am)",
                "when(launch,mon_pm)",
                "when(review,tue_am)",
            ),
        ),
        ("team_selection", ("member(dana)", "member(eli)", "member(fay)")),
    ],
)
def test_few_shot_examples_solve_and_verify(name: str, answer: tuple[str, ...] | None) -> None:
    example = {ex.name: ex for ex in load_examples()}[name]
    result = solve(example.program)
    optimizes = "#minimize" in example.program or "#maximize" in example.program
    assert result.status is (Status.OPTIMAL if optimizes else Status.FEASIBLE)
    assert verify_asp(example.program, result).ok
    if answer is not None:
        assert result.answer_set == answer
    else:
        assert result.cost == (1,)  # the centre touches all four others; one region goes blue


# -- the agent ------------------------------------------------------------------------------------
def test_repair_of_an_unsafe_variable() -> None:
    unsafe = "```asp\nnode(1..3).\nlonely(X) :- not node(X).\n#show lonely/1.\n```"
    fixed = "```asp\nnode(1..3).\nlonely(X) :- node(X), not linked(X).\nlinked(1).\n#show lonely/1.\n```"
    client = scripted(unsafe, fixed)
    answer = agent_with(client).solve(
        "Which of nodes 1 to 3 are not linked? Node 1 is.", kind="asp"
    )
    assert answer.status is Status.FEASIBLE and answer.verified
    assert answer.answer_set == ["lonely(2)", "lonely(3)"]
    first = answer.trace[0]
    assert (first.outcome, first.stage) == ("safety", "validate")
    assert "variable X is unsafe" in first.feedback and "line 2" in first.feedback
    # The model saw its broken reply and the feedback in the second call.
    second = client.chat_model.calls[1]
    assert "lonely(X) :- not node(X)." in second[-2]["content"]
    assert "variable X is unsafe" in second[-1]["content"]


def test_repair_of_an_unsatisfiable_program_names_the_constraints() -> None:
    three = TRIANGLE.replace("col(r;g)", "col(r;g;b)")
    client = scripted(f"```asp\n{TRIANGLE}```", f"```asp\n{three}```")
    answer = agent_with(client).solve("Colour a triangle so that neighbours differ.", kind="asp")
    assert answer.status is Status.FEASIBLE and answer.verified
    assert len(answer.answer_set or []) == 3
    first = answer.trace[0]
    assert first.outcome == "infeasible"
    assert "constraint at line 5" in first.feedback and "choice rule at line 3" in first.feedback
    assert "from: adjacent nodes differ" in first.feedback


def test_problem_and_explanation_for_each_outcome() -> None:
    program = check_program(TRIANGLE)
    unsat = solve(TRIANGLE)
    assert "constraint at line 5" in ASP.explain(program, unsat, None)
    problem = ASP.problem(program, unsat, None)
    assert problem is not None and problem.kind == "infeasible"
    fine = solve(SQUARE)
    check = verify_asp(SQUARE, fine)
    assert ASP.problem(program, fine, check) is None
    text = ASP.explain(check_program(SQUARE), fine, check)
    assert "color/2: color(1," in text and "Verified independently" in text
    bad = _swap(fine)
    failed = verify_asp(SQUARE, bad)
    problem = ASP.problem(program, bad, failed)
    assert problem is not None and problem.kind == "verification"
    assert "constraint at line 5" in problem.feedback()


def test_cli_solves_the_example_program(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["solve", str(ROOT / "examples" / "graph_colouring.lp"), "--json", "--no-cache"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0
    assert (data["status"], data["kind"], data["cost"], data["verified"]) == (
        "OPTIMAL",
        "asp",
        [2],
        True,
    )
    assert len(data["answer_set"]) == 6 and all(a.startswith("assign(") for a in data["answer_set"])


def test_invalid_program_file_is_reported(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.lp"
    bad.write_text("node(1..3).\nlonely(X) :- not node(X).\n")
    code = main(["solve", str(bad), "--json", "--no-cache"])
    data = json.loads(capsys.readouterr().out)
    assert code == 2 and data["status"] == "ERROR" and data["kind"] == "asp"
    assert "line 2, column 8" in data["error"]


# -- routing --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "name", "kind", "formal"),
    [
        ((ROOT / "examples" / "transport.lp").read_text(), "transport.lp", "milp", True),
        ((ROOT / "examples" / "graph_colouring.lp").read_text(), "graph_colouring.lp", "asp", True),
        ("% max colours\nnode(1..3).\n:- node(X), not node(X).\n", "max.lp", "asp", True),
        ("max_load(10).\n% lowest cost\nend(3).\n", "loads.lp", "asp", True),
        ("edge(1,2). 1 { c(X,1..2) } 1 :- edge(X,_).", "", "asp", True),
        ("Colour the map so that adjacent regions differ.", "", "asp", False),
        ("Maximize profit from chairs and tables.", "", "milp", False),
    ],
    ids=[
        "cplex-lp",
        "clingo-lp",
        "clingo-max-comment",
        "clingo-max-fact",
        "inline",
        "words",
        "milp-words",
    ],
)
def test_routing(text: str, name: str, kind: str, formal: bool) -> None:
    r = route(Request(text, name))
    assert (r.kind, r.formal) == (kind, formal)


@pytest.mark.parametrize(
    ("text", "cplex"),
    [
        ("\\ c\nMaximize\n obj: x\nSubject To\n c: x <= 1\nEnd\n", True),
        ("MINIMIZE obj: x\nST\n c: x >= 1\nEND", True),
        ("minimize\n x\ns.t.\n c: x >= 1\n", True),
        ("% max ...\nmax(1).\n:- a.\n", False),
        ("min :- a.\n% the lowest\nst :- b.\nend.\n", False),
        ("maximum(3).\nend.\n", False),
    ],
)
def test_cplex_lp_detection_ignores_clingo_programs(text: str, cplex: bool) -> None:
    assert looks_like_cplex_lp(text) is cplex
    assert looks_like_clingo(text) is not cplex


def test_every_cplex_lp_example_still_routes_to_milp() -> None:
    lp_files = sorted((ROOT / "examples").glob("*.lp"))
    kinds = {p.name: route(Request(p.read_text(), p.name)).kind for p in lp_files}
    assert kinds["transport.lp"] == "milp" and kinds["graph_colouring.lp"] == "asp"
    for p in lp_files:
        assert (kinds[p.name] == "milp") is looks_like_cplex_lp(p.read_text())


def test_kind_reads_validates_and_solves() -> None:
    opts = Options(Limits(time_s=5))
    artifact = ASP.read(SQUARE, "square.lp", opts)
    program = ASP.validate(artifact, opts)
    result = ASP.solve(program, opts)
    assert result.status is Status.FEASIBLE and len(result.answer_set or ()) == 4
    verification = ASP.verify(program, result)
    assert verification is not None and verification.ok
    assert artifact.to_json() == SQUARE


def test_a_check_that_cannot_finish_is_inconclusive_and_bounded_by_the_limit() -> None:
    """The check gets three times the solve's time but no more than the request's limit (at
    least 5 s). A check that runs out of time finds nothing wrong: the answer is "not verified",
    and it is no reason to rewrite the program."""
    from agent.kinds.asp import verify_limits

    slow = SolveResult(Status.OPTIMAL, "clingo", time_s=8.0, answer_set=())
    assert verify_limits(slow).time_s == 24.0
    assert verify_limits(slow, Options(Limits(time_s=10))).time_s == 10.0
    assert verify_limits(slow, Options(Limits(time_s=1))).time_s == 5.0
    opts = Options(Limits(time_s=5))
    program = ASP.validate(ASP.read(SQUARE, "square.lp", opts), opts)
    result = ASP.solve(program, opts)
    late = verify_asp(program, result, Limits(time_s=0.001))
    assert not late.ok and not late.conclusive and late.to_json()["conclusive"] is False
    assert ASP.problem(program, result, late) is None
    text = ASP.explain(program, result, late)
    assert "Not verified: the check did not finish within 0.001 s" in text
    assert "FAILED" not in text
