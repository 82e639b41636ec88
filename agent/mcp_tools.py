"""MCP tools over the agent: for other agents that call formalist as a tool.

Each tool takes typed arguments (their JSON schema is derived from the signature) and returns the
answer as JSON: status, kind, objective, values or plan or answer set, verified, explanation.
Solver work runs in a worker thread. Besides ``solve``, ``formalize`` and ``list_tools`` there is
one tool per kind, made from the kind's entry in ``agent.kinds`` (``solve_optimization``, ``plan``,
``solve_asp``, ``solve_apis``, ``solve_routing``...): a kind registered there gets its tool here.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from agent.agent import Agent
from agent.kinds import TOOL_OPTIONS, Tool, entries
from agent.types import Request


def kind_tool(
    kind: str, tool: Tool, run: Callable[[Request], Awaitable[dict[str, Any]]]
) -> Callable[..., Awaitable[dict[str, Any]]]:
    """The MCP tool of ``kind``: its input (``tool.argument``, a JSON object when ``tool.json``)
    read as ``tool.file_name`` under that kind, and the options it names (``TOOL_OPTIONS``:
    ``optimal`` goes to the request, the others into its ``extra`` when given). The signature is
    built from the entry, so the tool's JSON schema is the kind's."""

    async def call(**arguments: Any) -> dict[str, Any]:
        given = arguments.pop(tool.argument)
        text = json.dumps(given) if tool.json else str(given)
        optimal = bool(arguments.pop("optimal", False))
        extra = {k: v for k, v in arguments.items() if v}
        return await run(Request(text, tool.file_name, kind, optimal, extra))

    P = inspect.Parameter
    params = [P(tool.argument, P.KEYWORD_ONLY, annotation=dict[str, Any] if tool.json else str)]
    for name in tool.options:
        kind_of, default, _ = TOOL_OPTIONS[name]
        params.append(P(name, P.KEYWORD_ONLY, default=default, annotation=kind_of))
    call.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        params, return_annotation=dict[str, Any]
    )
    call.__annotations__ = {p.name: p.annotation for p in params} | {"return": dict[str, Any]}
    call.__name__ = tool.name
    options = "; ".join(f"`{n}`: {TOOL_OPTIONS[n][2]}" for n in tool.options)
    call.__doc__ = tool.description + (f" Options: {options}." if options else "")
    return call


def build_mcp(agent: Agent) -> Any:
    """An ``MCPServer`` exposing solve, formalize, list_tools and one tool per kind."""
    from mcp.server.mcpserver import MCPServer

    server = MCPServer(
        "formalist",
        instructions=(
            "Turn planning and optimization requests into formal models, solve them with real solvers, "
            "and check the answers independently."
        ),
    )

    async def run(req: Request) -> dict[str, Any]:
        answer = await anyio.to_thread.run_sync(agent.solve, req)
        return dict(answer.to_json())

    @server.tool()
    async def solve(request: str, kind: str = "") -> dict[str, Any]:
        """Solve a request in words (needs a language model configured on the server), or a formal model
        given as text: five-element JSON/YAML, CPLEX LP, MPS, a PDDL problem for a known domain, a clingo
        program, a routing instance, or a request over APIs. `kind` forces a kind (milp, pddl, asp, apis,
        routing...)."""
        return await run(Request(request, kind=kind))

    @server.tool()
    async def formalize(request: str, kind: str = "") -> dict[str, Any]:
        """Formalize a request in words into its formal artifact (validated, not solved)."""
        result = await anyio.to_thread.run_sync(agent.formalize, Request(request, kind=kind))
        return dict(result)

    for entry in entries():  # one tool per kind, from the kinds' registry
        server.add_tool(kind_tool(entry.name, entry.tool, run), name=entry.tool.name)

    @server.tool()
    async def list_tools() -> dict[str, Any]:
        """The cached tools formalist builds artifacts with (a solve's `tool` field names the one
        that built its artifact): name, version, kind, task, the model that made it, the examples
        it was made from, and its uses, successes and failures."""
        from agent.tools_flow import list_cached_tools

        return {"tools": await anyio.to_thread.run_sync(list_cached_tools, agent)}

    return server
