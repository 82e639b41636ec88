"""`formalist chat`: the terminal loop, its commands, and a session picked up again."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from agent.agent import Agent
from agent.chat import run_chat
from agent.config import Config
from agent.session import SessionStore
from conftest import golden_json, scripted


def test_chat_answers_traces_exports_and_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # chat has no grounding option; the knapsack's numbers are not the request's: report them.
    monkeypatch.setattr("agent.agent.DEFAULT_GROUNDING", "report")
    store = SessionStore(tmp_path / "s.sqlite")
    agent = Agent(scripted("not json", golden_json("knapsack.json")), config=Config(cache=""))
    lines = iter(
        [
            "Pack the most valuable boxes into a 15 kg bag.",
            "/trace",
            f"/export {tmp_path / 'out.json'}",
            "/model",
            "/quit",
        ]
    )
    out = io.StringIO()
    session = run_chat(
        agent,
        store,
        "chat-1",
        read=lambda _: next(lines),
        console=Console(file=out, width=120, color_system=None),
    )
    text = out.getvalue()
    assert "OPTIMAL" in text and "take[yellow]" in text
    assert "attempt 1: formalize -> parse" in text and "attempt 2: verify -> ok" in text
    exported = json.loads((tmp_path / "out.json").read_text())
    assert exported["id"] == "chat-1" and len(exported["turns"]) == 1
    assert session.id == "chat-1"
    # a new process picks the conversation up: the turn is in the database
    again = SessionStore(tmp_path / "s.sqlite")
    assert [t.text for t in again.turns("chat-1")] == [
        "Pack the most valuable boxes into a 15 kg bag."
    ]


def test_chat_reports_errors_and_keeps_going(tmp_path: Path) -> None:
    store = SessionStore(tmp_path / "s.sqlite")
    agent = Agent(config=Config(cache=""))  # no model: words cannot be formalized
    lines = iter(
        [
            "Maximize profit from chairs and tables.",
            (Path(__file__).parents[1] / "fixtures/milp/diet.yaml").read_text(),
            "/quit",
        ]
    )
    out = io.StringIO()
    run_chat(
        agent,
        store,
        None,
        read=lambda _: next(lines),
        console=Console(file=out, width=120, color_system=None),
    )
    text = out.getvalue()
    assert "No language model is configured" in text
    assert "OPTIMAL" in text  # the formal model in the second turn needs no model


# -- messages of many lines, files, commands -----------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]
LP_TEXT = (ROOT / "examples/transport.lp").read_text()


def _chat(tmp_path: Path, read, agent: Agent | None = None) -> tuple[str, list]:
    """Run the loop with ``read``; returns what it printed and the session's recorded turns."""
    store = SessionStore(tmp_path / "s.sqlite")
    out = io.StringIO()
    session = run_chat(
        agent or Agent(config=Config(cache="")),
        store,
        "t",
        read=read,
        console=Console(file=out, width=200, color_system=None),
    )
    return out.getvalue(), store.turns(session.id)


def _lines(*items: str):
    it = iter(items)

    def read(prompt: str) -> str:
        try:
            return next(it)
        except StopIteration:
            raise EOFError from None

    return read


def test_a_bracketed_paste_at_the_terminal_is_one_message(tmp_path: Path) -> None:
    pytest.importorskip("prompt_toolkit")
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output import DummyOutput

    from agent.chat import terminal_reader

    assert LP_TEXT.count("\n") > 5
    with create_pipe_input() as pipe:
        # what a terminal sends for a paste (ESC[200~ ... ESC[201~), then Enter, then /quit
        pipe.send_text("\x1b[200~" + LP_TEXT + "\x1b[201~" + "\r")
        pipe.send_text("/quit\r")
        text, turns = _chat(tmp_path, terminal_reader(input=pipe, output=DummyOutput()))
    assert len(turns) == 1, text  # not one request per line
    assert turns[0].text == LP_TEXT.strip()
    assert "OPTIMAL milp - verified" in text and "930" in text
    assert "No language model" not in text


def test_escape_enter_starts_a_new_line_and_enter_sends(tmp_path: Path) -> None:
    pytest.importorskip("prompt_toolkit")
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output import DummyOutput

    from agent.chat import terminal_reader

    with create_pipe_input() as pipe:
        pipe.send_text("Maximize\x1b\r obj: 3 x\x1b\rSubject To\x1b\r c: x <= 4\x1b\rEnd\r")
        read = terminal_reader(input=pipe, output=DummyOutput())
        assert read("you> ") == "Maximize\n obj: 3 x\nSubject To\n c: x <= 4\nEnd"


