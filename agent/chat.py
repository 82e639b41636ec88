"""``formalist chat``: a terminal conversation with the agent, answers rendered with rich.

Commands: ``/model SPEC`` switches the language model, ``/trace`` shows the last answer's attempts,
``/export FILE`` writes the session as JSON, ``/quit`` leaves. The session is stored like the
service's (same database), so ``--session ID`` picks a conversation up where it stopped.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.agent import Agent
from agent.errors import FormalistError
from agent.session import Session, SessionStore
from agent.types import Answer


def render(answer: Answer, console: Any) -> None:
    from rich.markup import escape
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    colour = {"OPTIMAL": "green", "FEASIBLE": "green", "NEEDS_INFO": "yellow"}.get(
        answer.status.value, "red"
    )
    title = f"[bold {colour}]{answer.status.value}[/] {answer.kind}" + (
        " - verified" if answer.verified else ""
    )
    # Model text is data: shown as plain text, never parsed as rich markup ("x[yellow]").
    console.print(Panel(Text(answer.error or answer.explanation or ""), title=title, expand=False))
    shown = {k: v for k, v in answer.values.items() if abs(v) > 1e-9}
    if shown:
        table = Table("variable", "value")
        for k, v in list(shown.items())[:50]:
            table.add_row(escape(k), f"{v:g}")
        console.print(table)
    if answer.plan:
        table = Table("#", "action")
        for i, step in enumerate(answer.plan, 1):
            table.add_row(str(i), escape(step))
        console.print(table)


def run_chat(
    agent: Agent,
    store: SessionStore,
    session_id: str | None,
    read: Callable[[str], str] = input,
    console: Any = None,
) -> Session:
    """The loop; ``read`` and ``console`` are parameters so tests can drive it."""
    from rich.console import Console
    from rich.text import Text

    console = console or Console()
    session = Session(store, agent, session_id)
    console.print(f"[dim]session {session.id} - /model SPEC, /trace, /export FILE, /quit[/]")
    last: Answer | None = None
    while True:
        try:
            line = read("you> ").strip()
        except (EOFError, KeyboardInterrupt):
            break
        if not line:
            continue
        if line in ("/quit", "/exit"):
            break
        if line.startswith("/model"):
            spec = line.removeprefix("/model").strip()
            if not spec:
                console.print(f"model: {agent.config.model or '(none)'}")
                continue
            agent = Agent(spec, config=agent.config)
            session = Session(store, agent, session.id)
            console.print(f"model: {spec}")
            continue
        if line == "/trace":
            if last is None:
                console.print("no answer yet")
            for a in last.trace if last else []:
                console.print(
                    Text(f"attempt {a.number}: {a.stage} -> {a.outcome} {a.feedback[:300]}")
                )
            continue
        if line.startswith("/export"):
            path = Path(line.removeprefix("/export").strip() or f"session-{session.id}.json")
            turns = [
                {"n": t.n, "user": t.text, "answer": t.answer} for t in store.turns(session.id)
            ]
            path.write_text(json.dumps({"id": session.id, "turns": turns}, indent=1, default=str))
            console.print(f"wrote {path}")
            continue
        try:
            last = session.ask(line)
        except FormalistError as e:
            console.print(Text(str(e), style="red"))
            continue
        render(last, console)
    return session
