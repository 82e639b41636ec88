"""The batch runner: results as items finish, resume after a real kill, replay reproduces a run,
the report and the ``formalist bench`` command."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from agent.cli import main
from agent.errors import ConfigError
from benchmarks.datasets import Item
from benchmarks.replay import KeyedReplayChatModel
from benchmarks.report import report, wilson
from benchmarks.runner import (
    TIMING_KEYS,
    RunSettings,
    Unsupported,
    build_agent,
    oracle_request,
    read_results,
    run,
)

REPO = Path(__file__).resolve().parents[2]


def model(upper: float, extra: str = "") -> str:
    """A five-element model whose optimum is ``3 * upper`` (or infeasible with ``extra``)."""
    data: dict[str, Any] = {
        "variables": [{"name": "x", "upper": upper}],
        "objective": {"sense": "max", "expression": "3 * x"},
    }
    if extra:
        data["constraints"] = [{"name": "c", "expression": extra}]
    return json.dumps(data)


QUESTIONS = [
    ("a", "Maximize 3x with x at most 4.", "12", [model(4)]),
    ("b", "Maximize 3x with x at most 5.", "15", [model(6)]),  # wrong: 18
    ("c", "Maximize 3x with x at most 2.", "6", ["this is not JSON", model(2)]),  # repaired
    ("d", "Maximize 3x with x at most 1 and x >= 2.", "No Best Solution", [model(1, "x >= 2")] * 3),
    ("e", "Maximize 3x with x at most 3.", "9.0000001", [model(3)]),  # strict & lenient
    ("f", "Maximize 3x with x at most 7.", "21", ["{", "{", "{"]),  # never parses
]


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    """Six objective-value questions in NL4Opt's {"en_question", "en_answer"} format."""
    f = tmp_path / "six.jsonl"
    f.write_text(
        "".join(
            json.dumps({"id": i, "en_question": q, "en_answer": a}) + "\n"
            for i, q, a, _ in QUESTIONS
        )
    )
    return f


@pytest.fixture
def scripted(tmp_path: Path) -> Path:
    """The replies of ``QUESTIONS`` in order, as a plain replay recording."""
    f = tmp_path / "script.json"
    f.write_text(json.dumps([r for *_, replies in QUESTIONS for r in replies]))
    return f


def strip(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["id"]: {k: v for k, v in r.items() if k not in TIMING_KEYS} for r in rows}


