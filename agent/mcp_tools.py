"""MCP tools over the agent: for other agents that call formalist as a tool.

Each tool takes typed arguments (their JSON schema is derived from the signature) and returns the
answer as JSON: status, kind, objective, values or plan or answer set, verified, explanation.
Solver work runs in a worker thread.
"""

from __future__ import annotations

import json
from typing import Any

import anyio

from agent.agent import Agent
from agent.types import Request


def build_mcp(agent: Agent) -> Any:
    """An ``MCPServer`` exposing solve, formalize, solve_optimization, plan, solve_asp and
    list_tools."""
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
        program, or a request over APIs. `kind` forces milp, pddl, asp or apis."""
        return await run(Request(request, kind=kind))

    @server.tool()
    async def formalize(request: str, kind: str = "") -> dict[str, Any]:
        """Formalize a request in words into its formal artifact (validated, not solved)."""
        result = await anyio.to_thread.run_sync(agent.formalize, Request(request, kind=kind))
        return dict(result)

    @server.tool()
    async def solve_optimization(model: dict[str, Any]) -> dict[str, Any]:
        """Solve a five-element optimization model (sets, parameters, variables, objective, constraints)
        given as JSON, with HiGHS; the answer is verified independently."""
        return await run(Request(json.dumps(model), "model.json", "milp"))

    @server.tool()
    async def plan(problem: str, domain: str = "", optimal: bool = False) -> dict[str, Any]:
        """Plan for a PDDL problem. `domain` is a PDDL domain's text or the name of a known domain
        (blocksworld, grippers, ...); empty means the domain the problem names."""
        extra = {"domain": domain} if domain else {}
        return await run(Request(problem, "problem.pddl", "pddl", optimal, extra))

    @server.tool()
    async def list_tools() -> dict[str, Any]:
        """The cached tools formalist builds artifacts with (a solve's `tool` field names the one
        that built its artifact): name, version, kind, task, the model that made it, the examples
        it was made from, and its uses, successes and failures."""
        from agent.tools_flow import list_cached_tools

        return {"tools": await anyio.to_thread.run_sync(list_cached_tools, agent)}

    @server.tool()
    async def solve_asp(program: str) -> dict[str, Any]:
        """Solve a clingo (ASP) program: an answer set, its cost, or the constraints that conflict."""
        return await run(Request(program, "program.lp", "asp"))

    return server
