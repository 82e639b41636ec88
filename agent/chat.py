"""``formalist chat``: a terminal conversation with the agent, answers rendered with rich.

A message is whatever is sent in one go, however many lines it has:

- at a terminal (prompt_toolkit), a paste stays one message (bracketed paste: the pasted lines land
  in the input and Enter sends them together); Esc then Enter (or Alt+Enter) starts a new line;
- ``/paste`` reads the lines that follow, up to a line ``/end``, as one message (any terminal);
- when standard input is not a terminal (``formalist chat < model.lp``, ``cat x | formalist chat``),
  the whole input is one message: a formal model keeps its blank lines. It is answered, and the
  chat ends;
- a message that is the path of a file is read as ``formalist solve`` reads that file.

Commands are listed by ``/help``, with the follow-ups each kind of problem takes (as the kind says
in ``Kind.follow_up``); an unknown ``/command`` is refused, never sent as a request. The session is
stored like the service's (same database), so ``--session ID`` picks a conversation up where it
stopped.
"""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from agent.agent import Agent
from agent.errors import FormalistError, InputError
from agent.session import Session, SessionStore
from agent.types import Answer

Reader = Callable[[str], str]
"""Returns the next message (it may span lines) after showing a prompt; ``EOFError`` at the end."""

PROMPT = "you> "
PASTE_END = "/end"

COMMANDS: dict[str, str] = {
    "/help": "this help",
    "/paste": f"a multi-line message: the lines up to a line {PASTE_END} are sent as one",
    "/model [SPEC]": "show the language model, or switch to SPEC (openai:MODEL, ollama:MODEL...)",
    "/trace": "the attempts behind the last answer (formalize, validate, solve, verify)",
    "/export [FILE]": "write the session as JSON (default session-ID.json)",
    "/quit": "leave (also /exit, or Ctrl-D)",
}


def follow_ups() -> dict[str, str]:
    """What a follow-up does after an answer of each kind (a follow-up starts with now, what if,
    instead, add, remove, at most, ...), as each kind says (``Kind.follow_up``)."""
    from agent.kinds import KINDS

    return {name: kind.follow_up for name, kind in KINDS.items()}


HELP_INTRO = (
    "Type a request in words, paste a formal model (five-element JSON/YAML, CPLEX LP, MPS, PDDL, "
    "a clingo program, a routing file or an API request), or type the path of a file: a file is "
    "read as `formalist solve FILE` reads it. Formal models need no language model; words need "
    "one (/model SPEC).",
    "A paste is one message (send it with Enter); Esc then Enter starts a new line; /paste, the "
    "lines, then /end also sends many lines as one message.",
)
"""Paragraphs (the console wraps them)."""


def help_text() -> str:
    width = max(len(c) for c in COMMANDS)
    lines = [*HELP_INTRO, "", "Commands:"]
    lines += [f"  {cmd:{width}s}  {what}" for cmd, what in COMMANDS.items()]
    lines += [
        "",
        "Follow-ups, after an answer (start with now, what if, instead, add, at most...; a "
        "language model rewrites the request):",
    ]
    lines += [f"  {kind:8s} {what}" for kind, what in follow_ups().items()]
    return "\n".join(lines)


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


# -- input sources ---------------------------------------------------------------------------


def terminal_reader(input: Any = None, output: Any = None) -> Reader:
    """Messages from a terminal through prompt_toolkit: Enter sends, a bracketed paste is inserted
    whole (newlines included) and sent by the next Enter, Esc then Enter inserts a newline.
    ``input``/``output`` are prompt_toolkit's (tests pass a pipe input and a dummy output)."""
    from prompt_toolkit import PromptSession
    from prompt_toolkit.history import InMemoryHistory
    from prompt_toolkit.key_binding import KeyBindings

    keys = KeyBindings()

    @keys.add("escape", "enter")
    def _newline(event: Any) -> None:
        event.current_buffer.insert_text("\n")

    session: PromptSession[str] = PromptSession(
        key_bindings=keys,
        multiline=False,
        history=InMemoryHistory(),
        prompt_continuation=lambda width, line, wrap: "." * (width - 1) + " ",
        input=input,
        output=output,
    )
    return lambda prompt: session.prompt(prompt)


def stream_reader(stream: TextIO) -> Reader:
    """All of ``stream`` (standard input that is not a terminal) as one message, then the end."""
    sent = False

    def read(prompt: str) -> str:
        nonlocal sent
        if sent:
            raise EOFError
        sent = True
        return stream.read()

    return read


def line_reader() -> Reader:
    """``input()``: a terminal without prompt_toolkit. One line per message (``/paste`` for more)."""
    return input


def default_reader(stdin: TextIO | None = None) -> Reader:
    stdin = stdin or sys.stdin
    if not stdin.isatty():
        return stream_reader(stdin)
    try:
        return terminal_reader()
    except ImportError:
        return line_reader()


