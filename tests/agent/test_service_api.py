"""The service as a new user meets it: `formalist serve` says where it listens, what its token
protects and where MCP is; the API describes itself (OpenAPI at /openapi.json, /docs); both spellings
of /mcp work; a chat completion reports the tokens the language model used. Real sockets on
loopback only (the language model is a fake OpenAI-compatible server in a thread)."""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_service_trust import ThreadServer

from conftest import MILP, golden_json


def read_banner(proc: subprocess.Popen[bytes], deadline: float) -> str:
    """What the server printed, up to the banner's last line (the one about the token)."""
    assert proc.stdout is not None
    text = ""
    while time.monotonic() < deadline and not re.search(r"token.*\n", text):
        ready, _, _ = select.select([proc.stdout], [], [], 0.2)
        if ready:
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            text += chunk.decode()
    return text


@pytest.mark.parametrize("token", ["", "s3cret"])
def test_serve_says_where_it_listens(tmp_path: Path, token: str) -> None:
    cmd = [sys.executable, "-m", "agent.cli", "serve", "--port", "0", "--no-cache"]
    cmd += ["--db", str(tmp_path / "s.sqlite")] + (["--token", token] if token else [])
    env = {**os.environ, "HOME": str(tmp_path)}
    env.pop("FORMALIST_TOKEN", None)
    proc = subprocess.Popen(
        cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        text = read_banner(proc, time.monotonic() + 60)
        found = re.search(r"listening on (http://127\.0\.0\.1:(\d+))", text)
        assert found, text
        base = found.group(1)
        assert f"{base}/v1" in text and f"{base}/mcp" in text and f"{base}/docs" in text
        assert "Traceback" not in text and "INFO" not in text
        auth = {"Authorization": f"Bearer {token}"} if token else {}
        if token:
            assert "needs 'Authorization: Bearer <token>'" in text and token not in text
            assert httpx.get(f"{base}/v1/models").status_code == 401
        else:
            assert "no token: every route is open" in text
        assert httpx.get(f"{base}/v1/models", headers=auth).status_code == 200
        # the printed MCP address works as printed (no trailing slash, no redirect)
        r = httpx.post(
            f"{base}/mcp",
            headers={**auth, "Accept": "application/json, text/event-stream"},
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            timeout=30,
        )
        assert r.status_code == 200 and "plan" in {t["name"] for t in r.json()["result"]["tools"]}
    finally:
        proc.terminate()
        proc.wait(15)


def test_serve_refuses_an_address_it_cannot_use(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = subprocess.run(
            [sys.executable, "-m", "agent.cli", "serve", "--port", str(port), "--no-cache"],
            cwd=tmp_path,
            env={**os.environ, "HOME": str(tmp_path)},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert r.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Any]:
    started: list[ThreadServer] = []

    def start(**kw: Any) -> ThreadServer:
        s = ThreadServer(tmp_path, **kw)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


def test_the_api_describes_itself(served: Any) -> None:
    srv = served(token="s3cret")
    schema = httpx.get(f"{srv.url}/openapi.json")  # open, like /health and /docs
    assert schema.status_code == 200
    doc = schema.json()
    paths = doc["paths"]
    for path, method in [
        ("/v1/solve", "post"),
        ("/v1/chat/completions", "post"),
        ("/v1/models", "get"),
        ("/v1/sessions/{session_id}", "get"),
        ("/v1/sessions/{session_id}/artifacts", "get"),
        ("/health", "get"),
    ]:
        assert method in paths[path], path
    solve = paths["/v1/solve"]["post"]
    ref = solve["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    body = doc["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert body["required"] == ["request"]
    props = body["properties"]
    assert {"request", "kind", "domain", "apis", "given", "optimal", "trace"} <= set(props)
    assert "routing" in props["kind"]["enum"] and props["request"]["description"]
    answer = solve["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert "verified" in doc["components"]["schemas"][answer.rsplit("/", 1)[1]]["properties"]
    assert "413" in solve["responses"] and "401" in solve["responses"]
    chat = paths["/v1/chat/completions"]["post"]
    assert any(p["name"].lower() == "x-session-id" for p in chat["parameters"])
    completion = chat["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert "usage" in doc["components"]["schemas"][completion.rsplit("/", 1)[1]]["properties"]
    assert "/mcp" in doc["info"]["description"]
    docs = httpx.get(f"{srv.url}/docs")
    assert docs.status_code == 200 and "/openapi.json" in docs.text
    # the schema's own example is a request the server solves
    example = body["examples"][0]
    ok = httpx.post(
        f"{srv.url}/v1/solve",
        json={"request": (MILP / "knapsack.json").read_text()},
        headers={"Authorization": "Bearer s3cret"},
        timeout=60,
    )
    assert ok.status_code == 200 and ok.json()["objective"] == 15 and example["request"]


class _FakeOpenAI(ThreadingHTTPServer):
    reply: str
    calls: int


class _Handler(BaseHTTPRequestHandler):
    server: _FakeOpenAI

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.calls += 1
        payload = json.dumps(
            {
                "id": "cmpl-1",
                "object": "chat.completion",
                "created": 0,
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": self.server.reply},
                    }
                ],
                "usage": {"prompt_tokens": 321, "completion_tokens": 54, "total_tokens": 375},
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def fake_openai() -> Iterator[_FakeOpenAI]:
    srv = _FakeOpenAI(("127.0.0.1", 0), _Handler)
    srv.reply = "```json\n" + json.dumps(golden_json("knapsack.json")) + "\n```"
    srv.calls = 0
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def test_usage_reports_the_models_tokens(served: Any, fake_openai: _FakeOpenAI) -> None:
    url = f"http://127.0.0.1:{fake_openai.server_address[1]}/v1"
    srv = served(model="openai:qwen2.5-7b-instruct", base_url=url)
    words = {"role": "user", "content": "Pack the most valuable boxes into a 15 kg bag."}
    r = httpx.post(f"{srv.url}/v1/chat/completions", json={"messages": [words]}, timeout=60)
    assert r.status_code == 200, r.text
    calls = fake_openai.calls
    assert calls >= 1 and r.json()["formalist"]["status"] == "OPTIMAL"
    assert r.json()["usage"] == {
        "prompt_tokens": 321 * calls,
        "completion_tokens": 54 * calls,
        "total_tokens": 375 * calls,
    }
    # streamed with stream_options.include_usage: a last chunk with no choices carries them
    r = httpx.post(
        f"{srv.url}/v1/chat/completions",
        json={"messages": [words], "stream": True, "stream_options": {"include_usage": True}},
        timeout=60,
    )
    events = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: {")]
    last = events[-1]
    more = fake_openai.calls - calls
    assert last["choices"] == [] and last["usage"]["total_tokens"] == 375 * more
    # a formal model needs no language model: nothing was used
    formal = {"role": "user", "content": (MILP / "knapsack.json").read_text()}
    r = httpx.post(f"{srv.url}/v1/chat/completions", json={"messages": [formal]}, timeout=60)
    assert r.json()["usage"] == {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}


def test_the_openai_sdk_reads_usage_and_the_session_header(
    served: Any, fake_openai: _FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    from openai import OpenAI

    # One call a turn: the knapsack's numbers are not the request's; the service has no
    # grounding option, so report (not repair) is pinned here.
    monkeypatch.setattr("agent.agent.DEFAULT_GROUNDING", "report")

    url = f"http://127.0.0.1:{fake_openai.server_address[1]}/v1"
    srv = served(model="openai:qwen2.5-7b-instruct", base_url=url)
    client = OpenAI(base_url=f"{srv.url}/v1", api_key="unused")
    raw = client.chat.completions.with_raw_response.create(
        model="formalist",
        messages=[{"role": "user", "content": "Pack the most valuable boxes into a 15 kg bag."}],
    )
    completion = raw.parse()
    assert completion.usage is not None and completion.usage.prompt_tokens == 321
    sid = raw.headers["x-session-id"]
    follow = client.chat.completions.create(
        model="formalist",
        messages=[{"role": "user", "content": "now make the bag hold 16 kg"}],
        extra_headers={"X-Session-Id": sid},
    )
    assert follow.choices[0].message.content
    assert len(srv.store.turns(sid)) == 2
