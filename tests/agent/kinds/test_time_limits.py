"""One deadline per request: every stage gets what is left of it, and the check keeps its share.

The solvers here are fakes that record the limits they are given and "use" them on a fake clock
(``agent.kinds.base`` reads the time through its ``time`` module), so nothing depends on how busy
the machine is. Wall-time measurements of whole processes are in ``benchmarks/time_limits.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import agent.kinds.base as base
from agent import Agent
from agent.cli import main, process_age
from agent.kinds import KINDS
from agent.kinds.asp import (
    EXPLAIN_S_PER_ATOM,
    KEEP_FOR_CHECK,
    VERIFY_FRACTION,
    VERIFY_LEAST_S,
    VERIFY_MOST_S,
    verify_limits,
)
from agent.kinds.base import (
    ANSWER_RESERVE_S,
    MIN_SOLVE_S,
    MIN_VERIFY_S,
    Options,
    solver_limits,
    verify_seconds,
    verify_share,
)
from agent.types import Request
from solvers.base import Limits, SolveResult, Status, Verification

ROOT = Path(__file__).resolve().parents[3]
KNAPSACK = (ROOT / "examples" / "knapsack.json").read_text()
COLOURING = "node(1..3). edge(1,2). edge(2,3).\n1 { c(N,r); c(N,g) } 1 :- node(N).\n" + (
    ":- edge(A,B), c(A,C), c(B,C).\n#show c/2.\n"
)
BLOCKS = (ROOT / "examples" / "blocksworld_six_blocks.pddl").read_text()


class FakeClock:
    """``time.perf_counter`` that moves only when a fake solver says it spent time."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def perf_counter(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(base, "time", fake)
    return fake


# -- the arithmetic of one deadline ------------------------------------------------------------------


def test_left_counts_down_to_the_deadline_and_never_below_zero(clock: FakeClock) -> None:
    opts = Options(Limits(time_s=10), deadline=clock.now + 4.0)
    assert opts.left() == pytest.approx(4.0)
    clock.now += 3.0
    assert opts.left() == pytest.approx(1.0)
    clock.now += 5.0
    assert opts.left() == 0.0
    # Without a deadline a stage counts the whole limit from its own start, as before.
    assert Options(Limits(time_s=7)).left() == 7.0


@pytest.mark.parametrize("limit", [0.5, 2.0, 10.0, 60.0, 3600.0])
def test_the_share_kept_for_the_check_is_reserved_and_bounded(limit: float) -> None:
    opts = Options(Limits(time_s=limit))
    share = verify_share(opts, 0.2, 0.5, 30.0)
    assert ANSWER_RESERVE_S < share <= 0.5 * limit + 1e-9
    assert share <= 30.0 + ANSWER_RESERVE_S
    # The solver never gets the share: its limit is what is left less the share.
    assert solver_limits(opts, share).time_s == pytest.approx(max(MIN_SOLVE_S, limit - share))


def test_a_spent_deadline_gives_the_solver_the_least_limit_not_an_error(clock: FakeClock) -> None:
    opts = Options(Limits(time_s=5, mip_gap=0.01), deadline=clock.now - 1.0)
    limits = solver_limits(opts, 0.5)
    assert limits.time_s == MIN_SOLVE_S and limits.mip_gap == 0.01
    assert verify_seconds(opts) == MIN_VERIFY_S


# -- every kind's solver gets what is left, less the check's share ---------------------------------


def _recording(
    clock: FakeClock, seen: list[float], result: SolveResult
) -> Any:  # a solver that uses all the time it is given
    def fake(*args: Any, **kwargs: Any) -> SolveResult:
        limits = next(a for a in (*args, *kwargs.values()) if isinstance(a, Limits))
        seen.append(limits.time_s)
        clock.now += limits.time_s
        return replace(result, time_s=limits.time_s)

    return fake