def read_paste(read: Reader) -> str:
    """The lines after ``/paste`` up to a line ``/end`` (or the end of input), as one message."""
    lines: list[str] = []
    while True:
        try:
            line = read("... ")
        except EOFError:
            break
        if line.strip() == PASTE_END:
            break
        lines.append(line)
    return "\n".join(lines)


def file_message(message: str) -> Path | None:
    """The file a one-line message names (quotes around it, as a terminal drops a path, and ``~``
    allowed), or None when the message is not a path to an existing file. ``InputError`` for a
    message that is plainly a path but names no file, or names a folder."""
    from agent.cli import _is_file, _looks_like_path

    if "\n" in message or message.startswith(("{", "[", "(")):  # a one-line model, not a path
        return None
    candidate = message
    if len(candidate) >= 2 and candidate[0] == candidate[-1] and candidate[0] in "'\"":
        try:
            candidate = shlex.split(candidate)[0]
        except (ValueError, IndexError):
            return None
    if candidate.startswith("~"):
        candidate = str(Path(candidate).expanduser())
    if _is_file(candidate):
        return Path(candidate)
    try:
        folder = Path(candidate).is_dir()
    except (OSError, ValueError):  # a name too long for the file system, a NUL...
        folder = False
    if folder:
        raise InputError(f"{candidate} is a folder, not a file")
    if _looks_like_path(candidate):
        raise InputError(f"no such file: {candidate}")
    return None


def _command(message: str) -> tuple[str, str] | None:
    """``(name, argument)`` for a one-line message that is a slash command, else None. A path
    (``/tmp/model.lp``) is not a command."""
    if "\n" in message or not message.startswith("/"):
        return None
    name, _, arg = message.partition(" ")
    if "/" in name[1:] or "." in name:
        return None
    return name.lower(), arg.strip()


KNOWN = {c.split()[0] for c in COMMANDS} | {"/exit"}


# -- the loop --------------------------------------------------------------------------------


def run_chat(
    agent: Agent,
    store: SessionStore,
    session_id: str | None,
    read: Reader | None = None,
    console: Any = None,
) -> Session:
    """The loop. ``read`` returns one message per call (``default_reader()`` when None);
    ``read`` and ``console`` are parameters so tests can drive it."""
    from rich.console import Console
    from rich.text import Text

    console = console or Console()
    read = read or default_reader()
    session = Session(store, agent, session_id)
    console.print(
        Text(
            f"session {session.id} - /help for commands; paste a model or type a file path",
            style="dim",
        )
    )
    last: Answer | None = None
    while True:
        try:
            message = read(PROMPT)
        except EOFError:
            break
        except KeyboardInterrupt:  # Ctrl-C at the prompt drops what was typed
            continue
        message = message.strip()
        if not message:
            continue
        command = _command(message)
        name = ""
        if command is not None:
            cmd, arg = command
            if cmd not in KNOWN:
                console.print(Text(f"unknown command {cmd}; /help lists the commands", style="red"))
                continue
            if cmd in ("/quit", "/exit"):
                break
            if cmd == "/help":
                console.print(Text(help_text()))
                continue
            if cmd == "/model":
                if not arg:
                    console.print(Text(f"model: {agent.config.model or '(none)'}"))
                    continue
                agent = Agent(arg, config=agent.config)
                session = Session(store, agent, session.id)
                console.print(Text(f"model: {arg}"))
                continue
            if cmd == "/trace":
                if last is None:
                    console.print("no answer yet")
                for a in last.trace if last else []:
                    console.print(
                        Text(f"attempt {a.number}: {a.stage} -> {a.outcome} {a.feedback[:300]}")
                    )
                continue
            if cmd == "/export":
                path = Path(arg or f"session-{session.id}.json")
                turns = [
                    {"n": t.n, "user": t.text, "answer": t.answer} for t in store.turns(session.id)
                ]
                try:
                    path.write_text(
                        json.dumps({"id": session.id, "turns": turns}, indent=1, default=str)
                    )
                except OSError as e:
                    console.print(Text(f"cannot write {path}: {e.strerror or e}", style="red"))
                    continue
                console.print(Text(f"wrote {path.resolve()}"))
                continue
            # /paste: the lines that follow are the message
            message = read_paste(read).strip()
            if not message:
                console.print("nothing pasted")
                continue
        try:
            source = file_message(message)
            if source is not None:
                from agent.agent import input_file_name, read_text_file

                message = read_text_file(source)
                name = input_file_name(source)
                console.print(
                    Text(f"read {source} ({len(message.splitlines())} lines)", style="dim")
                )
            last = session.ask(message, name=name)
        except FormalistError as e:
            console.print(Text(str(e), style="red"))
            continue
        except KeyboardInterrupt:
            console.print(Text("interrupted", style="red"))
            continue
        render(last, console)
    return session
