"""The openai: provider end to end against an OpenAI-compatible server on loopback (the way vLLM,
SGLang or llama.cpp are used), with the reply cache on."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from agent.agent import Agent
from agent.config import Config
from conftest import golden_json
from solvers.base import Status


class _Server(ThreadingHTTPServer):
    replies: list[str]
    requests: list[dict]


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append(
            {"path": self.path, "auth": self.headers.get("Authorization"), "body": body}
        )
        content = self.server.replies[min(len(self.server.requests), len(self.server.replies)) - 1]
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
                        "message": {"role": "assistant", "content": content},
                    }
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
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
def server() -> Iterator[_Server]:
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.replies = [
        "Here is the model:\n```json\n" + json.dumps(golden_json("knapsack.json")) + "\n```"
    ]
    srv.requests = []
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def test_openai_compatible_server_with_cache(server: _Server, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    cfg = Config(
        model="openai:qwen2.5-7b-instruct", base_url=url, cache=str(tmp_path / "cache.sqlite")
    )
    request = "Pack the most valuable boxes into a 15 kg bag."
    first = Agent(config=cfg).solve(request)
    assert first.status is Status.OPTIMAL and first.objective == 15.0 and first.verified
    assert len(server.requests) == 1
    sent = server.requests[0]
    assert sent["path"] == "/v1/chat/completions" and sent["body"]["model"] == "qwen2.5-7b-instruct"
    assert sent["body"]["messages"][0]["role"] == "system"
    assert sent["body"]["messages"][-1]["content"].endswith(
        "Reply with the five-element model as one JSON object."
    )
    # The same request again is answered from the disk cache: the server sees nothing new.
    second = Agent(config=cfg).solve(request)
    assert second.objective == 15.0 and len(server.requests) == 1


def test_server_down_is_our_side_not_the_model(tmp_path: Path) -> None:
    from agent.errors import StopError

    cfg = Config(model="openai:m", base_url="http://127.0.0.1:9/v1", cache="", request_timeout=2)
    with pytest.raises(StopError, match="language model openai:m failed"):
        Agent(config=cfg).solve("Pack the most valuable boxes into a 15 kg bag.")
