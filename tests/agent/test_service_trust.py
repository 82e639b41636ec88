"""The service against hostile and careless clients, over real sockets on loopback: lone
surrogates, bodies larger than the limit with and without a length, slow or silent connections,
too many connections, event streams that never end, sessions that must not be shared, replies a
client never received, and requests that outlive their time. The app runs under uvicorn in a thread
with the bounded protocol `formalist serve` uses, with small limits so each bound is reached fast."""

from __future__ import annotations

import json
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from pg_cluster import database_url as pg_database_url

from agent.agent import Agent
from agent.config import Config
from agent.llm.client import valid_text
from agent.server import bounded_protocol, create_app, listening_socket
from agent.session import SessionStore
from benchmarks.service_load import market_split
from conftest import MILP, golden_json

KNAPSACK = json.dumps(golden_json("knapsack.json"))
QUESTION = json.dumps({"questions": ["How much flour is available?"]})


class ThreadServer:
    """The app on a free loopback port, served by uvicorn in a daemon thread."""

    def __init__(
        self,
        tmp: Path,
        replies: list[str] | None = None,
        header_timeout: float = 10.0,
        max_connections: int = 512,
        time_limit: float = 60.0,
        model: str = "",
        base_url: str = "",
        db: str = "",
        **app_kw: Any,
    ) -> None:
        if replies is not None:
            rec = tmp / f"replies-{id(self)}.json"
            rec.write_text(json.dumps(replies))
            model = f"replay:{rec}"
        cfg = Config(model=model, base_url=base_url, cache="", time_limit=time_limit)
        self.agent = Agent(config=cfg)
        self.store = SessionStore(db or tmp / f"sessions-{id(self)}.sqlite")
        app = create_app(self.agent, self.store, **app_kw)
        sock = listening_socket("127.0.0.1", 0)
        self.port = int(sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app,
            log_level="critical",
            http=bounded_protocol(header_timeout, max_connections),
            timeout_keep_alive=75,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)
        self.store.close()

    def chat(self, text: str, session: str | None = None, **kw: Any) -> httpx.Response:
        headers = {"X-Session-Id": session} if session else {}
        return httpx.post(
            f"{self.url}/v1/chat/completions",
            headers=headers,
            timeout=60,
            json={"messages": [{"role": "user", "content": text}], **kw},
        )


@pytest.fixture
def serving(tmp_path: Path) -> Iterator[Any]:
    started: list[ThreadServer] = []

    def start(replies: list[str] | None = None, **kw: Any) -> ThreadServer:
        s = ThreadServer(tmp_path, replies, **kw)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


@pytest.fixture
def grounding_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    """The service has no grounding option: pin ``report`` (the default is ``repair``) where a
    test's recorded knapsack, whose numbers are not its words', must be one reply per turn."""
    monkeypatch.setattr("agent.agent.DEFAULT_GROUNDING", "report")


BACKENDS = ["sqlite", "postgresql"]


def sessions_db(backend: str, tmp: Path) -> str:
    """An SQLite file, or a database on a real PostgreSQL test server (``pg_cluster``; skipped
    where PostgreSQL is not installed)."""
    if backend == "sqlite":
        return str(tmp / f"sessions-{secrets.token_hex(4)}.sqlite")
    return pg_database_url()


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def closed_by_server(sock: socket.socket, within: float) -> bool:
    """True when the server closes ``sock`` (EOF or reset) within ``within`` seconds."""
    sock.settimeout(within)
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


def read_response(sock: socket.socket, timeout: float = 10) -> bytes:
    sock.settimeout(timeout)
    out = b""
    try:
        while chunk := sock.recv(65536):
            out += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    return out


# -- lone surrogates ----------------------------------------------------------------------------


