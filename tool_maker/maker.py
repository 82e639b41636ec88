"""Making a tool (LATM's tool maker): a strong model writes a function from worked examples, the
sandbox checks it against those and against held-out questions, and failures go back to the model.

One attempt: the model replies with the function (a ``python`` block) and, for every question, the
arguments it reads from it (a ``json`` block), under the grammar of that reply
(``tool_maker.grammar.maker_grammar``: a local model cannot write anything else). The first reply
is greedy, later ones are drawn at ``REDRAW_TEMPERATURE`` (a greedy small model sent its failed
tool back word for word), and a reply identical to a failed one is refused as such without
running. The code passes the static check, then each call runs in a fresh sandboxed child and its
value is compared with the known answer; the held-out answers are never shown to the model. Any problem (no blocks, refused code, a wrong answer, an
exception) is written back as feedback, up to ``max_attempts`` attempts in all.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from agent.errors import ArtifactError, Diagnostic, InputError
from agent.llm.chat import Chat, Message
from tool_maker.grammar import maker_grammar, parse_reply
from tool_maker.prompts import render
from tool_maker.sandbox import Sandbox
from tool_maker.static_check import ALLOWED_IMPORTS, check_source
from tool_maker.tool import (
    CallOutcome,
    Example,
    Judge,
    Tool,
    ToolCall,
    functions_in,
    run_calls,
)


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """A kind of task: a name ("word sorting"), what it asks, the worked ``examples`` the maker
    sees with their answers, and the held-out ``tests`` whose answers it does not see. ``kind``:
    the problem kind of the artifact the tool returns (``""``: the tool returns the answer);
    ``sources``: where the examples came from (recorded with the tool); ``demo``: how a tool of
    another class is written (``tool_maker.prompts.demo``), shown in the maker's prompt only, never
    part of the tool's description."""

    name: str
    description: str
    examples: tuple[Example, ...]
    tests: tuple[Example, ...] = ()
    kind: str = ""
    sources: tuple[str, ...] = ()
    demo: str = ""

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise ValueError("a task needs a name")
        if not self.examples:
            raise ValueError("a task needs at least one worked example")

    @classmethod
    def from_examples(
        cls, name: str, description: str, examples: list[Example], shown: int = 3
    ) -> TaskSpec:
        """The first ``shown`` examples are worked examples, the rest held out (LATM: 3 and 3)."""
        return cls(name, description, tuple(examples[:shown]), tuple(examples[shown:]))


REDRAW_TEMPERATURE = 0.8
"""The temperature of the maker's replies after a failed one (the first is greedy)."""


class ToolNotMade(ArtifactError):
    """The maker model did not produce a tool that passes, within its attempts."""


@dataclass(frozen=True, slots=True)
class MakeAttempt:
    """One round with the maker model: its reply and what was wrong with it (empty: accepted)."""

    number: int
    reply: str
    feedback: str = ""
    outcomes: tuple[CallOutcome, ...] = field(default_factory=tuple)


def read_call(item: Any) -> tuple[list[Any], dict[str, Any]]:
    """``{"args": [...], "kwargs": {...}}`` or a bare list of arguments."""
    if isinstance(item, list):
        return item, {}
    if isinstance(item, dict):
        args, kwargs = item.get("args", []), item.get("kwargs", {}) or {}
        if not isinstance(args, list):
            args = [args]
        if not isinstance(kwargs, dict):
            raise ValueError('"kwargs" must be an object')
        return args, kwargs
    raise ValueError('a call is {"args": [...], "kwargs": {...}}')


def _numbered(examples: tuple[Example, ...], start: int, with_answers: bool) -> str:
    out = []
    for i, ex in enumerate(examples, start):
        text = f"Q{i}: {ex.question}"
        if with_answers:
            text += f"\nA{i}: {json.dumps(ex.answer, ensure_ascii=False)}"
        out.append(text)
    return "\n\n".join(out) or "(none)"


