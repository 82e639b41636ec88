"""The HTTP service: OpenAI-compatible chat (streamed and not), sessions that survive a SIGKILL,
REST, MCP, and bad input. Each test starts `formalist serve` on a free loopback port."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pg_cluster import database_url as pg_database_url

from conftest import MILP, golden_json

ROOT = Path(__file__).resolve().parents[2]
BAKERY = json.loads((ROOT / "formalizers/milp/examples/ratio_scalar.json").read_text())["model"]


def bakery_with_flour(grams: int) -> dict:
    model = json.loads(json.dumps(BAKERY))
    next(p for p in model["parameters"] if p["name"] == "flour_available")["value"] = grams
    return model


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(
        self,
        tmp: Path,
        replies: list[str | dict],
        token: str = "",
        db: Path | str | None = None,
        extra: tuple[str, ...] = (),
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.db = db or tmp / "sessions.sqlite"
        rec = tmp / f"replies-{self.port}.json"
        rec.write_text(json.dumps([r if isinstance(r, str) else json.dumps(r) for r in replies]))
        cmd = [
            sys.executable,
            "-m",
            "agent.cli",
            "serve",
            "--port",
            str(self.port),
            "--db",
            str(self.db),
            "--model",
            f"replay:{rec}",
            "--no-cache",
        ]
        if token:
            cmd += ["--token", token]
        cmd += extra
        env = {**os.environ, "HOME": str(tmp)}
        self.proc = subprocess.Popen(
            cmd, cwd=tmp, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
            if self.proc.poll() is not None:
                raise RuntimeError(
                    self.proc.stdout.read().decode() if self.proc.stdout else "server died"
                )
        raise RuntimeError("server did not start")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture(params=["sqlite", "postgresql"])
def sessions_db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a test's sessions are kept: an SQLite file, or a database on a real PostgreSQL test
    server (``pg_cluster``; skipped where PostgreSQL is not installed)."""
    if request.param == "sqlite":
        return str(tmp_path / "sessions.sqlite")
    return pg_database_url()


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    for s in started:
        s.stop()


def start(servers: list[Server], tmp: Path, replies: list[str | dict], **kw: object) -> Server:
    s = Server(tmp, replies, **kw)  # type: ignore[arg-type]
    servers.append(s)
    return s


PACK = (
    "Pack the most valuable of five boxes into a 15 kg bag: green ($4, 12 kg), blue ($2, 2 kg), "
    "grey ($1, 1 kg), yellow ($10, 4 kg) and orange ($2, 1 kg)."
)
"""The golden knapsack's request, every number of its model stated: the recorded model is
grounded, so each turn takes one reply (``serve`` has no grounding option to pin ``report``)."""


def test_openai_sdk_streamed_and_not(servers: list[Server], tmp_path: Path) -> None:
    from openai import OpenAI

    srv = start(servers, tmp_path, [golden_json("knapsack.json")] * 3)
    client = OpenAI(base_url=f"{srv.url}/v1", api_key="unused")
    assert [m.id for m in client.models.list().data] == ["formalist"]
    reply = client.chat.completions.create(
        model="formalist",
        user="alice",
        messages=[{"role": "user", "content": PACK}],
    )
    text = reply.choices[0].message.content or ""
    assert "OPTIMAL" in text and "= 15" in text
    chunks = list(
        client.chat.completions.create(
            model="formalist",
            stream=True,
            user="bob",
            messages=[{"role": "user", "content": PACK}],
        )
    )
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == text
    assert chunks[-1].choices[0].finish_reason == "stop"
    raw = httpx.post(
        f"{srv.url}/v1/chat/completions",
        timeout=30,
        json={
            "model": "formalist",
            "stream": True,
            "messages": [{"role": "user", "content": "again"}],
        },
    )
    assert raw.text.rstrip().endswith("data: [DONE]")


def chat(srv: Server, session: str | None, text: str) -> tuple[dict, str]:
    """One turn: in ``session``, or (None) in a new one; the reply and its session id."""
    r = httpx.post(
        f"{srv.url}/v1/chat/completions",
        timeout=60,
        headers={"X-Session-Id": session} if session else {},
        json={"model": "formalist", "messages": [{"role": "user", "content": text}]},
    )
    assert r.status_code == 200, r.text
    sid = r.headers["x-session-id"]
    assert session is None or sid == session
    return r.json(), sid


def test_multi_turn_question_answer_follow_up(
    servers: list[Server], tmp_path: Path, sessions_db: str
) -> None:
    replies = [{"questions": ["How much flour is available?"]}, BAKERY, bakery_with_flour(6000)]
    srv = start(servers, tmp_path, replies, db=sessions_db)
    # Every number of the recorded bakery but the flour is stated: its models are grounded.
    ask = (
        "A bakery makes muffins and cakes. Each muffin needs 20 g of flour and each cake 100 g. "
        "At least 40% of the items made must be muffins, and at most 30 cakes can be sold. A "
        "muffin sells for $2 and a cake for $9. Maximize revenue."
    )
    first, sid = chat(srv, None, ask)
    assert first["formalist"]["status"] == "NEEDS_INFO"
    assert "How much flour is available?" in first["choices"][0]["message"]["content"]
    second, _ = chat(srv, sid, "5000 g")
    assert second["formalist"]["status"] == "OPTIMAL" and second["formalist"]["objective"] == 500
    third, _ = chat(srv, sid, "What if the flour is 6000 g?")
    assert third["formalist"]["objective"] == 600
    assert "flour_available: 5000 -> 6000" in third["choices"][0]["message"]["content"]
    session = httpx.get(f"{srv.url}/v1/sessions/{sid}").json()
    assert [t["mode"] for t in session["turns"]] == ["new", "answer", "follow-up"]
    arts = httpx.get(f"{srv.url}/v1/sessions/{sid}/artifacts").json()["artifacts"]
    assert len(arts) == 2 and arts[-1]["artifact"]["parameters"][2]["value"] == 6000


