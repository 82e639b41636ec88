"""The HTTP service: an OpenAI-compatible chat endpoint, a REST API, and MCP tools.

    formalist serve [--host 127.0.0.1] [--port 8000] [--db FILE] [--token TOKEN]

- ``GET /v1/models``, ``POST /v1/chat/completions`` (streamed as server-sent events ending in
  ``[DONE]``, or not). A conversation without an ``X-Session-Id`` header starts a new session with a
  random id, returned in the reply's ``X-Session-Id`` header (and ``formalist.session_id``); send it
  back to continue that session (an id the server did not issue is refused with 404). A client that
  sends no id (most OpenAI clients) gets a new session per request, with the earlier messages it sent
  as the request's context. Only the last user message is the new turn, and a turn is recorded only
  once its reply has been delivered whole.
- ``POST /v1/solve`` (one request, JSON answer), ``GET /v1/sessions/{id}``, ``GET /v1/sessions/{id}/artifacts``.
- ``/mcp`` (or ``/mcp/``): an MCP server (streamable HTTP, stateless, JSON replies) with the tools of
  ``agent.mcp_tools``. It has no server-initiated stream: ``GET`` answers 405, as MCP allows.
- ``GET /health``, ``/openapi.json`` and ``/docs`` are open; every other route needs
  ``Authorization: Bearer TOKEN`` when a token is set.

Bounds: a request body is counted while it is read (413 past ``max_body``, whether or not it has a
Content-Length) and must arrive within ``body_timeout``; the request line and headers must arrive
within ``header_timeout`` of the connection opening (or of the first byte of a later request on it);
at most ``max_connections`` connections are open at once (more get 503 and are closed); one request
lives at most ``request_timeout`` plus a delivery margin. Solver work runs in worker threads, so one
request's solve never blocks another's.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import socket
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, Literal

import anyio
from fastapi import FastAPI, Header, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy.exc import SQLAlchemyError
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agent.agent import Agent
from agent.errors import ConfigError, FormalistError, InputError, StopError, schema_diagnostics
from agent.kinds import KIND_NAMES
from agent.llm.client import Usage, counting_usage, valid_text
from agent.session import PendingTurn, Session, SessionStore, new_session_id
from agent.types import Answer, json_safe
from agent.types import Request as SolveRequest

MODEL_ID = "formalist"
DEFAULT_MAX_BODY = 2_000_000
"""Largest request body accepted, in bytes."""
HEADER_TIMEOUT = 10.0
"""Seconds a connection may take to send a request's line and headers."""
BODY_TIMEOUT = 60.0
"""Seconds a request may take to send its whole body."""
MAX_CONNECTIONS = 512
"""Connections open at once; more are answered 503 and closed."""
DELIVERY_MARGIN = 60.0
"""Seconds a reply may take to go out after its answer is ready (a client that does not read)."""
OPEN_PATHS = frozenset({"/health", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})
"""Routes that need no token: the health check and the API's own description."""
MCP_PATH = "/mcp"


# ---------------------------------------------------------------------------------------------
# Request and response models (they are the OpenAPI schema served at /openapi.json)


class CleanModel(BaseModel):
    """A request model whose strings never hold a lone surrogate: a JSON string may escape one
    (``"\\udc00"``) but no UTF-8 text can hold it, so each becomes U+FFFD before validation."""

    @model_validator(mode="before")
    @classmethod
    def _valid_text(cls, data: Any) -> Any:
        return _clean(data)


class ChatMessage(CleanModel):
    model_config = ConfigDict(extra="allow")
    role: str = Field(description="system, user or assistant")
    content: str | list[dict[str, Any]] | None = Field(
        default=None, description="the text, or OpenAI content parts (their text parts are read)"
    )

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        if isinstance(self.content, list):
            return "\n".join(
                str(p.get("text", "")) for p in self.content if p.get("type") == "text"
            )
        return ""


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: bool = Field(
        default=False, description="send a last chunk with the token counts (OpenAI's option)"
    )


