"""A tool: a Python function the maker model wrote, with the evidence that it works.

``Tool`` is stored as JSON text (never pickled). ``ToolCall`` is one question turned into the
function's arguments, with the answer it must give. ``run_calls`` runs calls in the sandbox (a
fresh child each) and says which gave the right answer; ``same_answer`` is that comparison.
"""

from __future__ import annotations

import ast
import math
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from tool_maker.sandbox import Sandbox, SandboxResult


@dataclass(frozen=True, slots=True)
class Example:
    """A worked example of a kind of task: a question in words and its known answer (JSON)."""

    question: str
    answer: Any


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A question turned into a call: ``function(*args, **kwargs)`` should return ``answer``."""

    question: str
    args: list[Any]
    kwargs: dict[str, Any] = field(default_factory=dict)
    answer: Any = None

    def to_json(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "args": self.args,
            "kwargs": self.kwargs,
            "answer": self.answer,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ToolCall:
        return cls(
            str(d["question"]), list(d.get("args", [])), dict(d.get("kwargs", {})), d.get("answer")
        )


@dataclass(frozen=True, slots=True)
class CallOutcome:
    """One call run in the sandbox: the call, what came back, and whether it was the answer."""

    call: ToolCall
    result: SandboxResult
    passed: bool

    def describe(self) -> str:
        if self.passed:
            return "passed"
        if self.result.ok:
            return f"returned {_short(self.result.value)}; the answer is {_short(self.call.answer)}"
        return self.result.describe()


@dataclass(frozen=True, slots=True)
class Tool:
    """A verified tool.

    ``name``: the cache key (usually the function's name). ``function``: the entry point in
    ``code``. ``task``: the kind of task it solves, in words. ``signature``: ``name(params) -> ret``
    as written. ``demos``: one worked call per example the maker saw (shown to the tool user).
    ``tests``: held-out calls it passed. ``evidence``: how it was verified (attempts, tests passed,
    the sandbox layers in force). ``version``: 1 for a new name, then one more per accepted change.
    """

    name: str
    function: str
    task: str
    description: str
    signature: str
    code: str
    demos: tuple[ToolCall, ...]
    tests: tuple[ToolCall, ...]
    maker_model: str
    evidence: dict[str, Any] = field(default_factory=dict)
    version: int = 1
    created: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["demos"] = [c.to_json() for c in self.demos]
        d["tests"] = [c.to_json() for c in self.tests]
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Tool:
        return cls(
            name=str(d["name"]),
            function=str(d["function"]),
            task=str(d.get("task", "")),
            description=str(d.get("description", "")),
            signature=str(d.get("signature", "")),
            code=str(d["code"]),
            demos=tuple(ToolCall.from_json(c) for c in d.get("demos", [])),
            tests=tuple(ToolCall.from_json(c) for c in d.get("tests", [])),
            maker_model=str(d.get("maker_model", "")),
            evidence=dict(d.get("evidence", {})),
            version=int(d.get("version", 1)),
            created=float(d.get("created", 0.0)),
        )

    def with_version(self, version: int) -> Tool:
        return replace(self, version=version)


def same_answer(got: Any, expected: Any) -> bool:
    """Whether a tool's value is the expected answer.

    Numbers compare with a relative tolerance of 1e-9 (and ``"42"`` equals ``42``); strings
    compare with runs of white space collapsed and case ignored; lists and dicts element by element.
    """
    if isinstance(got, bool) or isinstance(expected, bool):
        return got is expected or (str(got).lower() == str(expected).lower())
    if isinstance(expected, (int, float)) and isinstance(got, str):
        got = _number(got)
    if isinstance(got, (int, float)) and isinstance(expected, str):
        expected = _number(expected)
    if isinstance(got, (int, float)) and isinstance(expected, (int, float)):
        return math.isclose(got, expected, rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(got, str) and isinstance(expected, str):
        return " ".join(got.split()).casefold() == " ".join(expected.split()).casefold()
    if isinstance(got, list) and isinstance(expected, list):
        return len(got) == len(expected) and all(map(same_answer, got, expected))
    if isinstance(got, dict) and isinstance(expected, dict):
        return got.keys() == expected.keys() and all(same_answer(got[k], expected[k]) for k in got)
    return bool(got == expected)


def _number(text: str) -> Any:
    try:
        return float(text.strip())
    except ValueError:
        return text


def _short(value: Any, n: int = 300) -> str:
    import json

    try:
        s = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        s = repr(value)
    return s if len(s) <= n else s[: n - 3] + "..."


def run_calls(
    sandbox: Sandbox, code: str, function: str, calls: list[ToolCall]
) -> list[CallOutcome]:
    """Run every call in its own sandboxed child and compare each value with its answer."""
    out = []
    for call in calls:
        r = sandbox.run(code, function, call.args, call.kwargs)
        out.append(CallOutcome(call, r, r.ok and same_answer(r.value, call.answer)))
    return out


@dataclass(frozen=True, slots=True)
class FunctionInfo:
    name: str
    signature: str
    description: str


def functions_in(code: str) -> list[FunctionInfo]:
    """The top-level functions of ``code`` (which must parse): name, signature, docstring."""
    tree = ast.parse(code)
    out = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            ret = f" -> {ast.unparse(node.returns)}" if node.returns else ""
            doc = (ast.get_docstring(node) or "").strip().split("\n\n")[0]
            out.append(
                FunctionInfo(
                    node.name, f"{node.name}({ast.unparse(node.args)}){ret}", " ".join(doc.split())
                )
            )
    return out
