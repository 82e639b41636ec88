"""The ``formalist`` command.

    formalist solve TEXT_OR_FILE [--model SPEC] [--json] [--trace] [--max-attempts N] [--time-limit S]
    formalist examples [DIR]        run the examples (the main job)
    formalist backends              every solver backend, what it solves and whether it is available

Exit status: 0 when the request was handled (whatever the solver's status), 2 for unusable input or
configuration, 1 when our side failed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from agent.errors import ConfigError, FormalistError, InputError, StopError
from agent.kinds import KIND_NAMES, entries

EXIT_OK, EXIT_FAULT, EXIT_USAGE = 0, 1, 2


def _agent(args: argparse.Namespace) -> Any:
    from agent.agent import Agent
    from agent.config import load_config

    overrides = {
        "max_attempts": getattr(args, "max_attempts", None),
        "time_limit": getattr(args, "time_limit", None),
        "backend": getattr(args, "backend", None),
        "planner": getattr(args, "planner", None),
        "record": getattr(args, "record", None),
    }
    if getattr(args, "no_cache", False):
        overrides["cache"] = ""
    return Agent(
        model=args.model or None, config=load_config(getattr(args, "config", None)), **overrides
    )


def _print_answer(answer: Any, as_json: bool, trace: bool) -> None:
    if as_json:
        print(json.dumps(answer.to_json(trace=trace), indent=2, default=str, allow_nan=False))
        return
    print(
        f"status: {answer.status.value}   kind: {answer.kind}   attempts: {answer.attempts}"
        + (
            f"   verified: {'yes' if answer.verified else 'no'}"
            if answer.verification is not None
            else ""
        )
    )
    if answer.error:
        print(answer.error)
    if answer.explanation:
        print(answer.explanation)
    if trace:
        for a in answer.trace:
            timing = ", ".join(f"{k} {v * 1000:.1f} ms" for k, v in a.timings.items())
            print(f"--- attempt {a.number}: {a.stage} -> {a.outcome} ({timing})")
            if a.feedback:
                print("    feedback: " + a.feedback.replace("\n", "\n    "))


MAX_STARTUP_S = 60.0
"""A process older than this when ``main`` runs is not counted from its start (see ``process_age``)."""


def process_age() -> float:
    """Seconds since this process began: on Linux, ``/proc/self/stat``'s start time (clock ticks
    since boot) against ``CLOCK_BOOTTIME``, so the interpreter's start-up and the imports before
    ``main`` are counted; 0.0 where that cannot be read (then the clock starts at ``main``)."""
    try:
        stat = Path("/proc/self/stat").read_text()
        # Fields after the command name (which may hold spaces) start at field 3; starttime is 22.
        ticks = int(stat[stat.rindex(")") + 2 :].split()[19])
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return 0.0
    # Start-up takes seconds; far more means main() runs inside a longer-lived program.
    return age if 0.0 <= age < MAX_STARTUP_S else 0.0


def cmd_solve(args: argparse.Namespace) -> int:
    # The time limit is the person's wait: it counts from when the command began (``main``).
    started = getattr(args, "started", None) or time.perf_counter()
    if args.plot:
        _check_plot_path(args.plot)  # before solving: a long solve must not end in a bad path
    agent = _agent(args)
    target = args.request
    path = Path(target)
    is_file = _is_file(target)
    if not is_file and _looks_like_path(target):
        if path.is_dir():
            raise InputError(f"{target} is a folder, not a file")
        raise InputError(f"no such file: {target}")
    extra: dict[str, Any] = {}
    if args.apis:
        from agent.agent import read_text_file

        extra["apis"] = read_text_file(args.apis)
    if args.given:
        pairs = [g.split("=", 1) for g in args.given]
        bad = [g for g, p in zip(args.given, pairs, strict=True) if len(p) != 2 or not p[0].strip()]
        if bad:
            raise InputError(f"--given takes NAME=VALUE, not {bad[0]!r}")
        extra["given"] = {k.strip(): v.strip() for k, v in pairs}
    if args.examples:
        extra["examples"] = args.examples
    if args.numbers:
        extra["numbers"] = args.numbers
    if args.samples is not None:
        extra["samples"] = args.samples
    if args.grounding:
        extra["grounding"] = args.grounding
    if args.domain:
        from agent.agent import read_text_file

        extra["domain"] = read_text_file(args.domain) if _is_file(args.domain) else args.domain
        if not extra["domain"].strip():
            raise InputError(f"--domain {args.domain} is empty")
    if is_file:
        answer = agent.solve_file(
            path, kind=args.kind or "", optimal=args.optimal, extra=extra, started=started
        )
    else:
        from agent.types import Request

        answer = agent.solve(Request(target, "", args.kind or "", args.optimal, extra, started))
    _print_answer(answer, args.json, args.trace)
    if args.plot:
        _write_plot(answer, args.plot)
        # Where it went; on stderr under --json, so stdout stays one JSON object.
        print(
            f"wrote the plot to {Path(args.plot).expanduser().resolve()}",
            file=sys.stderr if args.json else sys.stdout,
        )
    return _solve_exit(answer)


def _solve_exit(answer: Any) -> int:
    """The exit status of an answered request: 2 when the person's formal input was unusable (it
    did not read or validate: nobody repaired it), 1 when the request failed on our side (the model
    gave up, a solver failed), 0 when it was handled, whatever the solver's status (an infeasible
    model is an answer)."""
    from agent.agent import INVALID_INPUT
    from solvers.base import Status

    trace = answer.trace
    if (
        answer.error
        and answer.error.startswith(INVALID_INPUT)
        and len(trace) == 1
        and trace[0].model_id == "input"
    ):
        return EXIT_USAGE
    if answer.error or answer.status is Status.ERROR:
        return EXIT_FAULT
    return EXIT_OK


def _plot_formats() -> dict[str, str]:
    """The image formats matplotlib can write, by suffix (without the dot)."""
    try:
        from matplotlib.backend_bases import FigureCanvasBase
    except ImportError as e:
        raise ConfigError("--plot needs matplotlib (pip install matplotlib)") from e
    return dict(FigureCanvasBase.get_supported_filetypes())


def _check_plot_path(target: str) -> Path:
    """``InputError`` unless an image can be written at ``target``: its folder exists and is
    writable, it is not a folder itself, and its suffix is a format matplotlib writes."""
    path = Path(target).expanduser()
    try:
        if path.is_dir():
            raise InputError(f"--plot {target} is a folder; name an image file")
    except OSError as e:  # e.g. a name too long for the file system
        raise InputError(f"--plot {target}: {e.strerror or e}") from e
    formats = _plot_formats()
    suffix = path.suffix.lower().lstrip(".")
    if not suffix or suffix not in formats:
        raise InputError(
            f"--plot {target}: "
            + (f"matplotlib cannot write .{suffix} images" if suffix else "the file needs a suffix")
            + f"; use one of {', '.join('.' + f for f in sorted(formats))}"
        )
    try:
        parent = path.parent
        if not parent.is_dir():
            raise InputError(f"--plot {target}: the folder {parent} does not exist")
        if path.exists() and not os.access(path, os.W_OK):
            raise InputError(f"--plot {target}: the file is not writable")
        if not path.exists() and not os.access(parent, os.W_OK | os.X_OK):
            raise InputError(f"--plot {target}: cannot write in the folder {parent}")
    except OSError as e:  # e.g. a name too long for the file system
        raise InputError(f"--plot {target}: {e.strerror or e}") from e
    return path


def _write_plot(answer: Any, target: str) -> None:
    """Draw ``answer``'s routes into ``target``; every failure is one line, not a traceback."""
    from agent.routing_plot import plot_answer

    try:
        plot_answer(answer, Path(target).expanduser())
    except FormalistError:
        raise
    except OSError as e:
        raise InputError(f"cannot write the plot {target}: {e.strerror or e}") from e
    except Exception as e:  # matplotlib's own failures (a format it refuses, a bad figure...)
        raise FormalistError(f"cannot write the plot {target}: {type(e).__name__}: {e}") from e
    finally:
        plt = sys.modules.get("matplotlib.pyplot")
        if plt is not None:
            plt.close("all")  # a failed savefig leaves its figure open


