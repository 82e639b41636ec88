"""``formalist tools make`` and ``formalist tools examples``: the tool maker driven by the agent.

    formalist tools make --examples DIR --model SPEC [--name NAME] [--shown N] [--attempts N]
    formalist tools examples --kind KIND --like FILE --out DIR    the agent's verified requests

They sit on the agent's side because they run the agent (``tool_maker`` never imports it); the rest
of ``formalist tools`` and ``formalist sandbox`` is ``tool_maker/cli.py``'s, which hands this module
the ``tools`` command's subparsers.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from agent.errors import InputError
from tool_maker.cli import EXIT_FAULT, EXIT_OK, db_argument, open_cache


def register(tsub: Any) -> None:
    """Add ``make`` and ``examples`` to the ``tools`` command's subparsers ``tsub``."""
    p = tsub.add_parser(
        "make",
        help="make a tool from a folder of solved examples of one class (NAME.txt requests with "
        "their artifacts NAME.json, .yaml, .lp, .pddl...); cached only when verified on held-out ones",
    )
    p.add_argument("--examples", required=True, metavar="DIR", help="the folder of examples")
    p.add_argument("--model", required=True, metavar="SPEC", help="the maker model")
    p.add_argument("--name", default="", help="the class's name (default: the folder's)")
    p.add_argument(
        "--shown",
        type=int,
        default=3,
        help="examples the maker sees answered (the rest are held out)",
    )
    p.add_argument(
        "--attempts", type=int, default=3, help="rounds with the maker model (default 3)"
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    db_argument(p)
    p.set_defaults(func=cmd_tools_make)
    p = tsub.add_parser(
        "examples", help="write verified requests like one from the agent's history as examples"
    )
    p.add_argument("--kind", required=True, help="milp, routing, pddl, asp or apis")
    p.add_argument("--like", required=True, metavar="FILE", help="a request (a .txt file)")
    p.add_argument("--out", required=True, metavar="DIR", help="the folder to write")
    p.add_argument("--similarity", type=float, help="least TF-IDF similarity (default: config)")
    db_argument(p)
    p.set_defaults(func=cmd_tools_examples)


def cmd_tools_make(args: argparse.Namespace) -> int:
    from agent.agent import Agent
    from agent.config import load_config
    from agent.tools_flow import make_tool
    from tool_maker.sandbox import Sandbox

    if args.attempts < 1:
        raise InputError("--attempts must be at least 1")
    agent = Agent(args.model, config=load_config())
    client = agent.client
    assert client is not None
    report = make_tool(
        agent,
        args.examples,
        client,
        open_cache(args),
        Sandbox(),
        name=args.name,
        shown=args.shown,
        max_attempts=args.attempts,
    )
    if args.json:
        print(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
    else:
        for a in report.attempts:
            verdict = "accepted" if a["accepted"] else "rejected"
            print(f"attempt {a['number']}: {verdict}")
            if a["feedback"]:
                print("  " + a["feedback"].replace("\n", "\n  ")[:2000])
        if report.tool is not None:
            print(
                f"cached {report.tool.label}: verified on {report.examples} examples "
                f"({report.held_out} held out)"
            )
        else:
            print(f"no tool cached: {report.error}", file=sys.stderr)
    return EXIT_OK if report.tool is not None else EXIT_FAULT


def cmd_tools_examples(args: argparse.Namespace) -> int:
    from agent.agent import read_text_file
    from agent.config import load_config
    from agent.tools_flow import export_examples

    like = read_text_file(args.like)
    threshold = (
        args.similarity
        if args.similarity is not None
        else float(load_config().tools["propose_similarity"])
    )
    written = export_examples(open_cache(args), args.kind, like, args.out, threshold)
    print(f"{len(written)} example(s) written to {args.out}")
    return EXIT_OK if written else EXIT_FAULT