class ToolMaker:
    """Makes tools with ``client`` (the strong model), verifying them in ``sandbox``. ``judge``
    decides whether a value answers a question (default: ``same_answer`` with the known answer;
    a tool that builds artifacts is judged by what its artifact solves to)."""

    def __init__(
        self,
        client: Chat,
        sandbox: Sandbox,
        max_attempts: int = 3,
        judge: Judge | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.client = client
        self.sandbox = sandbox
        self.max_attempts = max_attempts
        self.judge = judge
        self.attempts: list[MakeAttempt] = []

    def messages(self, task: TaskSpec) -> list[Message]:
        system = render("maker_system", allowed=", ".join(sorted(ALLOWED_IMPORTS)))
        user = render(
            "maker_task",
            task=task.name,
            description=task.description,
            demo=f"\n{task.demo}\n" if task.demo else "",
            examples=_numbered(task.examples, 1, True),
            tests=_numbered(task.tests, len(task.examples) + 1, False),
        )
        return [{"role": "system", "content": system}, {"role": "user", "content": user}]

    def make(self, task: TaskSpec) -> Tool:
        """A tool for ``task`` that passes every worked example and held-out test.

        Raises ``ToolNotMade`` (with the last feedback) after ``max_attempts`` failed attempts.
        """
        if not task.tests:
            raise InputError(
                f"task {task.name!r} has no held-out questions: a tool is verified on questions "
                "its maker did not see answered, so give at least one beyond the worked examples"
            )
        self.attempts = []
        messages = self.messages(task)
        grammar = maker_grammar(len(task.examples) + len(task.tests))
        feedback = ""
        failed: dict[str, int] = {}  # a failed reply -> the attempt that first sent it
        for number in range(1, self.max_attempts + 1):
            reply = ""
            try:
                if failed:  # after a failure, not greedily: a greedy model may send it again
                    drawn = self.client.complete_n(
                        messages, 1, REDRAW_TEMPERATURE, seed=number, output=grammar
                    )
                    reply = drawn[0].text
                else:
                    reply = self.client.complete(messages, grammar).text
                if reply in failed:
                    raise ArtifactError(
                        "repeat",
                        [
                            Diagnostic(
                                "reply",
                                f"the same reply as attempt {failed[reply]}, which failed",
                                "change the function or the calls as the feedback says",
                            )
                        ],
                    )
                tool, outcomes = self._check(task, reply)
            except ArtifactError as e:  # a failed check, or a reply cut off by its token budget
                reply = reply or str(getattr(e, "reply", "") or "")
                feedback = e.feedback()
                failed.setdefault(reply, number)
                self.attempts.append(MakeAttempt(number, reply, feedback))
                messages = [
                    *messages,
                    {"role": "assistant", "content": reply},
                    {"role": "user", "content": render("maker_fix", failures=feedback)},
                ]
                continue
            self.attempts.append(MakeAttempt(number, reply, "", tuple(outcomes)))
            return tool
        raise ToolNotMade(
            "verification",
            [Diagnostic("", feedback)],
            f"no tool for {task.name!r} passed its tests in {self.max_attempts} attempt(s)",
        )

    def _check(self, task: TaskSpec, reply: str) -> tuple[Tool, list[CallOutcome]]:
        code, meta = parse_reply(reply)
        found = check_source(code)
        if found:
            raise ArtifactError("unsafe", found, "the code was refused before running")
        funcs = functions_in(code)
        public = [f for f in funcs if not f.name.startswith("_")]
        wanted = meta.get("function")
        chosen = next((f for f in funcs if f.name == wanted), None) if wanted else None
        if chosen is None:
            if wanted:
                raise ArtifactError(
                    "symbol", [Diagnostic("json block", f"the code defines no function {wanted!r}")]
                )
            if not public:
                raise ArtifactError(
                    "symbol",
                    [Diagnostic("python block", "the code defines no public top-level function")],
                )
            chosen = public[-1]
        questions = [*task.examples, *task.tests]
        raw_calls = meta["calls"]
        if len(raw_calls) != len(questions):
            raise ArtifactError(
                "schema",
                [
                    Diagnostic(
                        "json block",
                        f"{len(raw_calls)} calls for {len(questions)} questions",
                        "give exactly one call per question, in order",
                    )
                ],
            )
        calls = []
        for i, (item, ex) in enumerate(zip(raw_calls, questions, strict=True), 1):
            try:
                args, kwargs = read_call(item)
            except ValueError as e:
                raise ArtifactError("schema", [Diagnostic(f"calls[{i - 1}] (Q{i})", str(e))]) from e
            calls.append(ToolCall(ex.question, args, kwargs, ex.answer))
        outcomes = run_calls(self.sandbox, code, chosen.name, calls, self.judge)
        failed = [(i, o) for i, o in enumerate(outcomes, 1) if not o.passed]
        if failed:
            n_shown = len(task.examples)
            diags = [
                Diagnostic(
                    f"Q{i} ({'worked example' if i <= n_shown else 'held-out question'})",
                    o.describe(),
                )
                for i, o in failed
            ]
            raise ArtifactError(
                "verification",
                diags,
                f"{len(failed)} of {len(outcomes)} questions got a wrong answer or an error",
            )
        n = len(task.examples)
        layers = sorted({layer for o in outcomes for layer in o.result.layers})
        tool = Tool(
            name=chosen.name,
            function=chosen.name,
            task=task.name,
            description=chosen.description or task.description,
            signature=chosen.signature,
            code=code,
            demos=tuple(calls[:n]),
            tests=tuple(calls[n:]),
            maker_model=self.client.model_id,
            kind=task.kind,
            sources=task.sources,
            evidence={
                "attempts": len(self.attempts) + 1,
                "worked_examples_passed": n,
                "held_out_tests_passed": len(calls) - n,
                "sandbox_layers": layers,
            },
        )
        return tool, outcomes
