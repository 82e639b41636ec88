"""The openai: and ollama: providers end to end against servers on loopback (the way vLLM, SGLang,
llama.cpp or Ollama are used), with the reply cache on: the server records each request it receives
and replies from a script, so the tests see exactly what a call sends (its structured output) and
what the ``Reply`` says back."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from agent.agent import Agent
from agent.config import Config
from agent.errors import ArtifactError
from agent.llm.client import ChatClient
from agent.llm.grammar import Grammar
from agent.types import Request
from conftest import golden_json
from formalizers.milp.grammar import five_element_grammar_for
from solvers.base import Status


class _Server(ThreadingHTTPServer):
    replies: list[str]
    requests: list[dict]
    finish: str = "stop"
    usage: tuple[int, int] = (1, 1)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append(
            {"path": self.path, "auth": self.headers.get("Authorization"), "body": body}
        )
        content = self.server.replies[min(len(self.server.requests), len(self.server.replies)) - 1]
        prompt, completion = self.server.usage
        if self.path == "/api/chat":  # Ollama's API: one JSON object per line
            self._send(
                json.dumps(
                    {
                        "model": body["model"],
                        "created_at": "2026-01-01T00:00:00Z",
                        "message": {"role": "assistant", "content": content},
                        "done": True,
                        "done_reason": self.server.finish,
                        "prompt_eval_count": prompt,
                        "eval_count": completion,
                    }
                ).encode()
                + b"\n",
                "application/x-ndjson",
            )
            return
        payload = json.dumps(
            {
                "id": "cmpl-1",
                "object": "chat.completion",
                "created": 0,
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": self.server.finish,
                        "message": {"role": "assistant", "content": content},
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt,
                    "completion_tokens": completion,
                    "total_tokens": prompt + completion,
                },
            }
        ).encode()
        self._send(payload, "application/json")

    def _send(self, payload: bytes, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
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
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def test_openai_compatible_server_with_cache(server: _Server, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    cfg = Config(
        model="openai:qwen2.5-7b-instruct", base_url=url, cache=str(tmp_path / "cache.sqlite")
    )
    # The knapsack's numbers are not the request's: reported, not repaired (one call).
    request = Request(
        "Pack the most valuable boxes into a 15 kg bag.", extra={"grounding": "report"}
    )
    first = Agent(config=cfg).solve(request)
    assert first.status is Status.OPTIMAL and first.objective == 15.0 and first.verified
    assert len(server.requests) == 1
    sent = server.requests[0]
    assert sent["path"] == "/v1/chat/completions" and sent["body"]["model"] == "qwen2.5-7b-instruct"
    assert sent["body"]["messages"][0]["role"] == "system"
    assert sent["body"]["messages"][-1]["content"].endswith(
        "Reply with the five-element model as one JSON object."
    )
    # The formalizer's grammar goes as structured output: the five-element model's JSON schema.
    grammar = five_element_grammar_for(request.text)  # its lists bounded by the request
    assert sent["body"]["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": grammar.name, "schema": grammar.schema, "strict": False},
    }
    assert first.trace[0].model_id == "openai:qwen2.5-7b-instruct"
    # The same request again is answered from the disk cache: the server sees nothing new.
    second = Agent(config=cfg).solve(request)
    assert second.objective == 15.0 and len(server.requests) == 1


def test_server_down_is_our_side_not_the_model(tmp_path: Path) -> None:
    from agent.errors import StopError

    cfg = Config(model="openai:m", base_url="http://127.0.0.1:9/v1", cache="", request_timeout=2)
    with pytest.raises(StopError, match="language model openai:m failed"):
        Agent(config=cfg).solve("Pack the most valuable boxes into a 15 kg bag.")


def _url(server: _Server) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


TOOL_SCHEMA = {
    "type": "object",
    "properties": {"hours": {"type": "integer"}},
    "required": ["hours"],
}
EBNF = Grammar("yes-no", "ebnf", 'root ::= "yes" | "no"', "answer")
MESSAGES = [{"role": "user", "content": "How many hours?"}]


def test_a_json_schema_grammar_is_sent_as_response_format(server: _Server, tmp_path: Path) -> None:
    """A call with a JSON-schema grammar sends it as the request's ``response_format`` (name,
    schema, not strict); a free-text call and an EBNF grammar's call send none; the reply says
    which grammar was asked, whether the server was held to it, and what the server reported."""
    server.replies = ['{"hours": 3}']
    server.usage = (12, 5)
    client = ChatClient.from_spec(
        "openai:m", base_url=f"{_url(server)}/v1", cache_path=str(tmp_path / "c.sqlite")
    )
    grammar = Grammar.json_schema(TOOL_SCHEMA, "tool arguments")
    reply = client.complete(MESSAGES, grammar)
    sent = server.requests[-1]["body"]
    assert sent["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "tool_arguments", "schema": TOOL_SCHEMA, "strict": False},
    }
    assert reply.text == '{"hours": 3}' and reply.model == "openai:m"
    assert reply.grammar_id == grammar.id and reply.constrained
    assert (reply.finish, reply.cut_off, reply.cached) == ("stop", False, False)
    assert (reply.prompt_tokens, reply.completion_tokens) == (12, 5) and reply.seconds > 0

    free = client.complete(MESSAGES)
    assert "response_format" not in server.requests[-1]["body"]
    assert (free.grammar_id, free.constrained) == ("", False)
    # EBNF cannot be sent to an OpenAI-compatible server portably: asked unconstrained, and said.
    ebnf = client.complete(MESSAGES, EBNF)
    assert "response_format" not in server.requests[-1]["body"]
    assert (ebnf.grammar_id, ebnf.constrained) == (EBNF.id, False)
    assert len(server.requests) == 3


def test_the_cache_key_includes_the_grammar(server: _Server, tmp_path: Path) -> None:
    """The same messages under another grammar (or none) are another request; the same grammar
    again, in a later run, is answered from the cache."""
    server.replies = ['{"hours": 3}']
    cache = str(tmp_path / "c.sqlite")
    url = f"{_url(server)}/v1"
    first = ChatClient.from_spec("openai:m", base_url=url, cache_path=cache)
    a = Grammar.json_schema(TOOL_SCHEMA, "arguments")
    b = Grammar.json_schema({**TOOL_SCHEMA, "additionalProperties": False}, "arguments")
    first.complete(MESSAGES, a)
    first.complete(MESSAGES, b)
    first.complete(MESSAGES)
    assert len(server.requests) == 3 and a.id != b.id
    later = ChatClient.from_spec("openai:m", base_url=url, cache_path=cache)
    again = later.complete(MESSAGES, b)
    assert len(server.requests) == 3 and later.cache_hits == 1
    assert again.cached and again.grammar_id == b.id and again.text == '{"hours": 3}'
    assert (again.prompt_tokens, again.completion_tokens, again.seconds) == (0, 0, 0.0)
    assert again.finish == "stop"  # what the server said when the reply was drawn


def test_a_reply_cut_off_by_the_server_is_named_and_not_cached(
    server: _Server, tmp_path: Path
) -> None:
    """``finish_reason: length``: the reply hit its token limit. ``complete`` raises the cut-off
    error (never cached); ``complete_n`` returns each sample marked cut off."""
    server.replies = ['{"hours": ']
    server.finish = "length"
    server.usage = (9, 7)
    cache = str(tmp_path / "c.sqlite")
    client = ChatClient.from_spec("openai:m", base_url=f"{_url(server)}/v1", cache_path=cache)
    with pytest.raises(ArtifactError) as caught:
        client.complete(MESSAGES)
    assert caught.value.kind == "cut_off" and caught.value.reply == '{"hours": '
    assert "after 7 tokens" in caught.value.feedback()
    samples = client.complete_n(MESSAGES, 2, 0.7, seed=4)
    assert [(r.cut_off, r.finish, r.completion_tokens) for r in samples] == [
        (True, "length", 7)
    ] * 2
    assert [r["body"]["seed"] for r in server.requests[1:]] == [4, 5]
    # Drawn again from the cache, the samples still say they were cut off.
    again = ChatClient.from_spec("openai:m", base_url=f"{_url(server)}/v1", cache_path=cache)
    cached = again.complete_n(MESSAGES, 2, 0.7, seed=4)
    assert len(server.requests) == 3 and all(r.cached and r.cut_off for r in cached)


def test_an_ollama_model_gets_the_schema_as_format(server: _Server) -> None:
    server.replies = ['{"hours": 3}']
    server.usage = (20, 4)
    client = ChatClient.from_spec("ollama:qwen2.5:7b", base_url=_url(server))
    grammar = Grammar.json_schema(TOOL_SCHEMA, "arguments")
    reply = client.complete(MESSAGES, grammar)
    sent = server.requests[-1]
    assert sent["path"] == "/api/chat" and sent["body"]["format"] == TOOL_SCHEMA
    assert reply.text == '{"hours": 3}' and reply.constrained and reply.finish == "stop"
    assert (reply.prompt_tokens, reply.completion_tokens) == (20, 4)
    client.complete(MESSAGES)
    assert not server.requests[-1]["body"].get("format")
    ebnf = client.complete(MESSAGES, EBNF)
    assert not server.requests[-1]["body"].get("format") and not ebnf.constrained
