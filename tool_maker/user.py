"""Using a tool (LATM's tool user): a cheaper model only turns a new question into a call.

The model sees the tool's signature, description and worked calls and replies with the arguments;
the sandbox runs the call and the value comes back as JSON. A call that fails (bad arguments, an
exception) goes back to the model once more with the error.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from agent.llm.chat import Chat, Message
from tool_maker.maker import read_call
from tool_maker.prompts import render
from tool_maker.sandbox import Sandbox, SandboxResult, SandboxStatus
from tool_maker.tool import Tool


@dataclass(frozen=True, slots=True)
class ToolAnswer:
    """The answer to one question: the tool and version used, the call, and the sandbox result.
    ``value`` is the tool's return value when ``ok``."""

    question: str
    tool: str
    version: int
    args: list[Any]
    kwargs: dict[str, Any]
    result: SandboxResult
    attempts: int

    @property
    def ok(self) -> bool:
        return self.result.ok

    @property
    def value(self) -> Any:
        return self.result.value

    def to_json(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "tool": self.tool,
            "version": self.version,
            "call": {"args": self.args, "kwargs": self.kwargs},
            "result": self.result.to_json(),
            "attempts": self.attempts,
        }


def _json_object(text: str) -> Any:
    """The first JSON value in ``text`` (inside a fenced block or bare)."""
    m = re.search(r"```(?:json)?\s*\n(.*?)```", text, re.DOTALL)
    body = m.group(1) if m else text
    start = min((i for i in (body.find("{"), body.find("[")) if i >= 0), default=-1)
    if start < 0:
        raise ValueError("no JSON object in the reply")
    value, _ = json.JSONDecoder().raw_decode(body[start:])
    return value


def user_messages(tool: Tool, question: str) -> list[Message]:
    demos = "\n\n".join(
        f"Question: {d.question}\nCall: {json.dumps({'args': d.args, 'kwargs': d.kwargs}, ensure_ascii=False)}\n"
        f"Returns: {json.dumps(d.answer, ensure_ascii=False)}"
        for d in tool.demos
    )
    system = render(
        "user_system", signature=tool.signature, description=tool.description, demos=demos
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": question}]


class ToolUser:
    """Answers questions with cached tools, the model (``client``) only writing the call."""

    def __init__(self, client: Chat, sandbox: Sandbox, max_attempts: int = 2) -> None:
        self.client = client
        self.sandbox = sandbox
        self.max_attempts = max(1, max_attempts)

    def answer(self, tool: Tool, question: str) -> ToolAnswer:
        messages = user_messages(tool, question)
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        result = SandboxResult(SandboxStatus.ERROR, error_type="NoCall", message="no call was made")
        for attempt in range(1, self.max_attempts + 1):
            reply = self.client.complete(messages).text
            try:
                args, kwargs = read_call(_json_object(reply))
            except ValueError as e:
                result = SandboxResult(SandboxStatus.ERROR, error_type="BadCall", message=str(e))
                problem = f'Your reply could not be read as a call: {e}. Reply with {{"args": [...], "kwargs": {{}}}}.'
            else:
                result = self.sandbox.run(tool.code, tool.function, args, kwargs)
                if result.ok:
                    return ToolAnswer(
                        question, tool.name, tool.version, args, kwargs, result, attempt
                    )
                problem = f"The call {result.describe()}. Fix the arguments and reply with the call again."
            messages = [
                *messages,
                {"role": "assistant", "content": reply},
                {"role": "user", "content": problem},
            ]
        return ToolAnswer(
            question, tool.name, tool.version, args, kwargs, result, self.max_attempts
        )