def test_llm_run_scores_both_rules_and_classes_errors(
    dataset: Path, scripted: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    s = RunSettings(str(dataset), "llm", f"replay:{scripted}", concurrency=1)
    summary = run(s, out, progress=False)
    assert summary["finished"] == 6
    rows = strip(read_results(out / "results.jsonl"))
    assert rows["a"]["scores"] == {"strict": True, "lenient": True}
    assert rows["b"]["error_class"] == "wrong answer"
    assert rows["c"]["attempts"] == 2 and rows["c"]["scores"]["strict"]
    assert rows["d"]["status"] == "INFEASIBLE" and rows["d"]["scores"]["lenient"]
    assert rows["e"]["scores"] == {"strict": True, "lenient": True}
    assert rows["f"]["error_class"] == "parse" and rows["f"]["attempts"] == 3
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["git_commit"] and "highspy" in cfg["packages"] and cfg["items"] == 6
    assert (out / "recording.jsonl").is_file()


def test_a_replay_run_reproduces_the_results_item_for_item(
    dataset: Path, scripted: Path, tmp_path: Path
) -> None:
    first = tmp_path / "first"
    run(RunSettings(str(dataset), "llm", f"replay:{scripted}", concurrency=1), first)
    recording = first / "recording.jsonl"
    again = tmp_path / "again"
    # Four at a time: the items interleave, and each call still gets its own recorded reply.
    run(RunSettings(str(dataset), "replay", str(recording), concurrency=4), again)
    a = strip(read_results(first / "results.jsonl"))
    b = strip(read_results(again / "results.jsonl"))
    assert a.keys() == b.keys() == {q[0] for q in QUESTIONS}
    for key in a:
        assert a[key] == b[key], key


CHILD = """
import sys
from benchmarks.replay import KeyedReplayChatModel
from benchmarks.runner import RunSettings, build_agent, run
data, out, reply = sys.argv[1], sys.argv[2], sys.argv[3]
s = RunSettings(data, "llm", "replay", concurrency=2)
chat = KeyedReplayChatModel(keyed={}, ordered=[reply] * 100, delay_s=0.25)
run(s, out, agent=build_agent(s, out, chat_model=chat), progress=False)
"""


def test_a_killed_run_resumes_with_every_item_exactly_once(tmp_path: Path) -> None:
    data = tmp_path / "twelve.jsonl"
    data.write_text(
        "".join(
            json.dumps(
                {"id": f"q{i:02d}", "en_question": f"Maximize 3x, x <= 4 ({i})", "en_answer": 12}
            )
            + "\n"
            for i in range(12)
        )
    )
    out = tmp_path / "run"
    results = out / "results.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(data), str(out), model(4)],
        cwd=REPO,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if results.is_file() and len(results.read_text().splitlines()) >= 3:
                break
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=10)
    before = read_results(results)
    assert 3 <= len(before) < 12, "the run must be killed part way"
    # A crash in the middle of a write leaves half a line: it is cut off, not kept or repeated.
    with results.open("a") as f:
        f.write('{"id": "q11", "kind": "milp", "sta')
    s = RunSettings(str(data), "llm", "replay", concurrency=3)
    chat = KeyedReplayChatModel(keyed={}, ordered=[model(4)] * 12)
    summary = run(s, out, agent=build_agent(s, out, chat_model=chat), progress=False)
    assert summary["skipped"] == len(before)
    ids = [r["id"] for r in read_results(results)]
    assert sorted(ids) == [f"q{i:02d}" for i in range(12)]
    assert len(ids) == len(set(ids)) == 12
    assert all(r["scores"]["strict"] for r in read_results(results))
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["resumed_at"]


