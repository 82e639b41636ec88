"""The grammar of the tool maker's reply (``tool_maker.grammar``): both grammar engines accept the
reply format ``parse_reply`` reads and refuse what a small model writes instead; ``ToolMaker`` sends
it with every call; a local model sampling under it always writes a readable reply."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent.llm.chat import Message, Reply
from agent.llm.client import cut_off_error
from agent.llm.grammar import Grammar
from conftest import engine_accepts
from tool_maker.grammar import maker_grammar, parse_reply
from tool_maker.maker import REDRAW_TEMPERATURE, TaskSpec, ToolMaker
from tool_maker.sandbox import Sandbox
from tool_maker.tool import Example

pytest.importorskip("xgrammar")
pytest.importorskip("llguidance")

CODE = 'def f(a: int, b: list) -> dict:\n    """a and b."""\n    return {"a": a, "b": b}\n'


def reply(calls: list[list[Any]], code: str = CODE, function: str = "f") -> str:
    meta = {"function": function, "calls": [{"args": c, "kwargs": {}} for c in calls]}
    return f"```python\n{code}```\n\n```json\n{json.dumps(meta)}\n```"


@pytest.fixture(scope="module")
def engines(grammar_engines: dict[str, Any]) -> dict[str, Any]:
    return grammar_engines


def accepted(engines: dict[str, Any], grammar: Grammar, text: str) -> set[str]:
    """The engines that accept ``text`` then the stop token as a whole reply."""
    return {n for n in ("xgrammar", "llguidance") if engine_accepts(engines, n, grammar, text)}


BOTH = {"xgrammar", "llguidance"}
GOOD = reply([[1, [2.5, "x"]], [-2, {"k": [1, 2e-3], "s": 'a "q"'}]])


@pytest.mark.parametrize(
    ("text", "engines_ok"),
    [
        (GOOD, BOTH),
        # one call for two questions; three for two
        (reply([[1, [2]]]), set()),
        (reply([[1, [2]], [2, []], [3, []]]), set()),
        # prose before the blocks, a bare JSON reply, a third block
        ("Here is the tool.\n\n" + GOOD, set()),
        (json.dumps({"function": "f", "calls": [[1], [2]]}), set()),
        (GOOD + "\n\n```python\nprint(1)\n```", set()),
        # a backtick inside the code would end its block early
        (reply([[1, []], [2, []]], code="x = '`'\n"), set()),
        # keyword arguments are not part of the format (arguments go by position)
        (GOOD.replace('"kwargs": {}}', '"kwargs": {"a": 1}}', 1), set()),
    ],
)
def test_the_engines_accept_exactly_the_reply_format(
    engines: dict[str, Any], text: str, engines_ok: set[str]
) -> None:
    assert accepted(engines, maker_grammar(2), text) == engines_ok
    if engines_ok:
        code, meta = maker_grammar(2).validate(text)
        assert code == CODE and len(meta["calls"]) == 2


def test_values_nest_only_as_deep_as_the_grammar_allows(engines: dict[str, Any]) -> None:
    deep: Any = 1
    for _ in range(5):
        deep = [deep]
    assert accepted(engines, maker_grammar(1, depth=5), reply([[deep]])) == BOTH
    assert accepted(engines, maker_grammar(1, depth=4), reply([[deep]])) == set()


class RecordingChat:
    """A maker model that answers from a list and keeps the grammar each call was sent with."""

    model_id = "test:recording"

    def __init__(self, *replies: str) -> None:
        self.replies = list(replies)
        self.outputs: list[Any] = []
        self.temperatures: list[float] = []

    def complete(self, messages: list[Message], output: Any = None) -> Reply:
        self.outputs.append(output)
        return Reply(self.replies.pop(0), self.model_id)

    def complete_n(self, messages: list[Message], n: int, temperature: float, seed: int = 0,
                   output: Any = None, greedy: int = 0) -> list[Reply]:  # fmt: skip
        self.temperatures.append(temperature)
        return [self.complete(messages, output) for _ in range(n)]


DOUBLE = 'def double(x: int) -> int:\n    """Twice x."""\n    return 2 * x\n'


def test_the_maker_sends_its_reply_grammar_with_one_call_per_question(tmp_path: Path) -> None:
    task = TaskSpec(
        "doubling",
        "twice a number",
        tuple(Example(f"twice {i}?", 2 * i) for i in (1, 2, 3)),
        tuple(Example(f"twice {i}?", 2 * i) for i in (4, 5)),
    )
    wrong = reply([[1], [2], [3], [4], [6]], DOUBLE, "double")  # misreads the last question
    right = reply([[1], [2], [3], [4], [5]], DOUBLE, "double")
    chat = RecordingChat(wrong, right)
    tool = ToolMaker(chat, Sandbox(), max_attempts=2).make(task)
    assert tool.function == "double" and tool.evidence["attempts"] == 2
    assert chat.outputs == [maker_grammar(5), maker_grammar(5)]
    assert maker_grammar(5).validator is parse_reply


def test_a_local_model_under_the_grammar_always_writes_a_readable_reply(tmp_path: Path) -> None:
    """A tiny random-weight model writes nonsense, but in the reply's shape: two blocks that
    ``parse_reply`` reads, with exactly one call per question."""
    from agent.llm.local.sampling import SamplingParams
    from agent.llm.local.testing import tiny_engine

    grammar = maker_grammar(
        3, depth=1, max_items=2, max_string=4, max_args=2, max_lines=2, max_line=12
    )
    engine = tiny_engine(tmp_path)
    try:
        samples = engine.sample(
            "write a tool", grammar, SamplingParams(n=4, temperature=1.0, max_new_tokens=400)
        )
    finally:
        engine.close()
    for s in samples:
        code, meta = parse_reply(s.text)
        assert code.endswith("\n") and "`" not in code
        assert len(meta["calls"]) == 3
        assert all(set(c) == {"args", "kwargs"} and c["kwargs"] == {} for c in meta["calls"])


class CuttingChat(RecordingChat):
    """A maker model whose first reply runs out of its token budget (as a local model's does)."""

    def complete(self, messages: list[Message], output: Any = None) -> Reply:
        if not self.outputs:
            self.outputs.append(output)
            self.seen = messages
            raise cut_off_error(self.model_id, {"tokens": 9, "finish": "length"}, "```python\nde")
        self.fix = messages[-1]["content"]
        return super().complete(messages, output)


def test_a_cut_off_maker_reply_is_a_failed_attempt_with_its_reason() -> None:
    task = TaskSpec(
        "doubling",
        "twice a number",
        tuple(Example(f"twice {i}?", 2 * i) for i in (1, 2, 3)),
        (Example("twice 4?", 8),),
    )
    chat = CuttingChat(reply([[1], [2], [3], [4]], DOUBLE, "double"))
    maker = ToolMaker(chat, Sandbox(), max_attempts=2)
    tool = maker.make(task)
    assert tool.function == "double"
    first = maker.attempts[0]
    assert first.reply == "```python\nde" and "cut off by its token budget" in first.feedback
    assert "cut off by its token budget" in chat.fix


def test_a_failed_tool_sent_again_is_refused_as_a_repeat_and_later_replies_are_drawn() -> None:
    task = TaskSpec(
        "doubling",
        "twice a number",
        tuple(Example(f"twice {i}?", 2 * i) for i in (1, 2, 3)),
        (Example("twice 4?", 8),),
    )
    wrong = reply([[1], [2], [3], [5]], DOUBLE, "double")  # misreads the held-out question
    chat = RecordingChat(wrong, wrong, reply([[1], [2], [3], [4]], DOUBLE, "double"))
    maker = ToolMaker(chat, Sandbox(), max_attempts=3)
    assert maker.make(task).evidence["attempts"] == 3
    first, second, _ = maker.attempts
    assert "Q4 (held-out question)" in first.feedback
    assert "the same reply as attempt 1, which failed" in second.feedback
    assert second.outcomes == ()  # refused without running it again
    assert chat.temperatures == [REDRAW_TEMPERATURE, REDRAW_TEMPERATURE]  # the first is greedy