class ChatRequest(CleanModel):
    """An OpenAI chat completion request; the last user message is the new turn."""

    model_config = ConfigDict(extra="allow")
    model: str = Field(default=MODEL_ID, description="echoed back; the server's model answers")
    messages: list[ChatMessage] = Field(min_length=1, max_length=1000)
    stream: bool = Field(default=False, description="reply as server-sent events")
    stream_options: StreamOptions | None = None
    user: str | None = Field(default=None, description="accepted and ignored (not a session)")


def _kind_enum(schema: dict[str, Any]) -> None:
    """The ``kind`` field's choices in the OpenAPI schema: the kinds' registry, read when the
    schema is made."""
    schema["enum"] = ["", *KIND_NAMES]


class SolveBody(CleanModel):
    """One request, solved and verified; no session is kept."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"request": "Maximize 3 x + 2 y subject to x + y <= 4, x <= 3, x, y >= 0."},
                {"request": "(define (problem p) ...)", "kind": "pddl", "domain": "blocksworld"},
            ]
        },
    )
    request: str = Field(
        min_length=1,
        description="words (needs a language model on the server) or a formal model as text: "
        "five-element JSON/YAML, CPLEX LP, MPS, a PDDL problem, a clingo program, a routing spec "
        "or TSPLIB/VRPLIB instance, or a request over APIs",
    )
    kind: str = Field(
        default="",
        description="force the problem kind; empty: decided from the request",
        json_schema_extra=_kind_enum,
    )
    domain: str = Field(
        default="", description="planning: a PDDL domain's text, or the name of a known domain"
    )
    apis: str = Field(default="", description="a request over APIs: the API catalog (YAML/JSON)")
    given: dict[str, str] = Field(
        default_factory=dict, description="a request over APIs: answers to its questions"
    )
    optimal: bool = Field(default=False, description="planning: ask for a proven-optimal plan")
    trace: bool = Field(default=False, description="include every attempt in the answer")

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, kind: str) -> str:
        if kind and kind not in KIND_NAMES:
            raise ValueError(f"unknown kind {kind!r}; known kinds: {', '.join(KIND_NAMES)}")
        return kind


class AnswerOut(BaseModel):
    """An answer: the solver's status, the solution, and whether the independent check passed.
    Kind-specific fields (plan, answer_set, routes, questions, diagnosis, trace...) come with it."""

    model_config = ConfigDict(extra="allow")
    status: str = Field(description="OPTIMAL, FEASIBLE, INFEASIBLE, NEEDS_INFO, ERROR, ...")
    kind: str = Field(description="the kind that answered: milp, pddl, asp, apis, routing...")
    objective: float | list[float] | str | None = Field(
        default=None,
        description="objective value; 'inf', '-inf' or 'nan' when not finite; for an ASP program "
        "optimizing at several priority levels, one value per level, highest priority first",
    )
    values: dict[str, Any] = Field(default_factory=dict, description="variable values")
    verified: bool = Field(description="the answer passed the independent check")
    attempts: int = 0
    solver: str = ""
    language: str = Field(default="", description="the artifact's formal language")
    artifact: Any = None
    explanation: str = ""
    error: str | None = Field(default=None, description="why the request failed, when it did")


class ChatAnswerOut(AnswerOut):
    session_id: str = Field(description="send back as X-Session-Id to continue the conversation")


class UsageOut(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatChoiceMessage(BaseModel):
    role: Literal["assistant"]
    content: str


class ChatChoice(BaseModel):
    index: int
    finish_reason: str
    message: ChatChoiceMessage


class ChatCompletion(BaseModel):
    """An OpenAI chat completion; ``formalist`` carries the structured answer. Streamed
    (``stream: true``) it comes as ``chat.completion.chunk`` events, then ``data: [DONE]``."""

    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[ChatChoice]
    usage: UsageOut = Field(description="tokens the language model used for this turn")
    formalist: ChatAnswerOut


class ErrorDetail(BaseModel):
    message: str
    type: str


class ErrorOut(BaseModel):
    error: ErrorDetail


class TurnOut(BaseModel):
    n: int
    user: str
    status: str | None
    mode: str | None = Field(description="new, follow-up or answer")
    questions: list[str]
    explanation: str
    created: float


class SessionOut(BaseModel):
    id: str
    turns: list[TurnOut]
    open_questions: list[str] = Field(description="what the last answer asked, if it asked")


class ArtifactOut(BaseModel):
    turn: int
    attempt: int | None
    outcome: str | None
    artifact: Any


class ArtifactsOut(BaseModel):
    id: str
    artifacts: list[ArtifactOut]


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut, "description": text}
    for code, text in {
        400: "unusable input (malformed JSON, an empty or unreadable request)",
        401: "missing or wrong bearer token",
        413: "request body too large",
        415: "not JSON",
        422: "the body does not match the schema",
        504: "no answer in time",
    }.items()
}


# ---------------------------------------------------------------------------------------------
# Responses


class SafeJSONResponse(JSONResponse):
    """JSON that always encodes: non-finite numbers become strings, lone surrogates U+FFFD."""

    def render(self, content: Any) -> bytes:
        text = json.dumps(
            json_safe(content), ensure_ascii=False, allow_nan=False, separators=(",", ":")
        )
        return valid_text(text).encode("utf-8")


def _clean(value: Any) -> Any:
    """``value`` (parsed JSON) with every lone surrogate in its strings replaced by U+FFFD."""
    if isinstance(value, str):
        return valid_text(value)
    if isinstance(value, dict):
        return {_clean(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def error_body(message: str, kind: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind}}


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


class _Handoff:
    """A pending turn passed from a worker thread to the request's task. When the task gives up
    first (timeout, cancellation), the turn is discarded by whichever side comes second, so a
    session is never left held."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: tuple[PendingTurn, Usage] | None = None
        self._abandoned = False

    def give(self, pending: PendingTurn, usage: Usage) -> None:
        with self._lock:
            if self._abandoned:
                pending.discard()
            else:
                self._pending = (pending, usage)

    def take(self) -> tuple[PendingTurn, Usage]:
        with self._lock:
            if self._pending is None:
                raise RuntimeError("no answer was handed over")
            out, self._pending = self._pending, None
            return out

    def abandon(self) -> None:
        with self._lock:
            self._abandoned = True
            if self._pending is not None:
                self._pending[0].discard()
                self._pending = None


