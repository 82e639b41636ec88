"""Hostile use of the ``formalist`` command: bad plot paths, damaged databases, broken run folders,
bad bench limits, concurrent runs, bad examples and malformed formal input. Each one is a clear
one-line error with the documented exit status, never a traceback, and nothing stored is lost."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from agent.cli import main
from agent.config import Config
from agent.types import Answer, Request
from benchmarks.runner import RunSettings, read_results, run
from solvers.base import Status

FIXTURES = Path(__file__).parents[1] / "fixtures"
MILP = FIXTURES / "milp"

TINY_TSP = """NAME: tiny
TYPE: TSP
DIMENSION: 5
EDGE_WEIGHT_TYPE: EUC_2D
NODE_COORD_SECTION
1 0 0
2 10 0
3 10 10
4 0 10
5 5 5
EOF
"""


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str) -> bool:
    return "Traceback" not in err and len(err.strip().splitlines()) == 1


# -- 6: --plot ---------------------------------------------------------------------------------------
@pytest.fixture
def tsp(tmp_path: Path) -> Path:
    f = tmp_path / "tiny.tsp"
    f.write_text(TINY_TSP)
    return f


@pytest.mark.parametrize("where", ["missing_folder", "exe", "folder", "no_suffix"])
def test_a_bad_plot_path_is_refused_before_solving(
    where: str, tsp: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = {
        "missing_folder": tmp_path / "nonexist" / "x.png",
        "exe": tmp_path / "out.exe",
        "folder": tmp_path,
        "no_suffix": tmp_path / "routes",
    }[where]
    code, out, err = cli(capsys, "solve", str(tsp), "--time-limit", "1", "--plot", str(target))
    assert code == 2, err
    assert out == ""  # refused before solving: no answer printed
    assert one_line_error(err) and "--plot" in err
    assert not (tmp_path / "nonexist").exists() and not (tmp_path / "out.exe").exists()


def test_a_good_plot_path_draws(
    tsp: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "routes.svg"
    code, out, err = cli(capsys, "solve", str(tsp), "--time-limit", "1", "--plot", str(target))
    assert code == 0, err
    assert "status: " in out and target.stat().st_size > 1000
    assert f"wrote the plot to {target.resolve()}" in out


def test_the_plot_path_goes_to_stderr_under_json(
    tsp: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "routes.png"
    code, out, err = cli(
        capsys, "solve", str(tsp), "--time-limit", "1", "--plot", str(target), "--json"
    )
    assert code == 0, err
    assert json.loads(out)["kind"] == "routing"  # stdout stays one JSON object
    assert f"wrote the plot to {target.resolve()}" in err and target.is_file()


@pytest.mark.parametrize(
    ("exc", "status"), [(OSError(28, "No space left on device"), 2), (ValueError("boom"), 1)]
)
def test_a_failure_while_writing_the_plot_is_one_line(
    exc: Exception,
    status: int,
    tsp: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import agent.routing_plot

    def fail(answer: Any, path: Any) -> Path:
        raise exc

    monkeypatch.setattr(agent.routing_plot, "plot_answer", fail)
    code, out, err = cli(
        capsys, "solve", str(tsp), "--time-limit", "1", "--plot", str(tmp_path / "r.png")
    )
    assert code == status
    assert "status: " in out
    assert one_line_error(err) and "cannot write the plot" in err


# -- 7: damaged databases ----------------------------------------------------------------------------
def not_sqlite(tmp_path: Path) -> tuple[Path, bytes]:
    f = tmp_path / "corrupt.sqlite"
    data = b"this is a text file, not an SQLite database\n" * 50
    f.write_bytes(data)
    return f, data


def foreign_sqlite(tmp_path: Path) -> tuple[Path, bytes]:
    f = tmp_path / "other.sqlite"
    db = sqlite3.connect(f)
    db.execute("CREATE TABLE people (name TEXT)")
    db.execute("INSERT INTO people VALUES ('ada')")
    db.commit()
    db.close()
    return f, f.read_bytes()


@pytest.mark.parametrize("make", [not_sqlite, foreign_sqlite])
@pytest.mark.parametrize(
    "argv",
    [("chat",), ("tools", "list"), ("tools", "rm", "x"), ("tools", "show", "x")],
    ids=["chat", "tools-list", "tools-rm", "tools-show"],
)
def test_a_file_that_is_not_our_database_is_refused_and_left_alone(
    make: Any,
    argv: tuple[str, ...],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("sys.stdin", _NoInput())
    f, data = make(tmp_path)
    code, _, err = cli(capsys, *argv, "--db", str(f))
    assert code == 2, err
    assert one_line_error(err) and str(f) in err and "not a formalist" in err
    assert f.read_bytes() == data
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(f.name + "-")]


class _NoInput:
    """A stdin that fails the test if it is read: the database is refused before any turn."""

    def readline(self) -> str:
        raise AssertionError("stdin read")

    def isatty(self) -> bool:
        return False

    def __iter__(self) -> Any:
        raise AssertionError("stdin read")


@pytest.mark.parametrize(
    "argv", [("chat",), ("tools", "list"), ("tools", "rm", "x")], ids=["chat", "list", "rm"]
)
def test_a_folder_as_db_is_refused(
    argv: tuple[str, ...],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("sys.stdin", _NoInput())
    folder = tmp_path / "adir"
    folder.mkdir()
    code, _, err = cli(capsys, *argv, "--db", str(folder))
    assert code == 2 and one_line_error(err) and "is a folder" in err
    assert list(folder.iterdir()) == []


def test_reading_a_missing_tool_cache_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "nonexist" / "x.sqlite"
    code, out, _ = cli(capsys, "tools", "list", "--db", str(db))
    assert code == 0 and "no tools cached" in out
    code, _, err = cli(capsys, "tools", "rm", "x", "--db", str(db))
    assert code == 2 and "no tool named 'x'" in err
    code, _, err = cli(capsys, "tools", "show", "x", "--db", str(db))
    assert code == 2 and "no tool named 'x'" in err
    assert not (tmp_path / "nonexist").exists()


def test_a_tool_cache_is_still_made_on_the_first_put(tmp_path: Path) -> None:
    from tool_maker.cache import ToolCache
    from tool_maker.tool import Tool, ToolCall

    db = tmp_path / "deep" / "er" / "tools.sqlite"
    cache = ToolCache(db)
    assert cache.latest() == [] and cache.get("x") is None and cache.remove("x") == 0
    assert cache.versions("x") == [] and not (tmp_path / "deep").exists()
    code = "def double(x: int) -> int:\n    return 2 * x\n"
    call = ToolCall("What is twice 4?", [4], {}, 8)
    tool = Tool(
        "double",
        "double",
        "doubling",
        "Twice x.",
        "double(x: int) -> int",
        code,
        (call,),
        (call,),
        "m",
    )
    assert cache.put(tool).version == 1
    cache.close()
    again = ToolCache(db)
    assert [t.name for t in again.latest()] == ["double"] and again.remove("double") == 1
    again.close()


# -- 8, 9: run folders -------------------------------------------------------------------------------
@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    f = tmp_path / "two.jsonl"
    f.write_text(
        "".join(
            json.dumps({"id": i, "en_question": f"Maximize 3x with x at most {n}.", "en_answer": a})
            + "\n"
            for i, n, a in (("a", 4, "12"), ("b", 5, "15"), ("c", 6, "18"))
        )
    )
    return f


@pytest.mark.parametrize("text", ["{bad", "[1]", '{"settings": 3}', "\xff"])
def test_a_bad_config_json_names_the_file(
    text: str, dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    out.mkdir()
    cfg = out / "config.json"
    cfg.write_bytes(text.encode("latin-1"))
    code, _, err = cli(capsys, "bench", str(dataset), "--mode", "oracle", "--out", str(out))
    assert code == 2 and one_line_error(err) and str(cfg) in err
    assert cfg.read_bytes() == text.encode("latin-1")
    assert not (out / "results.jsonl").exists()
    code, _, err = cli(capsys, "bench", "report", str(out))
    assert code == 2 and one_line_error(err) and str(cfg) in err


@pytest.mark.parametrize("missing", ["nonexist", "afile", "empty"])
def test_bench_report_of_a_missing_folder_is_exit_2(
    missing: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "afile").write_text("x")
    (tmp_path / "empty").mkdir()
    code, _, err = cli(capsys, "bench", "report", str(tmp_path / missing))
    assert code == 2 and one_line_error(err) and "not a run folder" in err
    assert not (tmp_path / "nonexist").exists()


def test_a_run_that_fails_before_it_begins_leaves_no_folder(
    dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "new" / "run"
    code, _, err = cli(
        capsys,
        "bench",
        str(dataset),
        "--mode",
        "replay",
        "--model",
        str(tmp_path / "missing.json"),
        "--out",
        str(out),
    )
    assert code == 2 and one_line_error(err)
    assert not (tmp_path / "new").exists()


# -- 13: bench limits -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--item-timeout", "nan", "--item-timeout"),
        ("--item-timeout", "inf", "--item-timeout"),
        ("--item-timeout", "-1", "--item-timeout"),
        ("--time-limit", "nan", "--time-limit"),
        ("--limit", "0", "--limit"),
        ("--limit", "-1", "--limit"),
        ("--max-attempts", "0", "--max-attempts"),
    ],
)
def test_bad_bench_limits_are_refused(
    flag: str,
    value: str,
    message: str,
    dataset: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "run"
    code, _, err = cli(
        capsys, "bench", str(dataset), "--mode", "oracle", flag, value, "--out", str(out)
    )
    assert code == 2 and one_line_error(err) and message in err
    assert not out.exists()


def test_limit_one_runs_one_item(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert main(["bench", str(dataset), "--mode", "oracle", "--limit", "1", "--out", str(out)]) == 0
    assert [r["id"] for r in read_results(out / "results.jsonl")] == ["a"]


# -- 12: the item clock starts when the item runs ---------------------------------------------------
class FakeAgent:
    """Answers at once, except requests naming a ``slow`` item, which take ``delay`` seconds."""

    def __init__(self, slow: set[str], delay: float) -> None:
        self.config = Config(cache="")
        self.slow, self.delay = slow, delay

    def solve(self, request: Request) -> Answer:
        if any(f"at most {n}." in request.text for n in self.slow):
            time.sleep(self.delay)
        return Answer(Status.OPTIMAL, "milp", objective=12.0, verified=True)


def test_waiting_for_a_worker_does_not_count_against_the_item(
    dataset: Path, tmp_path: Path
) -> None:
    # One at a time, so two worker threads: items a and b time out after 0.3 s but their threads
    # run on for 2 s; c waits for a thread and, once it gets one, answers at once.
    s = RunSettings(str(dataset), "llm", "replay", concurrency=1, item_timeout_s=0.3)
    summary = run(s, tmp_path / "run", agent=FakeAgent({"4", "5"}, 2.0), progress=False)
    rows = {r["id"]: r for r in read_results(tmp_path / "run" / "results.jsonl")}
    assert rows["a"]["status"] == rows["b"]["status"] == "TIMEOUT"
    assert rows["c"]["status"] == "OPTIMAL" and rows["c"]["timed_out"] is False
    assert rows["c"]["elapsed_s"] < 0.3
    assert summary["finished"] == 3


def test_an_item_that_never_got_a_worker_is_not_stored(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    s = RunSettings(str(dataset), "llm", "replay", concurrency=1, item_timeout_s=0.3)
    summary = run(s, out, agent=FakeAgent({"4", "5"}, 2.0), progress=False, start_wait_s=0.3)
    assert summary["not_started"] == 1
    assert [r["id"] for r in read_results(out / "results.jsonl")] == ["a", "b"]
    # A resume runs it.
    summary = run(s, out, agent=FakeAgent(set(), 0.0), progress=False)
    rows = read_results(out / "results.jsonl")
    assert [r["id"] for r in rows] == ["a", "b", "c"] and rows[2]["status"] == "OPTIMAL"


# -- 14: one run per folder --------------------------------------------------------------------------
def test_a_second_run_on_the_same_folder_is_refused(
    dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    s = RunSettings(str(dataset), "oracle", concurrency=1)
    first: dict[str, Any] = {}

    def slow_row(row: dict[str, Any]) -> None:
        time.sleep(1.0)  # holds the run (and its folder) after each item

    t = threading.Thread(
        target=lambda: first.update(run(s, out, progress=False, on_row=slow_row)), daemon=True
    )
    t.start()
    deadline = time.monotonic() + 30
    while not (out / "results.jsonl").is_file() and time.monotonic() < deadline:
        time.sleep(0.02)
    code, _, err = cli(capsys, "bench", str(dataset), "--mode", "oracle", "--out", str(out))
    t.join(timeout=60)
    assert code == 2 and one_line_error(err) and "another" in err and str(out) in err
    ids = [r["id"] for r in read_results(out / "results.jsonl")]
    assert sorted(ids) == ["a", "b", "c"] and first["finished"] == 3
    # Once the first run is over, the folder is free again (a finished run: nothing to do).
    code, out_text, err = cli(capsys, "bench", str(dataset), "--mode", "oracle", "--out", str(out))
    assert code == 0, err
    assert json.loads(out_text.splitlines()[0])["ran"] == 0


# -- 11: examples go on past a bad one --------------------------------------------------------------
def test_examples_report_a_bad_file_and_go_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "ex"
    folder.mkdir()
    (folder / "a_empty.json").write_text("")
    (folder / "b_binary.lp").write_bytes(b"\xff\xfe\x00binary")
    (folder / "c_knapsack.json").write_text((MILP / "knapsack.json").read_text())
    code, out, _ = cli(capsys, "examples", str(folder))
    assert code == 1
    lines = out.splitlines()
    assert any(line.startswith("a_empty.json") and "FAILED" in line for line in lines)
    assert any(line.startswith("b_binary.lp") and "FAILED" in line for line in lines)
    assert any(line.startswith("c_knapsack.json") and "OPTIMAL" in line for line in lines)


def test_examples_all_good_exit_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "ex"
    folder.mkdir()
    (folder / "knapsack.json").write_text((MILP / "knapsack.json").read_text())
    code, out, _ = cli(capsys, "examples", str(folder))
    assert code == 0 and "OPTIMAL" in out


# -- 15: exit status of solve ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("trunc.json", '{"name": "x", '),
        ("bad.lp", "Minimize\n obj: x +\nSubject To\n c1: x >= \nEnd\n"),
        ("bad.yaml", "variables: [\n"),
    ],
)
def test_malformed_formal_input_exits_2(
    name: str, text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / name
    f.write_text(text)
    code, out, _ = cli(capsys, "solve", str(f))
    assert code == 2
    assert "status: ERROR" in out
    code, out, _ = cli(capsys, "solve", str(f), "--json")
    assert code == 2 and json.loads(out)["status"] == "ERROR"


def test_an_infeasible_model_is_an_answer_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "solve", str(MILP / "infeasible.json"))
    assert code == 0 and "INFEASIBLE" in out


def test_a_failure_on_our_side_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from agent.agent import Agent

    def gave_up(self: Any, *a: Any, **k: Any) -> Answer:
        return Answer(Status.ERROR, "milp", error="gave up after 3 attempt(s)")

    monkeypatch.setattr(Agent, "solve_file", gave_up)
    code, out, _ = cli(capsys, "solve", str(MILP / "knapsack.json"))
    assert code == 1 and "gave up" in out


def test_a_domain_argument_that_is_empty_or_a_problem_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--domain`` given an empty file, or the problem file itself, is named (it used to be
    ignored, or dumped whole into "no known domain called ...")."""
    problem = str(Path(__file__).parents[2] / "examples" / "blocksworld_six_blocks.pddl")
    empty = tmp_path / "empty.pddl"
    empty.write_text("", encoding="utf-8")
    assert main(["solve", problem, "--domain", str(empty)]) == 2
    assert f"--domain {empty} is empty" in capsys.readouterr().err
    assert main(["solve", problem, "--domain", problem]) == 2
    err = capsys.readouterr().err
    assert "--domain is a problem file, not a domain" in err and len(err) < 300


