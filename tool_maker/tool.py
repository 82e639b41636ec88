"""A tool: a Python function the maker model wrote, with the evidence that it works.

``Tool`` is stored as JSON text (never pickled). ``ToolCall`` is one question turned into the
function's arguments, with the answer it must give. ``run_calls`` runs calls in the sandbox (a
fresh child each) and says which gave the right answer; ``same_answer`` is that comparison.
"""

from __future__ import annotations

import ast
import math
import time
from collections.abc import Callable
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
    """One call run in the sandbox: the call, what came back, and whether it was the answer.
    ``problem``: why a value that came back is not the answer, when a judge other than
    ``same_answer`` said so (an artifact that solves to another objective)."""

    call: ToolCall
    result: SandboxResult
    passed: bool
    problem: str = ""

    def describe(self) -> str:
        if self.passed:
            return "passed"
        if self.problem:
            return self.problem
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
    ``kind``: for a tool that builds an artifact from a request, the problem kind of what it
    returns (``milp``, ``routing``, ``pddl``, ``asp``, ``apis``); ``""`` for a tool that returns
    an answer itself. ``sources``: the examples it was made from (file names or request ids).
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
    kind: str = ""
    sources: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """``name@vN``: the tool and version, as answers and traces name it."""
        return f"{self.name}@v{self.version}"

    def parameters(self) -> dict[str, Any]:
        """The JSON schema of the function's keyword arguments (``argument_schema``)."""
        return argument_schema(self.code, self.function)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["demos"] = [c.to_json() for c in self.demos]
        d["tests"] = [c.to_json() for c in self.tests]
        d["sources"] = list(self.sources)
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
            kind=str(d.get("kind", "")),
            sources=tuple(str(x) for x in d.get("sources", [])),
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


Judge = Callable[[ToolCall, Any], str]
"""Whether a tool's value answers a call: ``""`` when it does, else what is wrong, in words."""


def run_calls(
    sandbox: Sandbox,
    code: str,
    function: str,
    calls: list[ToolCall],
    judge: Judge | None = None,
) -> list[CallOutcome]:
    """Run every call in its own sandboxed child and judge each value: by ``judge`` when given
    (an artifact is judged by what it solves to), else by ``same_answer`` with the call's answer."""
    out = []
    for call in calls:
        r = sandbox.run(code, function, call.args, call.kwargs)
        if not r.ok:
            out.append(CallOutcome(call, r, False))
        elif judge is not None:
            problem = judge(call, r.value)
            out.append(CallOutcome(call, r, not problem, problem))
        else:
            out.append(CallOutcome(call, r, same_answer(r.value, call.answer)))
    return out


_JSON_TYPES: dict[str, dict[str, Any]] = {
    "int": {"type": "integer"},
    "float": {"type": "number"},
    "str": {"type": "string"},
    "bool": {"type": "boolean"},
    "None": {"type": "null"},
    "Any": {},
    "object": {},
}


def annotation_schema(node: ast.expr | None) -> dict[str, Any]:
    """The JSON schema of a parameter's annotation (``int``, ``list[float]``, ``dict[str, int]``,
    ``list[list[float]]``, ``tuple[int, ...]``, ``int | None``, ``Optional[str]``...); ``{}`` (any
    JSON value) for an annotation it does not know or none."""
    if node is None:
        return {}
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        try:
            return annotation_schema(ast.parse(node.value, mode="eval").body)
        except SyntaxError:
            return {}
    if isinstance(node, ast.Constant) and node.value is None:
        return {"type": "null"}
    if isinstance(node, ast.Name | ast.Attribute):
        name = node.id if isinstance(node, ast.Name) else node.attr
        if name in ("list", "List", "Sequence", "tuple", "Tuple"):
            return {"type": "array"}
        if name in ("dict", "Dict", "Mapping"):
            return {"type": "object"}
        return dict(_JSON_TYPES.get(name, {}))
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _any_of([annotation_schema(node.left), annotation_schema(node.right)])
    if isinstance(node, ast.Subscript):
        base = (
            node.value.id if isinstance(node.value, ast.Name) else getattr(node.value, "attr", "")
        )
        inner = node.slice
        items = list(inner.elts) if isinstance(inner, ast.Tuple) else [inner]
        if base in ("list", "List", "Sequence", "set", "Set"):
            return {"type": "array", "items": annotation_schema(items[0])}
        if base in ("tuple", "Tuple"):
            if len(items) == 2 and isinstance(items[1], ast.Constant) and items[1].value is ...:
                return {"type": "array", "items": annotation_schema(items[0])}
            return {
                "type": "array",
                "prefixItems": [annotation_schema(i) for i in items],
                "minItems": len(items),
                "maxItems": len(items),
            }
        if base in ("dict", "Dict", "Mapping"):
            values = annotation_schema(items[1]) if len(items) == 2 else {}
            return {"type": "object", "additionalProperties": values}
        if base == "Optional":
            return _any_of([annotation_schema(items[0]), {"type": "null"}])
        if base == "Union":
            return _any_of([annotation_schema(i) for i in items])
    return {}


def _any_of(options: list[dict[str, Any]]) -> dict[str, Any]:
    if any(not o for o in options):
        return {}
    return {"anyOf": options}


def argument_schema(code: str, function: str) -> dict[str, Any]:
    """The JSON schema of ``function``'s arguments in ``code``, by name: an object with one
    property per parameter (from its annotation, see ``annotation_schema``), those without a
    default required, no others allowed. ``*args``/``**kwargs`` are left out (a call fills the
    named parameters). ``ValueError`` when ``code`` does not parse or has no such function."""
    try:
        tree = ast.parse(code)
    except SyntaxError as e:
        raise ValueError(f"the tool's code does not parse: {e}") from e
    node = next(
        (n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == function), None
    )
    if node is None:
        raise ValueError(f"the tool's code defines no function {function!r}")
    a = node.args
    positional = [*a.posonlyargs, *a.args]
    n_required = len(positional) - len(a.defaults)
    props: dict[str, Any] = {}
    required: list[str] = []
    for i, arg in enumerate(positional):
        props[arg.arg] = annotation_schema(arg.annotation)
        if i < n_required:
            required.append(arg.arg)
    for arg, default in zip(a.kwonlyargs, a.kw_defaults, strict=True):
        props[arg.arg] = annotation_schema(arg.annotation)
        if default is None:
            required.append(arg.arg)
    return {
        "type": "object",
        "properties": props,
        "required": required,
        "additionalProperties": False,
    }


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