def test_milp_highs_gets_what_is_left_of_the_request_less_the_check(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from solvers import highs

    seen: list[float] = []
    monkeypatch.setattr(
        highs, "solve", _recording(clock, seen, SolveResult(Status.TIMEOUT, "highs"))
    )
    kind = KINDS["milp"]
    opts = Options(Limits(time_s=10), deadline=clock.now + 4.0)  # 6 s already gone
    validated = kind.validate(kind.read(KNAPSACK, "knapsack.json", opts), opts)
    kind.solve(validated, opts)
    share = verify_share(opts, 0.05, 0.1, 2.0)
    assert seen == [pytest.approx(4.0 - share)]
    assert opts.left() == pytest.approx(share)  # the check's share is still there


def test_milp_pyomo_backend_gets_the_same_budget(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from solvers import pyomo_backend

    seen: list[float] = []
    monkeypatch.setattr(
        pyomo_backend, "solve", _recording(clock, seen, SolveResult(Status.TIMEOUT, "pyomo"))
    )
    kind = KINDS["milp"]
    opts = Options(Limits(time_s=10), backend="pyomo", deadline=clock.now + 3.0)
    validated = kind.validate(kind.read(KNAPSACK, "knapsack.json", opts), opts)
    kind.solve(validated, opts)
    assert seen == [pytest.approx(3.0 - verify_share(opts, 0.05, 0.1, 2.0))]


def test_the_planner_portfolio_gets_what_is_left(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from solvers import planning

    seen: list[float] = []
    monkeypatch.setattr(
        planning,
        "run_planner",
        _recording(clock, seen, SolveResult(Status.TIMEOUT, "fast-downward")),
    )
    kind = KINDS["pddl"]
    opts = Options(Limits(time_s=30), optimal=True, deadline=clock.now + 2.5)
    validated = kind.validate(kind.read(BLOCKS, "bw.pddl", opts), opts)
    kind.solve(validated, opts)
    # The share is reserved from the whole limit up front (5% of 30 s, plus the answer's).
    share = verify_share(opts, 0.05, 0.1, 2.0)
    assert share == pytest.approx(1.5 + ANSWER_RESERVE_S)
    assert seen == [pytest.approx(2.5 - share)]


def test_asp_clingo_gets_what_is_left_less_the_checks_share(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from solvers import clingo_backend

    seen: list[float] = []
    kept: list[float] = []
    record = _recording(clock, seen, SolveResult(Status.TIMEOUT, "clingo"))

    def fake(program: Any, limits: Limits, **kwargs: Any) -> SolveResult:
        kept.append(kwargs.get("keep_for_check", 0.0))
        return record(program, limits)

    monkeypatch.setattr(clingo_backend, "solve", fake)
    kind = KINDS["asp"]
    opts = Options(Limits(time_s=10), deadline=clock.now + 8.0)
    kind.solve(kind.validate(kind.read(COLOURING, "c.lp", opts), opts), opts)
    share = verify_share(opts, VERIFY_FRACTION, VERIFY_LEAST_S, VERIFY_MOST_S)
    assert share == pytest.approx(VERIFY_FRACTION * 10 + ANSWER_RESERVE_S)
    assert seen == [pytest.approx(8.0 - share)]
    assert kept == [KEEP_FOR_CHECK] and KEEP_FOR_CHECK > 0


def test_clingo_search_leaves_the_check_time_in_proportion_to_grounding() -> None:
    """With ``keep_for_check`` the worker stops its search that many times its grounding time
    before its deadline, but never takes more than half of what was left after grounding."""
    from solvers.clingo_backend import GRACE_S, run_worker

    program = "n(1..50). { p(X) } :- n(X).\n"
    ends = []
    for keep in (0.0, 1e9):
        before = time.time()
        run = run_worker(
            {"mode": "solve", "program": program, "diagnose": False, "keep_for_check": keep}, 5.0
        )
        grounded = run.first("grounded")
        assert grounded is not None and not run.killed
        ends.append(grounded["search_until"] - before)
    plain, kept = ends
    assert plain >= 5.0 - GRACE_S - 1e-3  # nothing kept back: the worker's own deadline
    # An enormous factor takes half of what was left after grounding, no more.
    assert 0.0 < kept < plain - 1.0


# -- the check: what is left, never a fresh full limit ---------------------------------------------


def test_asp_check_gets_what_is_left_not_the_full_limit(clock: FakeClock) -> None:
    found = SolveResult(Status.FEASIBLE, "clingo", time_s=0.1, answer_set=("c(1,r)",))
    opts = Options(Limits(time_s=60), deadline=clock.now + 1.5)
    per_atom = EXPLAIN_S_PER_ATOM
    assert verify_limits(found, opts).time_s == pytest.approx(1.5 - ANSWER_RESERVE_S - per_atom)
    # A large answer set keeps back the time its explanation and output will take.
    big = replace(found, answer_set=tuple(f"c({i},r)" for i in range(30_000)))
    assert verify_limits(big, opts).time_s == pytest.approx(
        1.5 - ANSWER_RESERVE_S - 30_000 * per_atom
    )
    clock.now += 5.0  # the deadline has passed: the check gets its least time, not 60 s
    assert verify_limits(found, opts).time_s == MIN_VERIFY_S


def test_agent_request_started_earlier_leaves_the_solver_less(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CLI passes when the process began: time already spent comes out of the limit."""
    from solvers import highs

    seen: list[float] = []
    monkeypatch.setattr(
        highs, "solve", _recording(clock, seen, SolveResult(Status.TIMEOUT, "highs"))
    )
    answer = Agent(time_limit=5).solve(Request(KNAPSACK, "knapsack.json", started=clock.now - 1.25))
    assert answer.status is Status.TIMEOUT
    share = verify_share(Options(Limits(time_s=5)), 0.05, 0.1, 2.0)
    assert seen == [pytest.approx(5 - 1.25 - share)]


def test_asp_check_keeps_its_share_when_clingo_uses_everything(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A deliberately slow clingo spends all it is given; the check still gets the share kept
    for it, and not more than what was left of the request."""
    from solvers import asp_verify, clingo_backend

    solved: list[float] = []
    found = SolveResult(Status.FEASIBLE, "clingo", answer_set=("c(1,r)", "c(2,g)", "c(3,r)"))
    monkeypatch.setattr(clingo_backend, "solve", _recording(clock, solved, found))
    checked: list[float] = []

    def fake_verify(program: Any, result: SolveResult, limits: Limits, *a: Any) -> Verification:
        checked.append(limits.time_s)
        return Verification(True, 3, 0.0, None, message="checked")

    monkeypatch.setattr(asp_verify, "verify_asp", fake_verify)
    limit = 4.0
    answer = Agent(time_limit=limit).solve(Request(COLOURING, "c.lp", started=clock.now))
    share = verify_share(Options(Limits(time_s=limit)), *_asp_share())
    assert solved == [pytest.approx(limit - share)]
    assert checked == [pytest.approx(share - ANSWER_RESERVE_S - 3 * EXPLAIN_S_PER_ATOM)]
    assert answer.verified and answer.status is Status.FEASIBLE


def _asp_share() -> tuple[float, float, float]:
    return VERIFY_FRACTION, VERIFY_LEAST_S, VERIFY_MOST_S


def test_routing_solver_deadline_is_the_requests(clock: FakeClock) -> None:
    from agent.kinds.routing import deadline, verify_reserve

    kind = KINDS["routing"]
    text = (ROOT / "examples" / "berlin52.tsp").read_text()
    opts = Options(Limits(time_s=10), deadline=clock.now + 3.0)
    spec = kind.validate(kind.read(text, "berlin52.tsp", opts), opts)
    assert deadline(spec, opts) == pytest.approx(clock.now + 3.0 - verify_reserve(spec))


# -- the command line counts from when its process began ---------------------------------------------


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_process_age_counts_the_time_before_main() -> None:
    code = "import time; time.sleep(1.0); from agent.cli import process_age; print(process_age())"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    age = float(done.stdout)
    assert 1.0 <= age < 60.0
    assert 0.0 <= process_age()


def test_cli_as_its_own_process_takes_the_start_up_out_of_the_limit(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: Any
) -> None:
    """``main()`` with no arguments is the ``formalist`` process: its time limit counts from when
    the process began (here, a start-up of 1.5 s); ``main(argv)`` inside another program counts
    from the call."""
    import agent.cli as cli
    from solvers import highs

    seen: list[float] = []
    monkeypatch.setattr(
        highs, "solve", _recording(clock, seen, SolveResult(Status.TIMEOUT, "highs"))
    )
    monkeypatch.setattr(cli, "process_age", lambda: 1.5)
    monkeypatch.setattr(cli, "time", SimpleNamespace(perf_counter=clock.perf_counter))
    path = tmp_path / "knapsack.json"
    path.write_text(KNAPSACK)
    args = ["solve", str(path), "--json", "--time-limit", "4"]
    share = verify_share(Options(Limits(time_s=4)), 0.05, 0.1, 2.0)
    monkeypatch.setattr(sys, "argv", ["formalist", *args])
    assert main() == 0
    assert json.loads(capsys.readouterr().out)["status"] == "TIMEOUT"
    assert main(args) == 0
    capsys.readouterr()
    assert seen == [pytest.approx(4 - 1.5 - share), pytest.approx(4 - share)]


# -- clingo's worker is gone by its limit ----------------------------------------------------------


def test_clingo_worker_reports_before_it_is_killed_at_its_limit() -> None:
    """The worker is asked to stop a grace period before its limit and killed at the limit (not
    after it): on a search it cannot finish, it still reports its own timeout."""
    from solvers.clingo_backend import run_worker

    holes = 12
    program = (
        f"p(1..{holes + 1}). h(1..{holes}).\n1 {{ in(P,H) : h(H) }} 1 :- p(P).\n"
        ":- h(H), #count { P : in(P,H) } > 1.\n"
    )
    t0 = time.monotonic()
    run = run_worker({"mode": "solve", "program": program, "diagnose": False}, 3.0)
    assert run.elapsed_s <= time.monotonic() - t0
    result = run.first("result")
    assert not run.killed and result is not None and result["outcome"] == "timeout"


# -- routing: an uninterruptible search that would end late is not started -----------------------


def test_pyvrp_does_not_start_a_first_search_that_would_end_late(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """PyVRP's local search cannot be stopped once started. When the neighbourhood's time says the
    first search would not fit in what is left (here a neighbourhood made slow on purpose), the
    solve returns TIMEOUT without starting it, instead of an answer after the deadline."""
    import pyvrp.search

    from solvers import routing_pyvrp

    real = pyvrp.search.compute_neighbours
    slow_s = 0.3

    def slow_neighbours(*args: Any, **kwargs: Any) -> Any:
        out = real(*args, **kwargs)
        time.sleep(slow_s)
        return out

    searches: list[bool] = []
    real_call = pyvrp.search.LocalSearch.__call__

    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        searches.append(True)
        return real_call(self, *args, **kwargs)

    monkeypatch.setattr(pyvrp.search, "compute_neighbours", slow_neighbours)
    monkeypatch.setattr(pyvrp.search.LocalSearch, "__call__", counted)
    kind = KINDS["routing"]
    opts = Options(Limits(time_s=60))
    spec = kind.validate(
        kind.read((ROOT / "examples" / "berlin52.tsp").read_text(), "berlin52.tsp", opts), opts
    )
    # The first search is estimated at SEARCH_PER_NEIGHBOURS times the neighbourhood's time;
    # leave less than QUICK_FIT of that after the neighbourhood.
    least = routing_pyvrp.SEARCH_PER_NEIGHBOURS * slow_s * routing_pyvrp.QUICK_FIT
    result = routing_pyvrp.solve(
        spec, opts.limits, deadline=time.perf_counter() + slow_s + 0.5 * least
    )
    assert result.status is Status.TIMEOUT and result.routes is None
    assert "no time for a first local search" in result.message
    assert searches == []
    # With time for it, the same instance is solved (the search does start).
    monkeypatch.setattr(pyvrp.search, "compute_neighbours", real)
    solved = routing_pyvrp.solve(spec, opts.limits, deadline=time.perf_counter() + 5.0)
    assert solved.status is Status.FEASIBLE and searches


def test_atoms_are_grouped_as_clingo_reads_them_without_its_parser_for_plain_ones() -> None:
    """Grouping a large answer set for its explanation must not eat the time after the check:
    plain atoms are read off their text, and must land where clingo's own parser puts them."""
    import clingo

    from agent.kinds.asp import group_atoms

    atoms = (
        "a",
        "_b",
        "-p(1)",
        "p(1,2)",
        "p( 1 , -2 )",
        "colour(node_1,r')",
        'p(1,"x,y")',
        "q(f(1,2),3)",
        "q((1,2))",
        "(1,2)",
        "3",
        '"s"',
        "-q(a,-b,c)",
        "r(-3)",
    )

    def reference(text: str) -> str:
        sym = clingo.parse_term(text)
        if sym.type is clingo.SymbolType.Function and sym.name:
            return f"{'-' if sym.negative else ''}{sym.name}/{len(sym.arguments)}"
        return "terms"

    expected: dict[str, list[str]] = {}
    for text in atoms:
        expected.setdefault(reference(text), []).append(text)
    assert group_atoms(atoms) == expected