def test_a_folder_an_included_file_and_an_infinite_coefficient_are_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A folder named like a model file, a clingo program whose only mark is ``#include``, and an
    LP coefficient HiGHS reads as infinite: each is a clear refusal, exit 2."""
    folder = tmp_path / "model.json"
    folder.mkdir()
    assert main(["solve", str(folder)]) == 2
    assert "is a folder, not a file" in capsys.readouterr().err
    inc = tmp_path / "inc.lp"
    inc.write_text('a.\n#include "/etc/passwd".\n', encoding="utf-8")
    assert main(["solve", str(inc), "--no-cache"]) == 2
    assert "line 2, column 1: #include is not allowed" in capsys.readouterr().out
    huge = tmp_path / "huge.lp"
    huge.write_text("Minimize\n obj: 1e400 x\nSubject To\n c1: x >= 1\nEnd\n", encoding="utf-8")
    assert main(["solve", str(huge)]) == 2
    out = capsys.readouterr().out
    assert "infinite or at least 1e+20" in out and "coefficient of x is inf" in out


def test_bench_says_where_its_files_are(
    dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    code, text, err = cli(capsys, "bench", str(dataset), "--mode", "oracle", "--out", str(out))
    assert code == 0, err
    last = text.strip().splitlines()[-1]
    assert last.startswith(f"files in {out.resolve()}: results.jsonl, config.json, report.md")
    for name in last.split(": ", 1)[1].split(", "):
        assert (out / name).is_file()


# -- the first hour: help text, broken JSON, compressed instance files -----------------------------
ROOT = Path(__file__).resolve().parents[2]


def test_help_has_no_rest_markup(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--help"], ["solve", "--help"], ["chat", "--help"], ["bench", "--help"]):
        with pytest.raises(SystemExit):
            main(argv)
        out = capsys.readouterr().out
        assert "usage: formalist" in out and "``" not in out, argv


def test_the_no_model_message_names_every_formal_input(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = cli(capsys, "solve", "Plan a delivery round for three vans.", "--no-cache")
    assert code == 2
    for what in ("LP", "MPS", "PDDL", "clingo", "routing", "API requests"):
        assert what in err, what


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('{"variables": [{"name": "x" "upper": 4}],\n "objective": {}}\n', "line 1, column 29"),
        ('{"variables": [\n  {"name": "x"},\n  ],\n "objective": \n', "line 3, column 3"),
        ('{"catalog": {"apis": []},\n "want": [ }\n', "line 2, column 12"),
    ],
)
def test_a_broken_json_file_gets_a_located_json_error(
    text: str, where: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "model.json"
    f.write_text(text)
    code, out, err = cli(capsys, "solve", str(f), "--no-cache")
    assert code == 2, out + err
    assert "the JSON does not parse" in out and where in out, out
    assert "YAML" not in out


def test_a_broken_yaml_file_is_located(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "model.yaml"
    f.write_text("variables:\n  - name: x\n    upper: 4\n objective: [\n")
    code, out, _ = cli(capsys, "solve", str(f), "--no-cache")
    assert code == 2 and "the YAML does not parse" in out and "line 4, column 2" in out


@pytest.mark.parametrize(
    ("source", "compress", "expected"),
    [
        ("examples/production.mps", "gz", 20),
        ("examples/transport.lp", "gz", 930),
        ("examples/knapsack.json", "bz2", 15),
        ("examples/diet.yaml", "xz", None),
        ("tests/fixtures/routing/berlin52.tsp", "gz", None),
        ("examples/blocksworld_six_blocks.pddl", "gz", None),
    ],
)
def test_compressed_instance_files_are_read(
    source: str,
    compress: str,
    expected: float | None,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import bz2
    import gzip
    import lzma

    pack = {"gz": gzip.compress, "bz2": bz2.compress, "xz": lzma.compress}[compress]
    original = ROOT / source
    f = tmp_path / f"{original.name}.{compress}"
    f.write_bytes(pack(original.read_bytes()))
    code, out, err = cli(capsys, "solve", str(f), "--json", "--no-cache", "--time-limit", "5")
    assert code == 0, err
    got = json.loads(out)
    code, out, err = cli(
        capsys, "solve", str(original), "--json", "--no-cache", "--time-limit", "5"
    )
    plain = json.loads(out)
    assert (got["kind"], got["status"]) == (plain["kind"], plain["status"])
    assert got["status"] in ("OPTIMAL", "FEASIBLE")
    if expected is not None:
        assert got["objective"] == pytest.approx(expected)


def test_a_compressed_file_named_by_content_not_suffix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import gzip

    f = tmp_path / "production.mps.gz"
    f.write_bytes(gzip.compress((ROOT / "examples/production.mps").read_bytes()))
    renamed = tmp_path / "download.mps"  # gzip data under a plain name: read by its magic bytes
    renamed.write_bytes(f.read_bytes())
    code, out, err = cli(capsys, "solve", str(renamed), "--json", "--no-cache")
    assert code == 0 and json.loads(out)["objective"] == 20, err


def test_a_gzip_bomb_stops_at_the_cap(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import gzip

    import agent.agent

    monkeypatch.setattr(agent.agent, "MAX_FILE_BYTES", 1_000_000)
    f = tmp_path / "bomb.mps.gz"
    f.write_bytes(gzip.compress(b"*" * 5_000_000))  # 5 KB that inflate to 5 MB
    assert f.stat().st_size < 50_000
    code, out, err = cli(capsys, "solve", str(f))
    assert code == 2 and out == ""
    assert one_line_error(err) and "decompresses to more than 1 MB" in err


@pytest.mark.parametrize("damage", ["truncated", "corrupt"])
def test_a_damaged_archive_is_one_line(
    damage: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import gzip

    data = gzip.compress((ROOT / "examples/production.mps").read_bytes())
    data = data[: len(data) // 2] if damage == "truncated" else data[:12] + b"\x00" * 40
    f = tmp_path / "production.mps.gz"
    f.write_bytes(data)
    code, out, err = cli(capsys, "solve", str(f))
    assert code == 2 and out == ""
    assert one_line_error(err) and "does not decompress (gz)" in err


def test_examples_include_compressed_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import gzip

    (tmp_path / "production.mps.gz").write_bytes(
        gzip.compress((ROOT / "examples/production.mps").read_bytes())
    )
    (tmp_path / "notes.md.gz").write_bytes(gzip.compress(b"# not an example"))
    code, out, err = cli(capsys, "examples", str(tmp_path), "--no-cache")
    assert code == 0, out + err
    assert "== 1 formal examples" in out
    assert any(
        line.startswith("production.mps.gz") and "OPTIMAL" in line and "verified" in line
        for line in out.splitlines()
    )
