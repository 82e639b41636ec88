"""The HTTP service: an OpenAI-compatible chat endpoint, a REST API, and MCP tools.

    formalist serve [--host 127.0.0.1] [--port 8000] [--db FILE] [--token TOKEN]

- ``GET /v1/models``, ``POST /v1/chat/completions`` (streamed as server-sent events ending in
  ``[DONE]``, or not): the session is the ``X-Session-Id`` header, else the request's ``user``, else a
  hash of the conversation's first user message; only the last user message is the new turn.
- ``POST /v1/solve`` (one request, JSON answer), ``GET /v1/sessions/{id}``, ``GET /v1/sessions/{id}/artifacts``.
- ``/mcp``: an MCP server (streamable HTTP) with the tools of ``agent.mcp_tools``.
- ``GET /health`` is open; every other route needs ``Authorization: Bearer TOKEN`` when a token is set.

Solver work runs in worker threads, so one request's solve never blocks another's.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal

import anyio
from fastapi import FastAPI, Header, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from agent.agent import Agent
from agent.errors import ConfigError, FormalistError, InputError, StopError
from agent.session import Session, SessionStore
from agent.types import Answer
from agent.types import Request as SolveRequest

MODEL_ID = "formalist"
DEFAULT_MAX_BODY = 2_000_000
"""Largest request body accepted, in bytes."""


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        if isinstance(self.content, list):
            return "\n".join(
                str(p.get("text", "")) for p in self.content if p.get("type") == "text"
            )
        return ""


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str = MODEL_ID
    messages: list[ChatMessage] = Field(min_length=1, max_length=1000)
    stream: bool = False
    user: str | None = None


class SolveBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    request: str = Field(min_length=1)
    kind: Literal["", "milp", "pddl", "asp", "apis"] = ""
    domain: str = ""
    apis: str = ""
    given: dict[str, str] = Field(default_factory=dict)
    optimal: bool = False
    trace: bool = False


def render_answer(answer: Answer) -> str:
    """The answer as chat text (Markdown)."""
    parts = [f"**{answer.status.value}**" + (f" ({answer.kind})" if answer.kind else "")]
    if answer.error:
        parts.append(answer.error)
    if answer.explanation:
        parts.append(answer.explanation)
    if answer.values and len(answer.values) <= 60:
        rows = "\n".join(f"| {k} | {v:g} |" for k, v in answer.values.items() if abs(v) > 1e-9)
        if rows:
            parts.append("| variable | value |\n|---|---|\n" + rows)
    return "\n\n".join(parts)


def session_id_for(body: ChatRequest, header: str | None) -> str:
    """The ``X-Session-Id`` header, else the request's ``user`` (hashed if it is not a valid id), else
    a hash of the conversation's first user message."""
    if header:
        return SessionStore.check_id(header)
    if body.user:
        try:
            return SessionStore.check_id(body.user)
        except InputError:
            return "u-" + hashlib.sha256(body.user.encode()).hexdigest()[:30]
    first = next((m.text() for m in body.messages if m.role == "user"), "")
    return "c-" + hashlib.sha256(first.encode()).hexdigest()[:30]