def test_lone_surrogates_are_answered_and_the_turn_is_kept(
    serving: Any, grounding_reported: None
) -> None:
    srv = serving([KNAPSACK, KNAPSACK])
    # JSON may escape a lone surrogate; no UTF-8 text can hold one.
    raw = (
        b'{"messages": [{"role": "user", "content": "Pack the boxes \\udc00 into 15 kg \\ud800"}]}'
    )
    first = httpx.post(
        f"{srv.url}/v1/chat/completions",
        content=raw,
        headers={"Content-Type": "application/json"},
        timeout=60,
    )
    assert first.status_code == 200, first.text
    assert first.json()["formalist"]["objective"] == 15
    sid = first.headers["x-session-id"]
    turns = httpx.get(f"{srv.url}/v1/sessions/{sid}").json()["turns"]
    assert turns[0]["user"] == valid_text("Pack the boxes \udc00 into 15 kg \ud800")
    assert "\ufffd" in turns[0]["user"]
    # the same in a session's later turn, streamed, and in a follow-up
    raw2 = (
        b'{"stream": true, "messages": [{"role": "user", "content": "now \\udfff make it 16 kg"}]}'
    )
    second = httpx.post(
        f"{srv.url}/v1/chat/completions",
        content=raw2,
        headers={"Content-Type": "application/json", "X-Session-Id": sid},
        timeout=60,
    )
    assert second.status_code == 200 and second.text.rstrip().endswith("data: [DONE]")
    assert len(httpx.get(f"{srv.url}/v1/sessions/{sid}").json()["turns"]) == 2
    # a formal model whose names carry surrogates, through /v1/solve: an answer, never a 500
    model = (
        (MILP / "knapsack.json").read_text().replace('"description": "', '"description": "\\udc00')
    )
    solved = httpx.post(
        f"{srv.url}/v1/solve",
        content=json.dumps({"request": model}).encode().replace(b"\\\\udc00", b"\\udc00"),
        headers={"Content-Type": "application/json"},
        timeout=60,
    )
    assert solved.status_code in (200, 400), solved.text
    assert solved.json()  # well-formed JSON either way
    apis = httpx.post(
        f"{srv.url}/v1/solve",
        content=b'{"request": "x", "given": {"\\ud800": "\\udc00"}, "kind": "apis"}',
        headers={"Content-Type": "application/json"},
        timeout=60,
    )
    assert apis.status_code < 500, apis.text
    # MCP's JSON-RPC reader refuses the escape itself: a parse error, never a 500
    call = (
        b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "solve_asp", '
        b'"arguments": {"program": "a. % \\udc00\\n#show a/0."}}}'
    )
    mcp = httpx.post(
        f"{srv.url}/mcp",
        content=call,
        headers={
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
        },
        timeout=60,
    )
    assert mcp.status_code == 400 and mcp.json()["error"]["code"] == -32700


# -- bodies -------------------------------------------------------------------------------------


