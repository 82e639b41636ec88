"""``formalist tools`` and ``formalist sandbox``: the tool cache and the sandbox by hand.

    formalist tools list [--db PATH] [--json]
    formalist tools show NAME [--version N] [--db PATH] [--json]
    formalist tools rm NAME [--db PATH]
    formalist sandbox run FILE.py [--json]     run FILE's main() in the sandbox, print its value
    formalist sandbox layers [--json]          which sandbox layers this machine has

``tools make`` and ``tools examples`` drive the agent, so they live in ``agent/tools_cli.py`` and are
added to the ``tools`` command there (this package uses the model layer and ``agent.db``, never the
orchestrator).

``sandbox run`` exits 0 with the value, 1 when the code was refused, raised or was stopped (the
rule or limit is printed), 2 when the file cannot be read or a required layer is missing.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from agent.errors import InputError

EXIT_OK, EXIT_FAULT, EXIT_USAGE = 0, 1, 2


def register(subparsers: Any) -> Any:
    """Add the ``tools`` and ``sandbox`` commands to the ``formalist`` parser's subparsers, and
    return the ``tools`` command's subparsers (the agent adds ``tools make`` and ``tools examples``
    there: they drive the agent, which this package does not import)."""
    tools = subparsers.add_parser("tools", help="list, show or remove cached tools")
    tsub = tools.add_subparsers(dest="tools_command", required=True)
    p = tsub.add_parser("list", help="every cached tool (latest version)")
    db_argument(p)
    p.add_argument("--json", action="store_true", help="print one JSON list")
    p.set_defaults(func=cmd_tools_list)
    p = tsub.add_parser("show", help="one tool: code, tests, evidence")
    p.add_argument("name")
    p.add_argument("--version", type=int, help="a given version (default: the latest)")
    p.add_argument("--json", action="store_true", help="print the stored record")
    db_argument(p)
    p.set_defaults(func=cmd_tools_show)
    p = tsub.add_parser("rm", help="remove every version of a tool")
    p.add_argument("name")
    db_argument(p)
    p.set_defaults(func=cmd_tools_rm)
    sandbox = subparsers.add_parser("sandbox", help="run Python in the tool sandbox")
    ssub = sandbox.add_subparsers(dest="sandbox_command", required=True)
    p = ssub.add_parser("run", help="run FILE's main() (no arguments) and print its JSON value")
    p.add_argument("file")
    p.add_argument("--json", action="store_true", help="print the whole result as JSON")
    p.add_argument("--wall", type=float, help="wall-clock limit in seconds (default 5)")
    p.add_argument("--cpu", type=int, help="CPU-time limit in seconds (default 2)")
    p.add_argument("--memory", type=int, help="address-space limit in MiB (default 256)")
    p.set_defaults(func=cmd_sandbox_run)
    p = ssub.add_parser("layers", help="which sandbox layers this machine has")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_sandbox_layers)
    return tsub


def db_argument(p: argparse.ArgumentParser) -> None:
    """The ``--db`` option of every ``tools`` command."""
    p.add_argument(
        "--db",
        help="tool cache: a file or a postgresql:// URL (default: [tools] cache in formalist.toml, "
        "else FORMALIST_TOOLS_DB, else db there when a postgresql:// URL, "
        "else ~/.cache/formalist/tools.sqlite)",
    )


def open_cache(args: argparse.Namespace) -> Any:
    """The tool cache ``--db`` names, else the configured one."""
    from agent.config import load_config
    from tool_maker.cache import ToolCache

    return ToolCache(args.db or load_config().tools_db or None)


def tool_summary(tool: Any, record: dict[str, Any]) -> dict[str, Any]:
    """A tool as ``tools list --json``, ``GET /v1/tools`` and MCP list it."""
    return {
        "name": tool.name,
        "version": tool.version,
        "label": tool.label,
        "kind": tool.kind,
        "task": tool.task,
        "signature": tool.signature,
        "maker_model": tool.maker_model,
        "sources": list(tool.sources),
        "uses": record["uses"],
        "successes": record["successes"],
        "failures": record["failures"],
    }


def list_tools(cache: Any) -> list[dict[str, Any]]:
    """Every cached tool (latest version) with its provenance and record."""
    return [tool_summary(t, cache.use_record(t.name)) for t in cache.latest()]


def cmd_tools_list(args: argparse.Namespace) -> int:
    tools = list_tools(open_cache(args))
    if args.json:
        print(json.dumps(tools, indent=2, ensure_ascii=False))
        return EXIT_OK
    if not tools:
        print("no tools cached")
    for t in tools:
        print(
            f"{t['name']:28s} v{t['version']:<3d} {t['kind'] or '-':8s} {t['task'][:28]:28s} "
            f"used {t['uses']} ({t['successes']} ok, {t['failures']} failed)  {t['signature']}"
        )
    return EXIT_OK


def cmd_tools_show(args: argparse.Namespace) -> int:
    cache = open_cache(args)
    tool = cache.get(args.name, args.version)
    if tool is None:
        raise InputError(
            f"no tool named {args.name!r}"
            + (f" with version {args.version}" if args.version else "")
        )
    if args.json:
        print(
            json.dumps(
                {**tool.to_json(), "record": cache.use_record(tool.name)},
                indent=2,
                ensure_ascii=False,
            )
        )
        return EXIT_OK
    print(f"{tool.name} (version {tool.version} of {len(cache.versions(tool.name))}) — {tool.task}")
    print(f"  {tool.signature}")
    print(f"  {tool.description}")
    print(f"  made by {tool.maker_model}; evidence: {json.dumps(tool.evidence)}")
    if tool.kind:
        print(f"  builds {tool.kind} artifacts")
    if tool.sources:
        print(f"  made from {len(tool.sources)} example(s): {', '.join(tool.sources)}")
    rec = cache.use_record(tool.name)
    print(
        f"  used {rec['uses']} time(s): {rec['successes']} verified, {rec['failures']} failed"
        + (f" (by version: {json.dumps(rec['by_version'])})" if rec["uses"] else "")
    )
    for f in rec["last_failures"]:
        print(f"    v{f['version']} failed on {f['request'][:80]!r}: {f['detail'][:300]}")
    print("\n" + tool.code.rstrip() + "\n")
    for label, calls in (("worked calls", tool.demos), ("held-out tests passed", tool.tests)):
        print(f"{label}:")
        for c in calls:
            print(
                f"  {c.question[:100]!r}\n    -> args {json.dumps(c.args)[:200]} = {json.dumps(c.answer)[:200]}"
            )
    return EXIT_OK


def cmd_tools_rm(args: argparse.Namespace) -> int:
    n = open_cache(args).remove(args.name)
    if not n:
        raise InputError(f"no tool named {args.name!r}")
    print(f"removed {args.name} ({n} version{'s' if n != 1 else ''})")
    return EXIT_OK


def cmd_sandbox_run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from tool_maker.sandbox import Sandbox, SandboxPolicy

    path = Path(args.file)
    try:
        code = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read {path}: {e}") from e
    policy = SandboxPolicy.from_env()
    changes = {"wall_s": args.wall, "cpu_s": args.cpu, "memory_mb": args.memory}
    try:
        limits = replace(policy.limits, **{k: v for k, v in changes.items() if v is not None})
    except ValueError as e:
        raise InputError(str(e)) from e
    result = Sandbox(replace(policy, limits=limits)).run(code, "main")
    ascii_only = (sys.stdout.encoding or "").lower().replace("-", "") != "utf8"
    if args.json:
        print(render_json(result.to_json(), ascii_only))
    elif result.ok:
        print(render_json(result.value, ascii_only))
    else:
        if result.output:
            sys.stdout.write(result.output)
        print(f"stopped: {result.describe()}", file=sys.stderr)
    if not args.json:
        print(f"layers: {', '.join(result.layers)}", file=sys.stderr)
    return EXIT_OK if result.ok else EXIT_FAULT


PRETTY_MAX_CHARS = 64 << 10
"""Above this many characters of compact JSON, a value is printed on one line."""


def render_json(value: Any, ascii_only: bool = False) -> str:
    """``value`` as strict JSON text for the terminal: indented when that stays small (indenting
    a deeply nested value grows with the square of its depth), compact otherwise. The sandbox
    has already refused what JSON cannot hold (NaN, infinities, lone surrogates, deep nesting);
    this refuses it again rather than print invalid JSON. ``ascii_only`` escapes what is not
    ASCII (for a terminal that is not UTF-8)."""
    try:
        compact = json.dumps(value, ensure_ascii=ascii_only, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as e:
        raise InputError(f"the result cannot be printed as JSON: {e}") from e
    if len(compact) > PRETTY_MAX_CHARS:
        return compact
    pretty = json.dumps(value, ensure_ascii=ascii_only, allow_nan=False, indent=2)
    return pretty if len(pretty) <= 4 * len(compact) + 4096 else compact


def cmd_sandbox_layers(args: argparse.Namespace) -> int:
    from tool_maker.sandbox import Sandbox

    sb = Sandbox()
    m = sb.machine
    if args.json:
        print(
            json.dumps(
                {
                    n: {"available": layer.available, "detail": layer.detail}
                    for n, layer in m.layers.items()
                },
                indent=2,
            )
        )
    else:
        print("\n".join(m.describe()))
        print(f"required: {', '.join(sorted(sb.policy.require))}")
    return EXIT_OK