def create_app(
    agent: Agent,
    store: SessionStore,
    token: str = "",
    max_body: int = DEFAULT_MAX_BODY,
    request_timeout: float = 600.0,
    workers: int = 64,
    with_mcp: bool = True,
) -> FastAPI:
    """The ASGI app. ``workers`` caps solver threads; ``request_timeout`` bounds one request (s)."""
    limiter = anyio.CapacityLimiter(workers)
    mcp_app = None
    mcp_server = None
    if with_mcp:
        from agent.mcp_tools import build_mcp

        mcp_server = build_mcp(agent)
        mcp_app = mcp_server.streamable_http_app(
            streamable_http_path="/", stateless_http=True, json_response=True
        )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if mcp_server is not None:
            async with mcp_server.session_manager.run():
                yield
        else:
            yield

    app = FastAPI(title="formalist", version="0.1.0", lifespan=lifespan)

    async def run(fn: Any, *args: Any) -> Any:
        with anyio.fail_after(request_timeout):
            return await anyio.to_thread.run_sync(fn, *args, limiter=limiter)

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Any:
        path = request.url.path
        if token and path != "/health":
            if request.headers.get("authorization", "") != f"Bearer {token}":
                return JSONResponse(
                    {"error": {"message": "missing or wrong bearer token", "type": "auth"}},
                    status_code=401,
                )
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > max_body):
            return JSONResponse(
                {"error": {"message": f"request body over {max_body} bytes", "type": "size"}},
                status_code=413,
            )
        if request.method == "POST" and not path.startswith("/mcp"):
            ctype = request.headers.get("content-type", "")
            if "json" not in ctype:
                return JSONResponse(
                    {
                        "error": {
                            "message": "send JSON (Content-Type: application/json)",
                            "type": "media",
                        }
                    },
                    status_code=415,
                )
            body = await request.body()
            if len(body) > max_body:
                return JSONResponse(
                    {"error": {"message": f"request body over {max_body} bytes", "type": "size"}},
                    status_code=413,
                )
        return await call_next(request)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        bad_json = any(e.get("type") == "json_invalid" for e in errors)
        message = (
            "malformed JSON"
            if bad_json
            else "; ".join(
                f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in errors[:5]
            )
        )
        return JSONResponse(
            {"error": {"message": message, "type": "invalid_request"}},
            status_code=400 if bad_json else 422,
        )

    @app.exception_handler(InputError)
    async def input_error(request: Request, exc: InputError) -> JSONResponse:
        return JSONResponse(
            {"error": {"message": str(exc), "type": "invalid_request"}}, status_code=400
        )

    @app.exception_handler(ConfigError)
    async def config_error(request: Request, exc: ConfigError) -> JSONResponse:
        return JSONResponse(
            {"error": {"message": str(exc), "type": "configuration"}}, status_code=503
        )

    @app.exception_handler(FormalistError)
    async def our_error(request: Request, exc: FormalistError) -> JSONResponse:
        status = 502 if isinstance(exc, StopError) else 500
        return JSONResponse({"error": {"message": str(exc), "type": "server"}}, status_code=status)

    @app.exception_handler(TimeoutError)
    async def timeout(request: Request, exc: TimeoutError) -> JSONResponse:
        return JSONResponse(
            {"error": {"message": f"no answer within {request_timeout:g} s", "type": "timeout"}},
            status_code=504,
        )

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {
            "object": "list",
            "data": [{"id": MODEL_ID, "object": "model", "created": 0, "owned_by": "formalist"}],
        }

    @app.post("/v1/chat/completions", response_model=None)
    async def chat(body: ChatRequest, x_session_id: str | None = Header(default=None)) -> Any:
        users = [m for m in body.messages if m.role == "user"]
        if not users or not users[-1].text().strip():
            raise InputError("the conversation has no user message to answer")
        sid = session_id_for(body, x_session_id)
        session = Session(store, agent, sid)
        answer: Answer = await run(session.ask, users[-1].text())
        content = render_answer(answer)
        cid = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        created = int(time.time())
        headers = {"X-Session-Id": sid}
        if not body.stream:
            return JSONResponse(
                {
                    "id": cid,
                    "object": "chat.completion",
                    "created": created,
                    "model": body.model,
                    "choices": [
                        {
                            "index": 0,
                            "finish_reason": "stop",
                            "message": {"role": "assistant", "content": content},
                        }
                    ],
                    "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
                    "formalist": answer.to_json(),
                },
                headers=headers,
            )

        async def events() -> AsyncIterator[str]:
            def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
                return (
                    "data: "
                    + json.dumps(
                        {
                            "id": cid,
                            "object": "chat.completion.chunk",
                            "created": created,
                            "model": body.model,
                            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                        }
                    )
                    + "\n\n"
                )

            yield chunk({"role": "assistant", "content": ""})
            for i in range(0, len(content), 200):
                yield chunk({"content": content[i : i + 200]})
            yield chunk({}, "stop")
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream", headers=headers)

    @app.post("/v1/solve")
    async def solve(body: SolveBody) -> JSONResponse:
        extra: dict[str, Any] = {}
        if body.domain:
            extra["domain"] = body.domain
        if body.apis:
            extra["apis"] = body.apis
        if body.given:
            extra["given"] = body.given
        req = SolveRequest(body.request, "", body.kind, body.optimal, extra)
        answer: Answer = await run(agent.solve, req)
        return JSONResponse(answer.to_json(trace=body.trace))

    @app.get("/v1/sessions/{session_id}")
    async def get_session(session_id: str) -> dict[str, Any]:
        SessionStore.check_id(session_id)
        if not store.exists(session_id):
            raise HTTPException(404, detail=f"no session {session_id!r}")
        turns = store.turns(session_id)
        last = turns[-1].answer if turns else {}
        return {
            "id": session_id,
            "turns": [
                {
                    "n": t.n,
                    "user": t.text,
                    "status": t.answer.get("status"),
                    "mode": t.answer.get("mode"),
                    "questions": t.answer.get("questions", []),
                    "explanation": t.answer.get("explanation", ""),
                    "created": t.created,
                }
                for t in turns
            ],
            "open_questions": last.get("questions", [])
            if last.get("status") == "NEEDS_INFO"
            else [],
        }

    @app.get("/v1/sessions/{session_id}/artifacts")
    async def get_artifacts(session_id: str) -> dict[str, Any]:
        SessionStore.check_id(session_id)
        if not store.exists(session_id):
            raise HTTPException(404, detail=f"no session {session_id!r}")
        out = []
        for t in store.turns(session_id):
            for attempt in t.answer.get("trace", []):
                if attempt.get("artifact") is None:
                    continue
                out.append(
                    {
                        "turn": t.n,
                        "attempt": attempt.get("number"),
                        "outcome": attempt.get("outcome"),
                        "artifact": attempt.get("artifact"),
                    }
                )
        return {"id": session_id, "artifacts": out}

    if mcp_app is not None:
        app.mount("/mcp", mcp_app)
    return app


def serve(agent: Agent, host: str, port: int, db: str, token: str = "") -> None:
    """Run the service with uvicorn until interrupted."""
    import uvicorn

    app = create_app(agent, SessionStore(db), token=token, max_body=agent.config.max_body_bytes)
    # Keep idle connections longer than clients' pools do (httpx: 5 s), so a client never reuses a
    # connection the server has just closed; a generous backlog absorbs bursts of new connections.
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_keep_alive=75, backlog=2048)
