"""`formalist chat`: the terminal loop, its commands, and a session picked up again."""

from __future__ import annotations

import io
import json
from pathlib import Path

from rich.console import Console

from agent.agent import Agent
from agent.chat import run_chat
from agent.config import Config
from agent.session import SessionStore
from conftest import golden_json, scripted


def test_chat_answers_traces_exports_and_resumes(tmp_path: Path) -> None:
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
            (Path(__file__).parent / "fixtures/milp/diet.yaml").read_text(),
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