def _looks_like_path(target: str) -> bool:
    """A single token ending in a formal-input suffix, or with a directory part: meant as a file."""
    if len(target) > 1024 or any(ch.isspace() for ch in target):
        return False
    low = target.lower()
    for suffix in COMPRESSED_SUFFIXES:
        low = low.removesuffix(suffix)
    return low.endswith((*FORMAL_SUFFIXES, ".txt")) or (
        "/" in target and "." in target.rsplit("/", 1)[-1]
    )


def _is_file(target: str) -> bool:
    """Whether the argument names a file (rather than being the request text itself)."""
    if len(target) > 1024 or "\n" in target or "\x00" in target:
        return False
    try:
        return Path(target).is_file()
    except OSError:  # e.g. a name too long for the file system: it is text
        return False


FORMAL_SUFFIXES = (".json", ".yaml", ".yml", ".lp", ".mps", ".pddl", ".vrp", ".tsp")
COMPRESSED_SUFFIXES = (".gz", ".bz2", ".xz")
"""Compressed files are read decompressed (``model.mps.gz`` as ``model.mps``)."""


def _suffix(p: Path) -> str:
    """A file's suffix, the one under a compression suffix for a compressed file (``.mps.gz``:
    ``.mps``)."""
    name = p.name.lower()
    for suffix in COMPRESSED_SUFFIXES:
        name = name.removesuffix(suffix)
    return Path(name).suffix