async def deliver(
    receive: Receive,
    send: Send,
    status: int,
    headers: list[tuple[bytes, bytes]],
    parts: list[bytes],
    before_last: Callable[[], Awaitable[None]],
) -> bool:
    """Send a response made of ``parts`` (at least two), calling ``before_last`` once every part
    but the last went out with the client still there; True when it was called. A disconnect is
    watched for between parts, as the server reports it. Recording just before the last byte
    means a client that has the whole reply can already read its turn back."""
    gone = anyio.Event()

    async def listen() -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                gone.set()
                return

    done = False
    async with anyio.create_task_group() as tg:
        tg.start_soon(listen)
        await anyio.sleep(0)  # a client that left during the solve is seen here
        if not gone.is_set():
            await send({"type": "http.response.start", "status": status, "headers": headers})
            for part in parts[:-1]:
                await anyio.sleep(0)
                if gone.is_set():
                    break
                await send({"type": "http.response.body", "body": part, "more_body": True})
            else:
                await anyio.sleep(0)
                if not gone.is_set():
                    with anyio.CancelScope(shield=True):
                        await before_last()
                    done = True
                    await send({"type": "http.response.body", "body": parts[-1]})
        tg.cancel_scope.cancel()
    return done


class TurnResponse(Response):
    """Answers one chat turn when sent: solves it in a worker thread, sends the reply, and records
    the turn only when the client was there for all of it (recorded just before the last byte goes
    out; a client gone before that leaves no turn)."""

    def __init__(
        self,
        session: Session,
        text: str,
        history: Sequence[tuple[str, str]],
        run: Callable[[Callable[[], None]], Awaitable[None]],
        render: Callable[[Answer, Usage], tuple[str, list[bytes]]],
    ) -> None:
        super().__init__()
        self.session = session
        self.text = text
        self.history = list(history)
        self.run = run
        self.render_turn = render

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handoff = _Handoff()

        def work() -> None:
            with counting_usage() as usage:
                pending = self.session.prepare(self.text, self.history)
            handoff.give(pending, usage)

        try:
            await self.run(work)
            pending, usage = handoff.take()
        except BaseException:
            handoff.abandon()
            raise
        committed = False

        async def commit() -> None:
            nonlocal committed
            committed = True  # commit releases the session even when it fails
            await anyio.to_thread.run_sync(pending.commit)

        try:
            media, parts = self.render_turn(pending.answer, usage)
            headers = [
                (b"content-type", media.encode()),
                (b"x-session-id", self.session.id.encode()),
                (b"cache-control", b"no-cache"),
            ]
            if len(parts) == 1:
                headers.append((b"content-length", str(len(parts[0])).encode()))
                parts = [parts[0][:-1], parts[0][-1:]]
            await deliver(receive, send, 200, headers, parts, commit)
        finally:
            if not committed:
                pending.discard()