def test_session_survives_sigkill(servers: list[Server], tmp_path: Path, sessions_db: str) -> None:
    db = sessions_db
    srv = start(servers, tmp_path, [{"questions": ["How much flour is available?"]}], db=db)
    first, sid = chat(srv, None, "A bakery ... maximize revenue.")
    assert first["formalist"]["status"] == "NEEDS_INFO"
    srv.kill()
    again = start(servers, tmp_path, [BAKERY], db=db)
    state = httpx.get(f"{again.url}/v1/sessions/{sid}").json()
    assert state["open_questions"] == ["How much flour is available?"]
    done, _ = chat(again, sid, "5000 g")
    assert done["formalist"]["status"] == "OPTIMAL" and done["formalist"]["objective"] == 500
    assert len(httpx.get(f"{again.url}/v1/sessions/{sid}").json()["turns"]) == 2


def test_rest_solve_and_mcp(servers: list[Server], tmp_path: Path) -> None:
    import anyio
    from mcp.client.client import Client

    srv = start(servers, tmp_path, [])
    r = httpx.post(
        f"{srv.url}/v1/solve", json={"request": (MILP / "transport.json").read_text()}, timeout=60
    )
    assert r.status_code == 200 and r.json()["objective"] == 930 and r.json()["verified"]

    async def mcp() -> tuple[list[str], dict]:
        async with Client(f"{srv.url}/mcp/") as client:
            tools = await client.list_tools()
            result = await client.call_tool(
                "solve", {"request": (MILP / "knapsack.json").read_text()}
            )
            return sorted(t.name for t in tools.tools), result.structured_content or {}

    names, data = anyio.run(mcp)
    assert {"solve", "formalize", "solve_optimization", "plan", "solve_asp"} <= set(names)
    assert data["status"] == "OPTIMAL" and data["objective"] == 15


def test_bad_input_gets_the_right_status(servers: list[Server], tmp_path: Path) -> None:
    srv = start(servers, tmp_path, [], token="s3cret")
    ok = {"Authorization": "Bearer s3cret"}
    assert httpx.get(f"{srv.url}/health").status_code == 200  # open
    assert httpx.get(f"{srv.url}/v1/models").status_code == 401
    assert (
        httpx.get(f"{srv.url}/v1/models", headers={"Authorization": "Bearer nope"}).status_code
        == 401
    )
    assert httpx.get(f"{srv.url}/v1/models", headers=ok).status_code == 200
    bad_json = httpx.post(
        f"{srv.url}/v1/solve",
        headers={**ok, "Content-Type": "application/json"},
        content=b'{"request": ',
    )
    assert bad_json.status_code == 400 and "malformed JSON" in bad_json.text
    huge = httpx.post(
        f"{srv.url}/v1/solve",
        headers={**ok, "Content-Type": "application/json"},
        content=b'{"request": "' + b"x" * 20_000_000 + b'"}',
        timeout=60,
    )
    assert huge.status_code == 413
    binary = httpx.post(
        f"{srv.url}/v1/solve",
        headers={**ok, "Content-Type": "application/octet-stream"},
        content=bytes(range(256)),
    )
    assert binary.status_code == 415
    missing = httpx.get(f"{srv.url}/v1/sessions/nobody-here", headers=ok)
    assert missing.status_code == 404
    empty = httpx.post(f"{srv.url}/v1/solve", headers=ok, json={"request": "   "})
    assert empty.status_code == 400 and "empty" in empty.text
    no_model = httpx.post(
        f"{srv.url}/v1/chat/completions",
        headers=ok,
        timeout=30,
        json={"messages": [{"role": "user", "content": "Maximize profit from chairs."}]},
    )
    assert no_model.status_code in (502, 503)
    # nothing was stored by any of these
    assert httpx.get(f"{srv.url}/v1/sessions/nobody-here", headers=ok).status_code == 404


def test_mcp_over_stdio(tmp_path: Path) -> None:
    import anyio
    from mcp.client.client import Client
    from mcp.client.stdio import StdioServerParameters

    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "agent.cli", "serve", "--mcp-stdio", "--no-cache"],
        cwd=str(ROOT),
        env={"HOME": str(tmp_path)},
    )

    async def go() -> tuple[list[str], dict]:
        async with Client(params) as client:
            tools = await client.list_tools()
            result = await client.call_tool(
                "solve_asp", {"program": "{a; b}. :- a, b. :- not a, not b. #show a/0. #show b/0."}
            )
            return sorted(t.name for t in tools.tools), result.structured_content or {}

    names, data = anyio.run(go)
    assert "plan" in names and "solve_asp" in names
    assert data["status"] == "FEASIBLE" and len(data["answer_set"]) == 1  # nothing to optimize