def test_paste_command_sends_the_lines_up_to_end_as_one_message(tmp_path: Path) -> None:
    text, turns = _chat(tmp_path, _lines("/paste", *LP_TEXT.splitlines(), "/end", "/quit"))
    assert len(turns) == 1 and turns[0].text == LP_TEXT.strip()
    assert "OPTIMAL milp - verified" in text


def test_piped_input_is_one_message_blank_lines_and_all(tmp_path: Path) -> None:
    from agent.chat import stream_reader

    text, turns = _chat(tmp_path, stream_reader(io.StringIO(LP_TEXT.replace("\n", "\n\n"))))
    assert len(turns) == 1
    assert "OPTIMAL milp - verified" in text


def test_chat_command_reads_piped_stdin_as_one_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from agent.cli import main

    monkeypatch.setattr("sys.stdin", io.StringIO(LP_TEXT))
    assert main(["chat", "--db", str(tmp_path / "s.sqlite"), "--no-cache"]) == 0
    out = capsys.readouterr().out
    assert out.count("OPTIMAL") == 1 and "No language model" not in out


def test_a_file_path_is_read_as_solve_reads_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gzip

    monkeypatch.chdir(ROOT)
    spaced = tmp_path / "my models" / "production.mps.gz"
    spaced.parent.mkdir()
    spaced.write_bytes(gzip.compress((ROOT / "examples/production.mps").read_bytes()))
    text, turns = _chat(
        tmp_path,
        _lines(
            "examples/knapsack.json",
            f"'{spaced}'",  # as a terminal drops a file: quoted, blanks in the path
            str(ROOT / "examples/transport.lp"),  # absolute: a path, not a command
            "/quit",
        ),
    )
    assert "read examples/knapsack.json" in text
    assert [t.answer["status"] for t in turns] == ["OPTIMAL"] * 3
    assert [t.answer["objective"] for t in turns] == [15, 20, 930]
    assert turns[0].text == (ROOT / "examples/knapsack.json").read_text()


def test_a_missing_file_is_an_error_not_a_request(tmp_path: Path) -> None:
    text, turns = _chat(tmp_path, _lines("models/missing.lp", str(tmp_path), "/quit"))
    assert "no such file: models/missing.lp" in text
    assert "is a folder" in text
    assert turns == [] and "No language model" not in text


def test_help_lists_commands_and_follow_ups_of_every_kind(tmp_path: Path) -> None:
    from agent.chat import COMMANDS, follow_ups
    from agent.kinds import KIND_NAMES, KINDS

    # Each kind says what its follow-ups do (Kind.follow_up): /help asks every kind.
    assert follow_ups() == {name: KINDS[name].follow_up for name in KIND_NAMES}
    assert all(what.strip() for what in follow_ups().values())
    text, turns = _chat(tmp_path, _lines("/help", "/quit"))
    assert turns == []  # not sent as a request
    for command in COMMANDS:
        assert command.split()[0] in text
    for kind in KIND_NAMES:
        assert f"  {kind} " in text
    assert "what if the budget is 5000?" in text


def test_unknown_commands_are_refused_not_solved(tmp_path: Path) -> None:
    text, turns = _chat(tmp_path, _lines("/frobnicate now", "/HELP", "/quit"))
    assert "unknown command /frobnicate; /help lists the commands" in text
    assert "Commands:" in text  # commands are case-insensitive
    assert turns == [] and "No language model" not in text


def test_a_request_over_apis_from_a_file_then_its_answers_need_no_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    text, turns = _chat(
        tmp_path,
        _lines("examples/travel/incomplete.yaml", "nights = 5, passport_number = P1", "/quit"),
    )
    assert [t.answer["status"] for t in turns] == ["NEEDS_INFO", "OPTIMAL"], text
    assert [t.answer["mode"] for t in turns] == ["new", "answer"]
    assert "No language model" not in text


def test_a_one_line_model_is_not_taken_for_a_path(tmp_path: Path) -> None:
    one_line = (
        '{"variables":[{"name":"x","upper":4,"description":"a/b.c"}],'
        '"objective":{"sense":"max","expression":"3*x"}}'
    )
    text, turns = _chat(tmp_path, _lines(one_line, "/quit"))
    assert "no such file" not in text
    assert len(turns) == 1 and turns[0].answer["objective"] == 12