def cmd_examples(args: argparse.Namespace) -> int:
    from agent.agent import read_text_file
    from agent.config import HOW_TO_CONFIGURE

    folder = Path(args.dir)
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder of examples")
    agent = _agent(args)
    # Every example file in the folder and its sub-folders; a catalog.yaml is the API catalog of the
    # requests beside it, not a request itself.
    files = sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and _suffix(p) in (*FORMAL_SUFFIXES, ".txt") and p.stem != "catalog"
    )
    formal = [p for p in files if _suffix(p) in FORMAL_SUFFIXES]
    words = [p for p in files if _suffix(p) == ".txt"]
    failures = 0
    print(f"== {len(formal)} formal examples (no language model needed)")
    for p in formal:
        # One bad example (empty, binary, unreadable...) is reported on its line; the rest still run.
        try:
            answer = agent.solve_file(p)
        except Exception as e:
            failures += _example_failed(p.relative_to(folder), e)
            continue
        failures += _example_line(p.relative_to(folder), answer)
    if not agent.config.model:
        print(f"== {len(words)} natural-language examples skipped: {HOW_TO_CONFIGURE}")
    else:
        print(f"== {len(words)} natural-language examples with {agent.config.model}")
        for p in words:
            catalog = p.with_name("catalog.yaml")
            try:
                extra = {"apis": read_text_file(catalog)} if catalog.is_file() else {}
                answer = agent.solve_file(p, kind="apis" if extra else "", extra=extra)
            except Exception as e:
                failures += _example_failed(p.relative_to(folder), e)
                continue
            failures += _example_line(p.relative_to(folder), answer)
    return EXIT_FAULT if failures else EXIT_OK


def _example_failed(p: Path, e: Exception) -> int:
    """Report an example that raised instead of answering, on its own line; returns 1."""
    why = str(e) if isinstance(e, StopError) else f"{type(e).__name__}: {e}"
    first, *rest = why.splitlines() or [type(e).__name__]
    print(f"{str(p):32s} FAILED: {first}")
    for line in rest:
        print(f"{'':32s} {line}")
    return 1


def _example_line(p: Path, answer: Any) -> int:
    objective = answer.objective
    if isinstance(objective, list):  # one cost per priority level
        obj = "objective [" + ", ".join(f"{v:,.6g}" for v in objective) + "]"
    else:
        obj = "" if objective is None else f"objective {objective:,.6g}"
    ver = (
        "verified"
        if answer.verified
        else (
            ""
            if answer.status.value in ("INFEASIBLE", "UNBOUNDED", "NEEDS_INFO")
            else "NOT verified"
        )
    )
    if answer.plan is not None:
        obj = f"plan of {len(answer.plan)} step(s)"
    print(f"{str(p):32s} {answer.status.value:11s} {obj:24s} {ver}  ({answer.attempts} attempt(s))")
    if answer.questions:
        print(f"{'':32s} asks: {' '.join(answer.questions)}")
    elif answer.diagnosis is not None:
        print(f"{'':32s} {answer.diagnosis.summary}")
    has_solution = answer.solve_result is not None and answer.solve_result.has_solution
    bad = bool(answer.error) or (has_solution and not answer.verified)
    if bad:
        print(f"{'':32s} {answer.error or answer.explanation}")
    return int(bad)