# ---------------------------------------------------------------------------------------------
# The guard: every request passes through it before routing


class Guard:
    """ASGI middleware: the token, the body's size (counted as it arrives) and time, the media
    type, the MCP path's two spellings, and a lifetime for every request."""

    def __init__(
        self,
        app: ASGIApp,
        token: str,
        max_body: int,
        body_timeout: float,
        lifetime: float,
    ) -> None:
        self.app = app
        self.token = token
        self.max_body = max_body
        self.body_timeout = body_timeout
        self.lifetime = lifetime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if path == MCP_PATH:  # Starlette would answer the mount's bare path with an empty 307
            scope = {**scope, "path": MCP_PATH + "/", "raw_path": (MCP_PATH + "/").encode()}
            path = scope["path"]
        headers = Headers(scope=scope)
        method = scope["method"]
        if self.token and path not in OPEN_PATHS:
            given = headers.get("authorization", "").encode("utf-8", "replace")
            if not hmac.compare_digest(given, f"Bearer {self.token}".encode()):
                await _reply(send, 401, "missing or wrong bearer token", "auth")
                return
        is_mcp = path.startswith(MCP_PATH + "/")
        if is_mcp and method == "GET":
            # Stateless MCP has nothing to push: no server-initiated event stream to hold open.
            await _reply(
                send,
                405,
                "this MCP server sends no server-initiated stream; POST requests to /mcp",
                "method",
                [(b"allow", b"POST")],
            )
            return
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            await _reply(send, 413, f"request body over {self.max_body} bytes", "size")
            return
        if method == "POST" and not is_mcp and "json" not in headers.get("content-type", ""):
            await _reply(send, 415, "send JSON (Content-Type: application/json)", "media")
            return

        received = 0
        body_done = False
        refused: tuple[int, str, str] | None = None
        started = False
        deadline = time.monotonic() + self.body_timeout

        async def counted() -> Message:
            nonlocal received, body_done, refused
            if refused is not None:
                return {"type": "http.disconnect"}
            if body_done:
                return await receive()
            with anyio.move_on_after(max(0.0, deadline - time.monotonic())) as waited:
                message = await receive()
            if waited.cancelled_caught:
                refused = (408, f"the request body took over {self.body_timeout:g} s", "timeout")
                return {"type": "http.disconnect"}
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    refused = (413, f"request body over {self.max_body} bytes", "size")
                    return {"type": "http.disconnect"}
                body_done = not message.get("more_body", False)
            else:
                body_done = True
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused is not None:
                return  # the app's reply to a refused body is replaced by the refusal
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        with anyio.move_on_after(self.lifetime) as life:
            try:
                await self.app(scope, counted, guarded_send)
            except Exception:
                if refused is None:
                    raise
        if refused is not None:
            if not started:
                await _reply(send, refused[0], refused[1], refused[2], [(b"connection", b"close")])
            return
        if life.cancelled_caught and not started:
            await _reply(send, 504, f"no answer within {self.lifetime:g} s", "timeout")


async def _reply(
    send: Send,
    status: int,
    message: str,
    kind: str,
    extra: Sequence[tuple[bytes, bytes]] = (),
) -> None:
    body = json.dumps(error_body(message, kind)).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


# ---------------------------------------------------------------------------------------------
# The app