def test_a_chunked_body_is_cut_off_at_the_limit(serving: Any) -> None:
    limit = 200_000
    srv = serving(max_body=limit)
    sock = connect(srv.port)
    sock.sendall(
        b"POST /v1/solve HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    piece = b"x" * 65536
    sent = 0
    sock.settimeout(10)
    try:
        for _ in range(2000):  # up to 128 MiB, far past the limit, unless the server stops us
            sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
            sent += len(piece)
    except (BrokenPipeError, ConnectionResetError, TimeoutError):
        pass
    reply = read_response(sock)
    sock.close()
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
    assert b"request body over" in reply
    # the server stopped reading long before the client stopped offering: kernel buffers only
    assert sent < 64 * 1024 * 1024
    # with httpx streaming a generator (no Content-Length) the same
    gen = (b"y" * 65536 for _ in range(20))
    r = httpx.post(
        f"{srv.url}/v1/chat/completions",
        content=gen,
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert r.status_code == 413
    # a chunked body within the limit is read as usual
    small = iter([b'{"request": ', json.dumps((MILP / "knapsack.json").read_text()).encode(), b"}"])
    ok = httpx.post(
        f"{srv.url}/v1/solve", content=small, headers={"Content-Type": "application/json"}
    )
    assert ok.status_code == 200 and ok.json()["objective"] == 15


def test_a_body_that_trickles_in_is_refused_in_time(serving: Any) -> None:
    srv = serving(body_timeout=1.0)
    sock = connect(srv.port)
    sock.sendall(
        b"POST /v1/solve HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\n\r\n{"
    )
    t0 = time.monotonic()
    reply = b""
    sock.settimeout(0.3)
    while time.monotonic() - t0 < 8 and not reply:
        try:
            sock.sendall(b" ")
            reply = sock.recv(4096)
        except TimeoutError:
            continue
        except (BrokenPipeError, ConnectionResetError):
            break
    sock.close()
    assert reply.startswith(b"HTTP/1.1 408"), reply
    assert time.monotonic() - t0 < 4


# -- connections --------------------------------------------------------------------------------


def test_connections_that_do_not_send_their_headers_are_closed(serving: Any) -> None:
    srv = serving(header_timeout=1.0)
    silent = [connect(srv.port) for _ in range(20)]
    partial = connect(srv.port)
    partial.sendall(b"GET /v1/models HTTP/1.1\r\nHost: x\r\n")
    trickle = connect(srv.port)
    t0 = time.monotonic()
    trickle.sendall(b"GET /v1/models HTTP/1.1\r\n")
    closed = False
    while time.monotonic() - t0 < 6:  # a header byte every 0.2 s keeps no connection alive
        try:
            trickle.sendall(b"X-A: b\r\n")
        except (BrokenPipeError, ConnectionResetError):
            closed = True
            break
        if closed_by_server(trickle, 0.2):
            closed = True
            break
    assert closed and time.monotonic() - t0 < 4
    assert all(closed_by_server(s, 3) for s in [*silent, partial])
    # after a complete request, an idle keep-alive connection stays (its own timeout), but a
    # second request that stalls in its headers is cut off
    kept = connect(srv.port)
    kept.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    kept.settimeout(5)
    assert kept.recv(4096).startswith(b"HTTP/1.1 200")
    assert not closed_by_server(kept, 1.5)
    kept.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
    assert closed_by_server(kept, 3)
    for s in [*silent, partial, trickle, kept]:
        s.close()
    assert httpx.get(f"{srv.url}/health").status_code == 200


def test_connections_past_the_cap_are_refused(serving: Any) -> None:
    srv = serving(max_connections=10, header_timeout=30.0)
    held = [connect(srv.port) for _ in range(10)]
    time.sleep(0.3)
    extra = [connect(srv.port) for _ in range(15)]
    refused = [read_response(s, 3) for s in extra]
    assert all(r.startswith(b"HTTP/1.1 503") for r in refused), refused[:3]
    assert not any(closed_by_server(s, 0.2) for s in held)
    for s in held + extra:
        s.close()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # the server sees the closes, then serves again
        try:
            if httpx.get(f"{srv.url}/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    assert httpx.get(f"{srv.url}/health", timeout=2).status_code == 200


def test_mcp_event_streams_are_not_held_open(serving: Any) -> None:
    srv = serving()
    t0 = time.monotonic()
    for path in ("/mcp", "/mcp/"):
        for _ in range(20):
            r = httpx.get(f"{srv.url}{path}", headers={"Accept": "text/event-stream"}, timeout=5)
            assert r.status_code == 405 and r.headers["allow"] == "POST"
    assert time.monotonic() - t0 < 10
    # and the MCP endpoint still answers its POSTs, with or without the trailing slash
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    accept = {"Accept": "application/json, text/event-stream"}
    for path in ("/mcp", "/mcp/"):
        r = httpx.post(f"{srv.url}{path}", json=call, headers=accept, timeout=30)
        assert r.status_code == 200, r.text
        assert "solve_asp" in {t["name"] for t in r.json()["result"]["tools"]}


# -- sessions -----------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_sessions_are_random_and_never_shared(
    serving: Any, backend: str, tmp_path: Path, grounding_reported: None
) -> None:
    srv = serving([KNAPSACK] * 4, db=sessions_db(backend, tmp_path))
    same = "Pack the most valuable boxes into a 15 kg bag."
    a = srv.chat(same)
    b = srv.chat(same)
    assert a.status_code == b.status_code == 200
    ida, idb = a.headers["x-session-id"], b.headers["x-session-id"]
    assert ida != idb and len(ida) == 32 and int(ida, 16) >= 0
    assert a.json()["formalist"]["session_id"] == ida
    assert len(httpx.get(f"{srv.url}/v1/sessions/{ida}").json()["turns"]) == 1
    # an id this server did not issue is refused, and nothing is created under it
    for guess in ("alice", "s1", "c-" + "0" * 30):
        r = srv.chat("hello", session=guess)
        assert r.status_code == 404 and "no session" in r.json()["error"]["message"]
        assert httpx.get(f"{srv.url}/v1/sessions/{guess}").status_code == 404
    # `user` is no session either: two clients naming the same user do not meet
    c = srv.chat(same, user="alice")
    d = srv.chat(same, user="alice")
    assert c.headers["x-session-id"] != d.headers["x-session-id"]
    # the issued id continues its own session
    srv2 = serving([QUESTION, KNAPSACK], db=sessions_db(backend, tmp_path))
    first = srv2.chat("A bakery ... maximize revenue.")
    sid = first.headers["x-session-id"]
    second = srv2.chat("5000 g", session=sid)
    assert second.json()["formalist"]["status"] == "OPTIMAL"
    modes = [t["mode"] for t in httpx.get(f"{srv2.url}/v1/sessions/{sid}").json()["turns"]]
    assert modes == ["new", "answer"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_conversation_sent_without_a_session_is_its_own_context(
    serving: Any, backend: str, tmp_path: Path
) -> None:
    srv = serving([QUESTION, KNAPSACK], db=sessions_db(backend, tmp_path))
    history = [
        {"role": "system", "content": "You are helpful."},
        {"role": "user", "content": "A bakery makes muffins and cakes; maximize revenue."},
        {"role": "assistant", "content": "**NEEDS_INFO**\n\nHow much flour is available?"},
        {"role": "user", "content": "5000 g"},
    ]
    r = httpx.post(f"{srv.url}/v1/chat/completions", json={"messages": history}, timeout=60)
    assert r.status_code == 200, r.text
    sid = r.headers["x-session-id"]
    (turn,) = srv.store.turns(sid)
    assert turn.text == "5000 g"
    request = turn.answer["request"]
    assert "A bakery makes muffins" in request and "How much flour" in request
    assert request.rstrip().endswith("5000 g") and "You are helpful" not in request
    # a formal model sent after earlier talk is solved on its own (it needs no context)
    history[-1] = {"role": "user", "content": (MILP / "knapsack.json").read_text()}
    r = httpx.post(f"{srv.url}/v1/chat/completions", json={"messages": history}, timeout=60)
    assert r.status_code == 200 and r.json()["formalist"]["objective"] == 15
    (turn,) = srv.store.turns(r.headers["x-session-id"])
    assert turn.answer["request"] == (MILP / "knapsack.json").read_text()


# -- delivery -----------------------------------------------------------------------------------


def _post_and_leave(port: int, body: dict[str, Any], session: str, after: float) -> None:
    data = json.dumps(body).encode()
    sock = connect(port)
    sock.sendall(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"X-Session-Id: {session}\r\nContent-Length: {len(data)}\r\n\r\n".encode()
        + data
    )
    time.sleep(after)
    sock.close()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("stream", [True, False])
def test_a_reply_the_client_never_got_is_not_recorded(
    serving: Any, stream: bool, backend: str, tmp_path: Path
) -> None:
    srv = serving([KNAPSACK], time_limit=2.0, db=sessions_db(backend, tmp_path))
    first = srv.chat("Pack the boxes into a 15 kg bag.")
    sid = first.headers["x-session-id"]
    hard = {"stream": stream, "messages": [{"role": "user", "content": market_split()}]}
    _post_and_leave(srv.port, hard, sid, after=0.5)  # gone while the 2 s solve runs
    time.sleep(3.5)
    assert len(srv.store.turns(sid)) == 1
    # the session is free again, and a reply read to its end is recorded
    done = httpx.post(
        f"{srv.url}/v1/chat/completions",
        headers={"X-Session-Id": sid},
        json={"stream": stream, "messages": [{"role": "user", "content": market_split()}]},
        timeout=60,
    )
    assert done.status_code == 200
    assert [t.n for t in srv.store.turns(sid)] == [1, 2]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_request_past_its_time_gets_504_and_frees_its_session(
    serving: Any, backend: str, tmp_path: Path
) -> None:
    srv = serving(
        [KNAPSACK], time_limit=4.0, request_timeout=1.0, db=sessions_db(backend, tmp_path)
    )
    sid = srv.chat("Pack the boxes into a 15 kg bag.").headers["x-session-id"]
    t0 = time.monotonic()
    late = srv.chat(market_split(), session=sid)
    assert late.status_code == 504 and time.monotonic() - t0 < 3.5
    time.sleep(4)  # the abandoned solve ends; its turn is dropped and the session released
    assert len(srv.store.turns(sid)) == 1
    r = srv.chat((MILP / "knapsack.json").read_text(), session=sid)
    assert r.status_code == 200 and len(srv.store.turns(sid)) == 2
