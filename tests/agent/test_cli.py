"""The `formalist` command and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from agent.agent import Agent
from agent.cli import main
from agent.config import Config
from agent.errors import InputError
from conftest import MILP, golden_json

ROOT = Path(__file__).resolve().parents[2]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_solve_json_has_the_promised_fields(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "solve", str(MILP / "knapsack.json"), "--json", "--no-cache")
    assert code == 0
    data = json.loads(out)
    assert {"status", "kind", "objective", "values", "verified", "attempts", "artifact"} <= set(
        data
    )
    assert (
        data["status"],
        data["kind"],
        data["objective"],
        data["verified"],
        data["attempts"],
    ) == ("OPTIMAL", "milp", 15.0, True, 1)
    assert data["values"]["take[green]"] == 0.0
    assert data["artifact"]["name"] == "knapsack"


def test_infeasible_json_has_a_diagnosis_and_exit_zero(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "solve", str(MILP / "infeasible.json"), "--json", "--no-cache", "--trace"
    )
    assert code == 0
    data = json.loads(out)
    assert data["status"] == "INFEASIBLE" and data["objective"] is None
    assert {m["name"] for m in data["diagnosis"]["members"]} == {
        "headcount",
        "team_minimum[support]",
        "team_minimum[sales]",
    }
    assert data["trace"][0]["status"] == "INFEASIBLE"


def test_inline_model_text_and_time_limit(capsys: pytest.CaptureFixture[str]) -> None:
    text = json.dumps(golden_json("transport.json"))
    code, out, _ = run(capsys, "solve", text, "--time-limit", "5", "--no-cache")
    assert code == 0 and "status: OPTIMAL" in out and "930" in out


def test_words_without_a_model_exit_2_with_how_to(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "solve", "Maximize profit from chairs and tables.")
    assert code == 2 and "FORMALIST_MODEL" in err


def test_solve_with_a_replay_model(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rec = tmp_path / "rec.json"
    rec.write_text(json.dumps(["no json here", json.dumps(golden_json("knapsack.json"))]))
    code, out, _ = run(
        capsys,
        "solve",
        "Pack the boxes into a 15 kg bag.",
        "--model",
        f"replay:{rec}",
        "--json",
        "--max-attempts",
        "2",
    )
    data = json.loads(out)
    assert code == 0 and data["status"] == "OPTIMAL" and data["attempts"] == 2


def test_examples_main_job(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "examples", str(ROOT / "examples"), "--no-cache")
    assert code == 0
    assert "natural-language examples skipped" in out and "FORMALIST_MODEL" in out
    assert out.count("verified") >= 4 and "INFEASIBLE" in out


def test_backends_lists_both(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "backends")
    assert code == 0
    assert "highs" in out and "pyomo" in out and "unavailable" not in out


def test_json_output_is_clean_in_a_fresh_process(tmp_path: Path) -> None:
    """HiGHS prints a banner on its first instance; --json output must still parse."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "agent.cli",
            "solve",
            str(MILP / "diet.yaml"),
            "--json",
            "--no-cache",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["objective"] == pytest.approx(4.0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("   \n\t ", "empty"),
        ("x" * 3_000_000, "too large"),
        ("ab\x00cd", "binary"),
        (b"\xff\xfe\x00binary", "binary"),
    ],
)
def test_bad_requests_get_clear_errors(text: str | bytes, message: str) -> None:
    with pytest.raises(InputError, match=message):
        Agent(config=Config(cache="")).solve(text)  # type: ignore[arg-type]


def test_binary_file_and_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blob = tmp_path / "model.json"
    blob.write_bytes(bytes(range(256)) * 10)
    code, _, err = run(capsys, "solve", str(blob))
    assert code == 2 and "not UTF-8" in err
    with pytest.raises(InputError, match="cannot read"):
        Agent(config=Config(cache="")).solve_file(tmp_path / "missing.json")


def test_malformed_model_file_is_reported_not_raised(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(
        '{"variables": [{"name": "x"}], "objective": {"sense": "max", "expression": "x +"}}'
    )
    code, out, _ = run(capsys, "solve", str(bad), "--json")
    data = json.loads(out)
    assert code == 2 and data["status"] == "ERROR"  # unusable input: reported, and exit 2
    assert "objective.expression" in data["error"] and "operand is missing" in data["error"]


def test_hostile_expression_in_a_file_is_rejected(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad = tmp_path / "evil.json"
    bad.write_text(
        json.dumps(
            {
                "variables": [{"name": "x", "upper": 1}],
                "objective": {
                    "sense": "max",
                    "expression": "__import__('os').system('touch pwned')",
                },
            }
        )
    )
    code, out, _ = run(capsys, "solve", str(bad), "--json")
    assert code == 2 and json.loads(out)["status"] == "ERROR"
    assert "double underscores" in json.loads(out)["error"]
    assert not (tmp_path / "pwned").exists() and not Path("pwned").exists()


def test_a_forced_kind_keeps_a_words_file_as_words_whatever_its_suffix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from agent.router import route
    from agent.types import Request

    words = "Stack block a on block b, and block b on block c. All three start on the table."
    for name in ("request.md", "blocks", "request.text"):
        assert route(Request(words, name, "pddl")).formal is False, name
    # A file named as formal input, or holding it, is still read as such.
    assert route(Request(words, "broken.pddl", "pddl")).formal is True
    assert route(Request("(define (problem p) (:domain d))", "p.md", "pddl")).formal is True
    f = tmp_path / "request.md"
    f.write_text(words, encoding="utf-8")
    assert main(["solve", str(f), "--kind", "pddl"]) == 2
    err = capsys.readouterr().err
    assert "No language model is configured" in err  # words for a model, not a PDDL parse error