def cmd_serve(args: argparse.Namespace) -> int:
    agent = _agent(args)
    agent.config = agent.config.with_overrides(db=args.db)  # a PostgreSQL db: the tools there too
    if args.mcp_stdio:
        from agent.mcp_tools import build_mcp

        build_mcp(agent).run("stdio")
        return EXIT_OK
    from agent.server import serve

    serve(
        agent,
        args.host,
        args.port,
        args.db or agent.config.sessions_db,
        args.token or agent.config.token,
    )
    return EXIT_OK


def cmd_chat(args: argparse.Namespace) -> int:
    from agent.chat import run_chat
    from agent.session import SessionStore

    agent = _agent(args)
    agent.config = agent.config.with_overrides(db=args.db)  # a PostgreSQL db: the tools there too
    run_chat(agent, SessionStore(agent.config.sessions_db), args.session)
    return EXIT_OK


def cmd_backends(args: argparse.Namespace) -> int:
    from solvers.registry import backends

    for b in backends():
        default = [
            e.name for e in entries() if e.default == b.name and e.name in b.kinds.split(",")
        ]
        mark = f" (default for {', '.join(default)})" if default else ""
        print(
            f"{b.name:14s} {b.kinds:10s} {'ok' if b.available else 'unavailable'}  {b.detail}{mark}"
        )
    return EXIT_OK


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The ``formalist`` parser for the command line ``argv`` (None: this process's): the plugged-in
    commands (``COMMANDS_GROUP``) are added only when ``argv`` names none of the built-in ones."""
    parser = argparse.ArgumentParser(
        prog="formalist",
        description="Planning and optimization requests, in words or as formal models (LP, MPS, "
        "five-element JSON/YAML, PDDL, clingo, routing files), solved with real solvers, checked "
        "independently and explained.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--model", help="model spec: openai:MODEL, ollama:MODEL, replay:FILE, local:PATH"
        )
        p.add_argument("--config", help="configuration TOML file")
        p.add_argument(
            "--max-attempts",
            type=int,
            dest="max_attempts",
            help="formalize/repair attempts (default 3)",
        )
        p.add_argument(
            "--time-limit",
            type=float,
            dest="time_limit",
            help="seconds a formal input may take in all (reading, solving, checking, answering), "
            "counted from when the command began; for a request in words, from when each "
            "attempt's model is ready (default 60)",
        )
        for e in entries():  # --backend (milp), --planner (pddl): from the kinds' registry
            if e.option:
                p.add_argument(
                    f"--{e.option}",
                    choices=e.backends,
                    help=f"{e.name} backend: {', '.join(e.backends)} (default {e.default}; "
                    "`formalist backends` says what each is)",
                )
        p.add_argument("--record", help="append every model reply to this JSONL file (for replay:)")
        p.add_argument(
            "--no-cache", action="store_true", help="do not read or write the reply cache"
        )

    p = sub.add_parser(
        "solve", help="solve a request (words, or a formal model given as text or file)"
    )
    p.add_argument(
        "request",
        help="the request text, or a file: .txt for words; models as five-element .json/.yaml, "
        ".lp (CPLEX LP or clingo), .mps, .pddl, .vrp/.tsp or an API request (.json/.yaml); "
        "also gzip-, bzip2- or xz-compressed (.mps.gz...)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--trace", action="store_true", help="show every attempt")
    p.add_argument("--kind", choices=KIND_NAMES, help="force the problem kind")
    p.add_argument("--domain", help="planning: a PDDL domain file, or the name of a known domain")
    p.add_argument("--optimal", action="store_true", help="planning: ask for a proven-optimal plan")
    p.add_argument("--apis", help="a request over APIs: the API catalog (YAML or JSON)")
    p.add_argument("--plot", metavar="FILE", help="routing: draw the routes into this image file")
    p.add_argument(
        "--given",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a request over APIs: an answer to a question (repeatable)",
    )
    p.add_argument(
        "--examples",
        choices=["fixed", "retrieved", "none"],
        help="optimization: few-shot examples, the bundled ones, the nearest of the example bank "
        "(default), or none",
    )
    p.add_argument(
        "--numbers",
        choices=["named", "inline"],
        help="optimization: the model writes each single number of the request as a named "
        "parameter or in the expression that uses it (default)",
    )
    p.add_argument(
        "--samples",
        type=int,
        metavar="K",
        help="sample K formalizations and answer by the vote of the verified ones",
    )
    p.add_argument(
        "--grounding",
        choices=["report", "repair", "amend"],
        help="a model whose numbers are not the request's: report it; also send it back to the "
        "model to repair; or first make the check's own edits, then repair (default: amend)",
    )
    common(p)
    p.set_defaults(func=cmd_solve)

    p = sub.add_parser(
        "examples", help="run every example in a folder (formal ones always, words with a model)"
    )
    p.add_argument("dir", nargs="?", default="examples")
    common(p)
    p.set_defaults(func=cmd_examples)

    p = sub.add_parser("serve", help="the HTTP service: OpenAI-compatible chat, REST and MCP")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument(
        "--db",
        help="sessions database: a file (SQLite) or postgresql://user:pass@host/db "
        "(default from the configuration)",
    )
    p.add_argument("--token", help="bearer token every route but /health requires")
    p.add_argument(
        "--mcp-stdio", action="store_true", help="serve the MCP tools over stdio instead"
    )
    common(p)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser(
        "chat",
        help="a conversation in the terminal",
        description="A conversation in the terminal. A paste is one message (Esc then Enter for "
        "a new line; /paste ... /end); a file path is read as solve reads it; piped input is one "
        "message. /help inside lists the commands and follow-ups.",
    )
    p.add_argument("--session", help="continue this session")
    p.add_argument(
        "--db",
        help="sessions database: a file (SQLite) or postgresql://user:pass@host/db "
        "(default from the configuration)",
    )
    common(p)
    p.set_defaults(func=cmd_chat)

    p = sub.add_parser(
        "backends", help="every solver backend, what it solves and whether it is available"
    )
    p.set_defaults(func=cmd_backends)

    from agent.tools_cli import register as register_agent_tool_commands
    from tool_maker.cli import register as register_tool_commands

    tools = register_tool_commands(sub)  # `tools list|show|rm` and `sandbox run|layers`
    register_agent_tool_commands(tools)  # `tools make|examples`: they run the agent
    from agent.sample_grammars import register as register_sample_command

    register_sample_command(sub)  # `sample`: artifacts from a local model under a grammar
    from agent.llm.models import register as register_models_command

    register_models_command(sub)  # `models list|pull`: known local models via the package index
    command = next(iter(sys.argv[1:] if argv is None else argv), None)
    if command not in sub.choices:  # `bench ...`, help, or a mistake: look for plugged-in commands
        register_plugin_commands(sub)
    return parser


COMMANDS_GROUP = "formalist.commands"
"""Entry points of this group add commands to ``formalist``: ``bench`` (``benchmarks.cli``). A
package that sits above the agent plugs its command in this way, so the agent never imports it."""


def register_plugin_commands(sub: Any) -> None:
    """Add the command of each ``formalist.commands`` entry point (its ``register(subparsers)``);
    only when the command line names none of the built-in ones, so that they start without
    reading the installed packages' metadata."""
    from importlib.metadata import entry_points

    for ep in sorted(entry_points(group=COMMANDS_GROUP), key=lambda e: e.name):
        ep.load()(sub)


def main(argv: list[str] | None = None) -> int:
    """Run the command ``argv`` (None: this process's own arguments, and then its time limit
    counts from when the process began, interpreter start-up and imports included)."""
    started = time.perf_counter() - (process_age() if argv is None else 0.0)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    args.started = started
    try:
        return int(args.func(args))
    except (InputError, ConfigError) as e:
        print(f"formalist: {e}", file=sys.stderr)
        return EXIT_USAGE
    except FormalistError as e:
        print(f"formalist: {e}", file=sys.stderr)
        return EXIT_FAULT
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`formalist ... | head`): nothing more to say, and no traceback.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