def test_a_finished_run_is_not_repeated_and_other_settings_are_refused(
    dataset: Path, scripted: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    s = RunSettings(str(dataset), "llm", f"replay:{scripted}", concurrency=2)
    run(s, out)
    chat = KeyedReplayChatModel(keyed={}, ordered=[])  # any call would fail
    summary = run(s, out, agent=build_agent(s, out, chat_model=chat))
    assert summary["ran"] == 0 and summary["finished"] == 6
    from agent.errors import InputError

    with pytest.raises(InputError, match="mode"):
        run(RunSettings(str(dataset), "oracle"), out)


def test_an_item_over_its_time_limit_is_a_timeout(dataset: Path, tmp_path: Path) -> None:
    s = RunSettings(str(dataset), "llm", "replay", concurrency=6, item_timeout_s=0.3, limit=2)
    chat = KeyedReplayChatModel(keyed={}, ordered=[model(4)] * 2, delay_s=1.0)
    run(s, tmp_path / "run", agent=build_agent(s, tmp_path / "run", chat_model=chat))
    rows = read_results(tmp_path / "run" / "results.jsonl")
    assert [r["error_class"] for r in rows] == ["timeout", "timeout"]


def test_report_tables_and_wilson_interval(dataset: Path, scripted: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    run(RunSettings(str(dataset), "llm", f"replay:{scripted}", concurrency=1), out)
    summary = report(out)
    strict = next(t for t in summary["rules"] if t["rule"] == "strict")
    assert (strict["correct"], strict["scored"]) == (4, 6)
    assert summary["error_classes"] == {"ok": 4, "wrong answer": 1, "parse": 1}
    assert "| strict | 4 | 6 | 66.7% |" in (out / "report.md").read_text()
    assert (out / "report.csv").read_text().count("\n") == 3
    assert json.loads((out / "report.json").read_text())["mean_attempts"] > 1
    assert (out / "report.png").stat().st_size > 1000
    lo, hi = wilson(4, 6)
    assert lo == pytest.approx(0.3000, abs=1e-3) and hi == pytest.approx(0.9032, abs=1e-3)
    assert wilson(0, 0) == (0.0, 0.0)


def test_bench_command_runs_oracle_and_reports(tmp_path: Path, capsys: Any) -> None:
    from benchmarks.datasets import DEFAULT_DATA

    if not DEFAULT_DATA.is_dir():
        pytest.skip(f"benchmark data not found at {DEFAULT_DATA}")
    out = tmp_path / "nl4opt"
    code = main(["bench", "nl4opt-dev@gold", "--mode", "oracle", "--limit", "5", "--out", str(out)])
    assert code == 0
    assert "| strict | 5 | 5 | 100.0% |" in capsys.readouterr().out
    assert main(["bench", "report", str(out)]) == 0
    assert "nl4opt-dev@gold (oracle)" in capsys.readouterr().out


def test_nl4opt_integer_labels_are_the_bank_models_optima_and_the_five_statuses(
    tmp_path: Path,
) -> None:
    """``nl4opt-dev@integer``: the oracle solves each item's bank model (or, for the five with no
    optimum as stated, its raw declarations) and matches every label under both rules."""
    from benchmarks.datasets import DEFAULT_DATA, load

    if not DEFAULT_DATA.is_dir():
        pytest.skip(f"benchmark data not found at {DEFAULT_DATA}")
    ds = load("nl4opt-dev@integer")
    assert sum(it.expect == "infeasible" for it in ds.items) == 5
    out = tmp_path / "int"
    report = run(RunSettings("nl4opt-dev@integer", "oracle", concurrency=2), out)
    rows = read_results(out / "results.jsonl")
    assert len(rows) == 99 and all(
        r["scores"]["strict"] and r["scores"]["lenient"] for r in rows
    ), report
    statuses = {r["status"] for r in rows if r["expect"] == "infeasible"}
    assert statuses <= {"INFEASIBLE", "UNBOUNDED"} and statuses


def test_oracle_mode_solves_complexor_and_says_why_an_item_cannot_run(tmp_path: Path) -> None:
    from benchmarks.datasets import DEFAULT_DATA

    if not DEFAULT_DATA.is_dir():
        pytest.skip(f"benchmark data not found at {DEFAULT_DATA}")
    out = tmp_path / "cx"
    run(RunSettings("complexor@coe", "oracle", limit=1), out)
    row = read_results(out / "results.jsonl")[0]
    assert row["id"] == "aircraft_assignment" and row["error_class"] == "ok"
    assert row["objective"] == pytest.approx(700)
    with pytest.raises(Unsupported, match="no hand-written five-element model"):
        oracle_request(Item("no_such_problem", "text", "milp", "value", gold={"gt_model": "x"}))


def test_words2routes_oracle_solves_the_converted_tsp_and_names_what_it_cannot(
    tmp_path: Path,
) -> None:
    from benchmarks.datasets import DEFAULT_DATA
    from benchmarks.words2routes import NotConvertible, to_spec

    if not DEFAULT_DATA.is_dir():
        pytest.skip(f"benchmark data not found at {DEFAULT_DATA}")
    out = tmp_path / "w2r"
    run(RunSettings("words2routes@v1", "oracle", limit=1, time_limit_s=1.0), out)
    row = read_results(out / "results.jsonl")[0]
    assert row["id"] == "1-tsp/A-TSP/05_points"
    assert row["scores"] == {"feasible": True, "optimal": True}
    assert row["objective"] == pytest.approx(16.64, abs=0.01)
    with pytest.raises(NotConvertible, match="4-tsp/B-BTSP"):
        to_spec("4-tsp/B-BTSP/10_points", "")


def test_planning_items_in_parallel_all_validate(tmp_path: Path) -> None:
    """unified-planning's global environment is shared by concurrent items: before it was locked,
    two blocksworld problems read at once failed with "different environment" or a KeyError."""
    from benchmarks.datasets import DEFAULT_DATA

    if not DEFAULT_DATA.is_dir():
        pytest.skip(f"benchmark data not found at {DEFAULT_DATA}")
    out = tmp_path / "bw"
    run(RunSettings("llmp/blocksworld", "oracle", concurrency=4, time_limit_s=20), out)
    rows = read_results(out / "results.jsonl")
    assert len(rows) == 20
    assert all(r["scores"]["valid"] for r in rows), [r.get("error") for r in rows]


def test_a_run_names_its_planner(tmp_path: Path) -> None:
    from agent.errors import InputError
    from benchmarks.datasets import DEFAULT_DATA

    with pytest.raises(InputError, match="--planner must be one of"):
        RunSettings("llmp/blocksworld", "oracle", planner="lama")
    if not DEFAULT_DATA.is_dir():
        pytest.skip(f"benchmark data not found at {DEFAULT_DATA}")
    out = tmp_path / "bw"
    run(RunSettings("llmp/blocksworld", "oracle", limit=1, planner="symk"), out)
    config = json.loads((out / "config.json").read_text())
    assert config["agent"]["planner"] == "symk" and config["settings"]["planner"] == "symk"
    row = read_results(out / "results.jsonl")[0]
    assert row["scores"] == {"valid": True} and row["status"] == "OPTIMAL"
    with pytest.raises(InputError, match="planner='symk', not 'auto'"):
        run(RunSettings("llmp/blocksworld", "oracle", limit=2, planner="auto"), out)


def test_a_local_models_reply_may_not_outlast_its_item(tmp_path: Path) -> None:
    """The local engine serves one call at a time: a reply left sampling after its item timed out
    held up the items after it (two items of a real run timed out that way). A bench run's local
    model gets the item limit as its reply time budget, unless ``[local] time_budget_s`` says."""
    from agent.config import Config
    from benchmarks.runner import RunSettings, build_agent

    s = RunSettings("nl4opt-dev@gold", "llm", "local:/nowhere/model", item_timeout_s=42.0)
    agent = build_agent(s, tmp_path, config=Config())
    assert agent.client.chat_model.time_budget_s == 42.0
    given = Config(local={"time_budget_s": 7.5})
    assert build_agent(s, tmp_path, config=given).client.chat_model.time_budget_s == 7.5


def test_the_local_time_budget_is_a_positive_number_of_seconds() -> None:
    from agent.config import check_local

    assert check_local({"time_budget_s": 300}) == {"time_budget_s": 300.0}
    for bad in (0, -1.0, "soon", True):
        with pytest.raises(ConfigError, match="time_budget_s must be"):
            check_local({"time_budget_s": bad})


def test_a_report_expects_the_items_the_run_was_asked_for() -> None:
    from benchmarks.report import expected_items

    assert expected_items({"items": 642, "settings": {"sample": 100, "limit": None}}) == 100
    assert expected_items({"items": 642, "settings": {"sample": 100, "limit": 36}}) == 36
    assert expected_items({"items": 99, "settings": {"sample": None, "limit": None}}) == 99
    assert expected_items({"items": 20, "settings": {"sample": 50}}) == 20
    assert expected_items({}) is None


def test_a_reply_cut_off_by_its_token_budget_is_a_parse_failure_not_the_solvers() -> None:
    from benchmarks.scoring import error_class

    row = {
        "expect": "value",
        "scores": {"strict": False, "lenient": False},
        "status": "ERROR",
        "outcome": "cut_off",
        "error": "gave up after 1 attempt(s); the last one failed at formalize (cut_off)",
    }
    assert error_class(row) == "parse"
    assert error_class({**row, "outcome": "solver"}) == "solver"