def create_app(
    agent: Agent,
    store: SessionStore,
    token: str = "",
    max_body: int = DEFAULT_MAX_BODY,
    request_timeout: float = 600.0,
    workers: int = 64,
    with_mcp: bool = True,
    body_timeout: float = BODY_TIMEOUT,
) -> FastAPI:
    """The ASGI app. ``workers`` caps solver threads; ``request_timeout`` bounds one request's
    answer (s); ``body_timeout`` its upload."""
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

    app = FastAPI(
        title="formalist",
        version="0.1.0",
        lifespan=lifespan,
        default_response_class=SafeJSONResponse,
        description=(
            "Planning and optimization requests in, verified answers out. OpenAI-compatible chat "
            "at /v1/chat/completions, one-shot solving at /v1/solve, sessions at /v1/sessions, and "
            "MCP tools (streamable HTTP) at /mcp. Every route but /health, /openapi.json and /docs "
            "needs `Authorization: Bearer TOKEN` when the server has a token."
        ),
    )

    async def run(fn: Any, *args: Any) -> Any:
        with anyio.fail_after(request_timeout):
            return await anyio.to_thread.run_sync(
                fn, *args, limiter=limiter, abandon_on_cancel=True
            )

    app.add_middleware(
        Guard,
        token=token,
        max_body=max_body,
        body_timeout=body_timeout,
        lifetime=request_timeout + DELIVERY_MARGIN,
    )

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        bad_json = any(e.get("type") == "json_invalid" for e in errors)
        message = (
            "malformed JSON"
            if bad_json
            else "; ".join(d.render() for d in schema_diagnostics(exc, "body")[:5])
        )
        return SafeJSONResponse(
            error_body(message, "invalid_request"), status_code=400 if bad_json else 422
        )

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return SafeJSONResponse(
            error_body(str(exc.detail), "not_found" if exc.status_code == 404 else "http"),
            status_code=exc.status_code,
            headers=exc.headers,
        )

    @app.exception_handler(InputError)
    async def input_error(request: Request, exc: InputError) -> JSONResponse:
        return SafeJSONResponse(error_body(str(exc), "invalid_request"), status_code=400)

    @app.exception_handler(ConfigError)
    async def config_error(request: Request, exc: ConfigError) -> JSONResponse:
        return SafeJSONResponse(error_body(str(exc), "configuration"), status_code=503)

    @app.exception_handler(FormalistError)
    async def our_error(request: Request, exc: FormalistError) -> JSONResponse:
        status = 502 if isinstance(exc, StopError) else 500
        return SafeJSONResponse(error_body(str(exc), "server"), status_code=status)

    @app.exception_handler(SQLAlchemyError)
    async def database_error(request: Request, exc: SQLAlchemyError) -> JSONResponse:
        # The sessions database is down, unreachable or out of connections: say so, briefly
        # (the driver's first line, never the SQL), and let the client retry.
        said = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        reason = said[0] if said else type(exc).__name__
        return SafeJSONResponse(
            error_body(f"the sessions database is unavailable: {reason}", "database"),
            status_code=503,
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(TimeoutError)
    async def timeout(request: Request, exc: TimeoutError) -> JSONResponse:
        return SafeJSONResponse(
            error_body(f"no answer within {request_timeout:g} s", "timeout"), status_code=504
        )

    @app.get("/health", summary="Liveness (open without a token)")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/models", summary="The one model this server offers")
    async def models() -> dict[str, Any]:
        return {
            "object": "list",
            "data": [{"id": MODEL_ID, "object": "model", "created": 0, "owned_by": "formalist"}],
        }

    @app.get(
        "/v1/tools",
        summary="The cached tools (a solve's `tool` field names the one that built its artifact)",
    )
    async def tools() -> JSONResponse:
        from agent.tools_flow import list_cached_tools

        return SafeJSONResponse({"object": "list", "data": await run(list_cached_tools, agent)})

    @app.post(
        "/v1/chat/completions",
        response_model=ChatCompletion,
        summary="OpenAI-compatible chat: the last user message is the new turn",
        responses={
            **ERRORS,
            200: {"content": {"text/event-stream": {}}},
            404: {"model": ErrorOut, "description": "X-Session-Id names no session"},
        },
    )
    async def chat(
        body: ChatRequest,
        x_session_id: str | None = Header(
            default=None,
            description="a session id this server returned; absent: a new session is started",
        ),
    ) -> Response:
        users = [i for i, m in enumerate(body.messages) if m.role == "user"]
        if not users or not body.messages[users[-1]].text().strip():
            raise InputError("the conversation has no user message to answer")
        last = users[-1]
        if x_session_id:
            sid = SessionStore.check_id(x_session_id)
            if not await anyio.to_thread.run_sync(store.exists, sid):
                raise HTTPException(
                    404,
                    detail=f"no session {sid!r}: send no X-Session-Id to start one (its id comes "
                    "back in the reply's X-Session-Id header)",
                )
            history: list[tuple[str, str]] = []
        else:
            sid = new_session_id()
            history = [(m.role, m.text()) for m in body.messages[:last]]
        cid = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        created = int(time.time())
        with_usage = bool(body.stream_options and body.stream_options.include_usage)

        def render(answer: Answer, usage: Usage) -> tuple[str, list[bytes]]:
            content = valid_text(render_answer(answer))
            counts = {
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "total_tokens": usage.total_tokens,
            }
            if not body.stream:
                data = {
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
                    "usage": counts,
                    "formalist": {**answer.to_json(), "session_id": sid},
                }
                return "application/json", [bytes(SafeJSONResponse(data).body)]

            def chunk(
                delta: dict[str, Any] | None, finish: str | None = None, **extra: Any
            ) -> bytes:
                choices = (
                    [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
                )
                event = {
                    "id": cid,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": body.model,
                    "choices": choices,
                    **extra,
                }
                return f"data: {json.dumps(event)}\n\n".encode()

            parts = [chunk({"role": "assistant", "content": ""})]
            parts += [chunk({"content": content[i : i + 200]}) for i in range(0, len(content), 200)]
            parts.append(chunk({}, "stop"))
            if with_usage:
                parts.append(chunk(None, usage=counts))
            parts.append(b"data: [DONE]\n\n")
            return "text/event-stream; charset=utf-8", parts

        text = body.messages[last].text()
        return TurnResponse(Session(store, agent, sid), text, history, run, render)

    @app.post(
        "/v1/solve",
        response_model=AnswerOut,
        summary="Solve one request (no session) and verify the answer",
        responses=ERRORS,
    )
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
        return SafeJSONResponse(answer.to_json(trace=body.trace))

    @app.get(
        "/v1/sessions/{session_id}",
        response_model=SessionOut,
        summary="A session's turns and open questions",
        responses={**ERRORS, 404: {"model": ErrorOut, "description": "no such session"}},
    )
    async def get_session(session_id: str) -> JSONResponse:
        SessionStore.check_id(session_id)
        turns = await anyio.to_thread.run_sync(store.turns, session_id)
        if not turns and not await anyio.to_thread.run_sync(store.exists, session_id):
            raise HTTPException(404, detail=f"no session {session_id!r}")
        last = turns[-1].answer if turns else {}
        return SafeJSONResponse(
            {
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
        )

    @app.get(
        "/v1/sessions/{session_id}/artifacts",
        response_model=ArtifactsOut,
        summary="Every formal artifact a session's turns produced",
        responses={**ERRORS, 404: {"model": ErrorOut, "description": "no such session"}},
    )
    async def get_artifacts(session_id: str) -> JSONResponse:
        SessionStore.check_id(session_id)
        turns = await anyio.to_thread.run_sync(store.turns, session_id)
        if not turns and not await anyio.to_thread.run_sync(store.exists, session_id):
            raise HTTPException(404, detail=f"no session {session_id!r}")
        out = []
        for t in turns:
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
        return SafeJSONResponse({"id": session_id, "artifacts": out})

    if mcp_app is not None:
        app.mount(MCP_PATH, mcp_app)
    return app


# ---------------------------------------------------------------------------------------------
# The server


def bounded_protocol(
    header_timeout: float = HEADER_TIMEOUT, max_connections: int = MAX_CONNECTIONS
) -> type[asyncio.Protocol]:
    """uvicorn's HTTP/1.1 protocol with two bounds it lacks: a connection must send a request's
    line and headers within ``header_timeout`` seconds (counted from the connection opening, or
    from the first byte of a later request on it), and at most ``max_connections`` are open at
    once (a connection past that is answered 503 and closed)."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class BoundedH11Protocol(H11Protocol):
        _header_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.connections) > max_connections:
                transport.write(
                    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\n"
                    b"content-length: 20\r\nconnection: close\r\n\r\ntoo many connections"
                )
                transport.close()
                return
            self._watch_headers()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            self._watch_headers()

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop_header_timer()
            super().connection_lost(exc)

        def _waiting_for_headers(self) -> bool:
            return self.cycle is None or self.cycle.response_complete

        def _watch_headers(self) -> None:
            if self.transport.is_closing():
                self._stop_header_timer()
            elif not self._waiting_for_headers():
                self._stop_header_timer()
            elif self._header_timer is None:
                self._header_timer = self.loop.call_later(header_timeout, self._headers_late)

        def _stop_header_timer(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _headers_late(self) -> None:
            self._header_timer = None
            if self._waiting_for_headers() and not self.transport.is_closing():
                self.transport.close()

    return BoundedH11Protocol


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to ``host``:``port`` (0: any free port); ``InputError`` when it cannot be."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise InputError(f"cannot listen on {host!r}: {e.strerror}") from e
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as e:
        sock.close()
        raise InputError(f"cannot listen on {host}:{port}: {e.strerror or e}") from e
    sock.set_inheritable(True)
    return sock


def banner(host: str, port: int, token: str, mcp: bool = True) -> str:
    """What ``formalist serve`` prints once it listens."""
    shown = f"[{host}]" if ":" in host else host
    base = f"http://{shown}:{port}"
    lines = [
        f"formalist is listening on {base}",
        f"  chat (OpenAI-compatible)  {base}/v1   (POST /v1/chat/completions, GET /v1/models)",
        f"  solve one request         POST {base}/v1/solve",
        f"  sessions                  GET  {base}/v1/sessions/ID[/artifacts]",
    ]
    if mcp:
        lines.append(f"  MCP (streamable HTTP)     {base}/mcp")
    lines.append(f"  API reference             {base}/docs   (schema: {base}/openapi.json)")
    if token:
        lines.append(
            "  token: every route except /health, /openapi.json and /docs needs "
            "'Authorization: Bearer <token>' (chat, solve, sessions and MCP)"
        )
    else:
        lines.append(
            "  no token: every route is open to whoever can reach this address "
            "(set --token or FORMALIST_TOKEN to require one)"
        )
    return "\n".join(lines)


def serve(
    agent: Agent,
    host: str,
    port: int,
    db: str,
    token: str = "",
    header_timeout: float = HEADER_TIMEOUT,
    max_connections: int = MAX_CONNECTIONS,
) -> None:
    """Run the service with uvicorn until interrupted; prints where it listens once it does."""
    import logging

    import uvicorn

    logging.getLogger("mcp").setLevel(logging.WARNING)  # not "session manager started" at start-up
    app = create_app(agent, SessionStore(db), token=token, max_body=agent.config.max_body_bytes)
    sock = listening_socket(host, port)
    bound = sock.getsockname()
    config = uvicorn.Config(
        app,
        log_level="warning",
        http=bounded_protocol(header_timeout, max_connections),
        # Keep idle connections longer than clients' pools do (httpx: 5 s), so a client never
        # reuses a connection the server has just closed; a generous backlog absorbs bursts.
        timeout_keep_alive=75,
        backlog=2048,
    )
    server = uvicorn.Server(config)

    async def announce() -> None:
        while not server.started:
            if server.should_exit:
                return
            await asyncio.sleep(0.05)
        print(banner(host, int(bound[1]), token, mcp=True), flush=True)

    async def main() -> None:
        task = asyncio.ensure_future(announce())
        try:
            await server.serve(sockets=[sock])
        finally:
            task.cancel()

    try:
        asyncio.run(main())
    finally:
        sock.close()
    sys.stdout.flush()
