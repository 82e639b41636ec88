"""Tools in the loop (LATM inside the agent): reuse a cached tool that builds a request's artifact,
and make such tools from solved examples.

For a request in words, ``solve_with_tools`` first asks the dispatcher whether a cached tool of the
request's kind fits: a TF-IDF pre-filter over each tool's task, description and worked requests
(``tool_maker.dispatcher``), then the model's yes or no for each candidate, best first. The reason
is kept on the answer (``Answer.tools``) whether a tool is picked or not.

A picked tool is used through ``ToolFormalizer``: the model fills the tool's arguments as JSON
under the schema read from the function's signature (``Tool.parameters``; the schema reaches the
model call as ``json_schema``, a grammar for a local model), the function runs in the sandbox and
returns the artifact (a five-element model, a routing spec, a PDDL problem, an ASP program, the
facts of an API request), which the kind reads as it reads a file. Then the usual validate, solve,
verify and repair. A tool that fails (no arguments, an exception, an artifact that does not read,
validate, solve or verify) is recorded against it in the cache and the request falls back to the
kind's own formalizer. The answer names the tool that built its artifact (``Answer.tool``).

Making a tool (``make_tool``; ``formalist tools make --examples DIR --model SPEC``): each example is
a request and its artifact; every artifact is solved and verified here first (its objective is the
example's answer), the maker model sees the first ``shown`` with their artifacts and writes a
function, which is accepted only when the artifacts it builds for all examples, the held-out ones
included, solve to the same verified answers (``artifact_judge``); otherwise the failures go back
to the model, a bounded number of times, and nothing is cached.

When the agent has solved and verified ``propose_after`` requests like the current one without a
tool, the answer proposes making one (it never makes one by itself).
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.errors import (
    ArtifactError,
    Diagnostic,
    FormalistError,
    InputError,
    ReplyTimedOut,
    StopError,
)
from agent.llm.chat import Message
from agent.llm.client import ChatClient
from agent.llm.grammar import Grammar
from agent.types import Answer, Request
from formalizers.base import Artifact, Feedback, Provenance

if TYPE_CHECKING:
    from agent.agent import Agent
    from agent.kinds import Kind, Options
    from tool_maker.cache import ToolCache
    from tool_maker.dispatcher import Candidate
    from tool_maker.sandbox import Sandbox
    from tool_maker.tool import Tool, ToolCall

ARTIFACT_FILE_NAMES = {
    "milp": "model.json",
    "routing": "routing.json",
    "pddl": "problem.pddl",
    "asp": "program.lp",
    "apis": "request.json",
}
"""The file name a tool's artifact is read under, by kind (as if it were a file of that format)."""

TOOL_KINDS = tuple(ARTIFACT_FILE_NAMES)

FIT_SCHEMA: dict[str, Any] = {"type": "string", "enum": ["yes", "no"]}
"""The dispatcher's question is answered under this schema: a JSON string, yes or no."""
FIT_GRAMMAR = Grammar.json_schema(FIT_SCHEMA, "fit")
"""``FIT_SCHEMA`` as the grammar each fit question is sent with."""


def tools_cache(agent: Agent) -> ToolCache:
    """The agent's tool cache: ``[tools] cache`` in the configuration, else ``FORMALIST_TOOLS_DB``,
    else ``db`` when it is a PostgreSQL URL, else ``~/.cache/formalist/tools.sqlite``."""
    from tool_maker.cache import ToolCache

    return ToolCache(agent.config.tools_db or None)


# -- the dispatcher -----------------------------------------------------------------------------


@dataclass(slots=True)
class Dispatch:
    """What the dispatcher decided: the ``tool`` (None: formalize directly) and why, with each
    candidate's similarity and the model's verdict."""

    tool: Tool | None
    reason: str
    candidates: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "chosen": self.tool.label if self.tool is not None else "",
            "reason": self.reason,
            "candidates": self.candidates,
        }


def fit_messages(tool: Tool, request: str) -> list[Message]:
    """The yes/no question for one candidate: the tool's task, what it does and requests it was
    made from, then the new request."""
    from tool_maker.prompts import render

    seen = "\n".join(f"- {d.question[:400]}" for d in tool.demos[:3]) or "(none)"
    return [
        {
            "role": "user",
            "content": render(
                "fit",
                tool=tool.name,
                task=tool.task,
                description=tool.description,
                kind=tool.kind,
                examples=seen,
                request=request,
            ),
        }
    ]


def said_yes(reply: str) -> bool:
    """Whether a reply to the yes/no question is yes (``"yes"`` as JSON, or a word that begins
    with yes)."""
    text = reply.strip().strip('"').strip().lower()
    return re.match(r"yes\b", text) is not None


def dispatch(
    request: str, kind: str, tools: list[Tool], client: ChatClient, settings: dict[str, Any]
) -> Dispatch:
    """Pick a tool for ``request`` among the cached ``tools`` (see the module doc)."""
    from tool_maker.dispatcher import Dispatcher

    fitting_kind = [t for t in tools if t.kind == kind]
    if not fitting_kind:
        return Dispatch(None, f"no cached tool builds {kind} artifacts")
    d = Dispatcher(None, int(settings["top_k"]), float(settings["min_score"]))
    cands: list[Candidate] = d.candidates(request, fitting_kind)
    if not cands:
        from tool_maker.dispatcher import rank

        best = rank(request, fitting_kind)[0]
        return Dispatch(
            None,
            f"no {kind} tool is like this request: the closest, {best.tool.label}, has similarity "
            f"{best.score:.2f}, under the threshold {d.min_score:.2f}",
            [{"tool": best.tool.label, "similarity": round(best.score, 4), "asked": False}],
        )
    listed: list[dict[str, Any]] = []
    for c in cands:
        reply = client.complete(fit_messages(c.tool, request), FIT_GRAMMAR).text
        yes = said_yes(reply)
        listed.append(
            {
                "tool": c.tool.label,
                "similarity": round(c.score, 4),
                "asked": True,
                "model_says": "yes" if yes else "no",
            }
        )
        if yes:
            return Dispatch(
                c.tool,
                f"{c.tool.label} ({c.tool.task}): similarity {c.score:.2f} and the model says it "
                "fits this request",
                listed,
            )
    names = ", ".join(f"{c.tool.label} ({c.score:.2f})" for c in cands)
    return Dispatch(
        None, f"the model says no candidate fits this request (asked about {names})", listed
    )


# -- using a tool -------------------------------------------------------------------------------


def named_arguments(tool: Tool, call: ToolCall) -> dict[str, Any]:
    """A worked call's arguments by parameter name (the maker may have written them by position)."""
    params = list(tool.parameters()["properties"])
    out = dict(zip(params, call.args, strict=False))
    out.update(call.kwargs)
    return out


def fill_messages(tool: Tool, request: str) -> list[Message]:
    """The conversation that asks the model for the tool's arguments for ``request``."""
    from tool_maker.prompts import render

    demos = "\n\n".join(
        f"Request: {d.question}\nArguments: {json.dumps(named_arguments(tool, d), ensure_ascii=False)}"
        for d in tool.demos
    )
    system = render(
        "fill_system",
        signature=tool.signature,
        description=tool.description,
        demos=demos or "(none)",
    )
    return [
        {"role": "system", "content": system},
        {"role": "user", "content": f"Request: {request}"},
    ]


def read_arguments(reply: str) -> dict[str, Any]:
    """The JSON object of arguments in a reply; ``ValueError`` when there is none."""
    from tool_maker.user import _json_object

    value = _json_object(reply)
    if not isinstance(value, dict):
        raise ValueError(f"the arguments must be a JSON object, not {type(value).__name__}")
    return value


def artifact_text(value: Any) -> str:
    """A tool's return value as the text of its artifact: a string as it is, JSON data as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


class ToolFailed(ArtifactError):
    """A tool gave no usable artifact: no arguments, an error in the sandbox, unreadable output."""


def build_artifact(
    tool: Tool, kind: Kind, args: dict[str, Any], sandbox: Sandbox, opts: Options
) -> Artifact:
    """Run ``tool`` on ``args`` in the sandbox and read what it returns as ``kind``'s artifact."""
    try:
        result = sandbox.run(tool.code, tool.function, [], args)
    except StopError as e:
        raise ToolFailed("tool", [Diagnostic(tool.label, f"the sandbox cannot run it: {e}")]) from e
    if not result.ok:
        raise ToolFailed("tool", [Diagnostic(tool.label, result.describe())])
    text = artifact_text(result.value)
    try:
        return kind.read(text, ARTIFACT_FILE_NAMES.get(kind.name, ""), opts)
    except ArtifactError as e:
        raise ToolFailed(
            "tool",
            [Diagnostic(tool.label, f"its artifact does not read as {kind.name}: {e.feedback()}")],
        ) from e
    except InputError as e:
        raise ToolFailed(
            "tool", [Diagnostic(tool.label, f"its artifact does not read as {kind.name}: {e}")]
        ) from e


class ToolFormalizer:
    """A formalizer that first builds the artifact with ``tool`` and falls back to ``direct``.

    The first attempt fills the tool's arguments and runs it; if that fails, the same attempt goes
    on with ``direct``. If the tool's artifact then fails to validate, solve or verify, the next
    attempt starts ``direct`` afresh (the feedback is about the tool's artifact, not one the model
    wrote). Every failure is recorded against the tool (``failures``; ``ToolsFlow`` stores them).
    """

    def __init__(
        self,
        tool: Tool,
        direct: Any,
        client: ChatClient,
        kind: Kind,
        sandbox: Sandbox,
        opts: Options,
    ) -> None:
        self.tool = tool
        self.direct = direct
        self.client = client
        self.kind_ = kind
        self.kind = kind.name
        self.sandbox = sandbox
        self.opts = opts
        self.tried = False
        self.built: Artifact | None = None
        """The artifact the tool built (None: it built none)."""
        self.pending = False
        """The last artifact handed out was the tool's, and its outcome is not known yet."""
        self.failures: list[str] = []
        self.arguments: dict[str, Any] | None = None
        self._direct_attempt = 0

    def formalize(
        self, request: str, feedback: Feedback | None = None, attempt: int = 1
    ) -> Artifact:
        if not self.tried:
            self.tried = True
            try:
                self.built = self._build(request, attempt)
                self.pending = True
                return self.built
            except ToolFailed as e:
                self.failures.append(e.feedback())
        elif self.pending:
            self.pending = False
            if feedback is not None:
                self.failures.append(f"its artifact failed ({feedback.kind}): {feedback.text}")
            feedback = None  # the direct formalizer starts afresh
        self._direct_attempt += 1
        return self.direct.formalize(request, feedback, self._direct_attempt)

    def vary(self, attempt: int) -> None:
        vary = getattr(self.direct, "vary", None)
        if vary is not None:
            vary(attempt)

    def _build(self, request: str, attempt: int) -> Artifact:
        t0 = time.perf_counter()
        try:
            grammar = Grammar.json_schema(self.tool.parameters(), "arguments")
        except ValueError as e:
            raise ToolFailed("tool", [Diagnostic(self.tool.label, str(e))]) from e
        try:
            reply = self.client.complete(fill_messages(self.tool, request), grammar).text
        except ArtifactError as e:  # a reply cut off by its budget
            raise ToolFailed("tool", [Diagnostic(self.tool.label, e.feedback())]) from e
        try:
            args = read_arguments(reply)
        except ValueError as e:
            raise ToolFailed(
                "tool", [Diagnostic(self.tool.label, f"the arguments do not read: {e}")]
            ) from e
        self.arguments = args
        artifact = build_artifact(self.tool, self.kind_, args, self.sandbox, self.opts)
        prov = Provenance(
            "tool",
            self.client.model_id,
            f"tool:{self.tool.label}",
            attempt,
            grammar_id=grammar.id,
            elapsed_s=time.perf_counter() - t0,
        )
        return Artifact(artifact.kind, artifact.language, artifact.model, artifact.text, prov)


# -- the flow -----------------------------------------------------------------------------------


def solve_with_tools(agent: Agent, req: Request, kind: Kind, client: ChatClient) -> Answer:
    """Solve a request in words through a fitting cached tool, or directly (see the module doc)."""
    try:
        cache = tools_cache(agent)
    except InputError as e:
        answer = agent._repair_loop(req, kind, client)
        answer.tools = {"chosen": "", "reason": f"the tool cache is unusable: {e}"}
        return answer
    try:
        return _solve(agent, req, kind, client, cache)
    finally:
        cache.close()


def _solve(agent: Agent, req: Request, kind: Kind, client: ChatClient, cache: ToolCache) -> Answer:
    from agent.agent import artifact_key

    settings = agent.config.tools
    opts = agent.options(req)
    note: dict[str, Any]
    try:
        tools = cache.latest() if kind.name in TOOL_KINDS else []
    except InputError as e:
        answer = agent._repair_loop(req, kind, client)
        answer.tools = {"chosen": "", "reason": f"the tool cache is unusable: {e}"}
        return answer
    decision = dispatch(req.text, kind.name, tools, client, settings)
    note = decision.to_json()
    if decision.tool is None:
        answer = agent._repair_loop(req, kind, client)
        answer.tools = note
        _after_direct(agent, cache, req, kind, answer, tools)
        return answer
    tool = decision.tool
    from tool_maker.layers import SandboxUnavailable
    from tool_maker.sandbox import Sandbox

    sandbox = Sandbox()
    try:
        sandbox.check_ready()
    except SandboxUnavailable as e:
        # This machine's fault, not the tool's: nothing is recorded against it.
        answer = agent._repair_loop(req, kind, client)
        note["chosen"] = ""
        note["reason"] += f"; not used, since the sandbox cannot run tools here: {e}"
        answer.tools = note
        _after_direct(agent, cache, req, kind, answer, tools)
        return answer
    flow = ToolFormalizer(tool, kind.formalizer(client, opts), client, kind, sandbox, opts)
    answer = agent._repair_loop(req, kind, client, flow)
    from_tool = flow.built is not None and artifact_key(answer.artifact) == artifact_key(
        flow.built.to_json()
    )
    if flow.arguments is not None:
        note["arguments"] = flow.arguments
    if from_tool:
        answer.tool = tool.label
        answer.explanation = (
            f"{answer.explanation}\nThe model was built by the cached tool {tool.label} "
            f"({tool.task}), its arguments read from the request by {client.model_id}."
        ).strip()
        ok = answer.verified and not answer.error
        _record(cache, note, tool, ok, "" if ok else _answer_problem(answer), req.text)
        if not ok:
            note["failure"] = _answer_problem(answer)
        answer.tools = note
    else:
        detail = "\n".join(flow.failures) or "its artifact was not the answer's"
        _record(cache, note, tool, False, detail, req.text)
        note["fallback"] = f"{tool.label} failed, so the request was formalized directly: {detail}"
        answer.tools = note
        _after_direct(agent, cache, req, kind, answer, tools)
    return answer


def _record(
    cache: ToolCache, note: dict[str, Any], tool: Tool, ok: bool, detail: str, request: str
) -> None:
    """Record a use of ``tool``; a cache that cannot be written (read-only, locked) is said in
    ``note`` rather than failing a request that was answered."""
    try:
        cache.record_use(tool, ok, detail, request)
    except InputError as e:
        note["record"] = f"the use was not recorded: {e}"


def _answer_problem(answer: Answer) -> str:
    if answer.error:
        return answer.error
    if not answer.verified:
        return f"the answer is {answer.status.value} and not verified"
    return ""


def _after_direct(
    agent: Agent, cache: ToolCache, req: Request, kind: Kind, answer: Answer, tools: list[Tool]
) -> None:
    """Keep a directly solved and verified request (``[tools] history``), and propose a tool when
    ``propose_after`` verified requests like it have been seen (``Answer.tools["proposal"]``)."""
    settings = agent.config.tools
    if not settings["history"] or not answer.verified or answer.error or answer.vote:
        return
    if kind.name not in TOOL_KINDS:
        return
    objective = answer.objective if isinstance(answer.objective, int | float) else None
    try:
        cache.note_verified(kind.name, req.text, answer.artifact, objective)
        seen = cache.verified_requests(kind.name)
    except InputError:
        return
    alike = similar_requests(req.text, [s["request"] for s in seen], settings["propose_similarity"])
    if len(alike) < int(settings["propose_after"]):
        return
    line = (
        f"{len(alike)} verified {kind.name} requests like this one have been solved without a "
        "tool; a tool could make the next ones easier: `formalist tools examples --kind "
        f"{kind.name} --like REQUEST_FILE --out DIR`, then `formalist tools make --examples DIR "
        "--model SPEC`"
    )
    if answer.tools is None:
        answer.tools = {}
    answer.tools["proposal"] = line
    answer.explanation = f"{answer.explanation}\nProposal: {line}".strip()


def similar_requests(request: str, others: list[str], threshold: float) -> list[int]:
    """The indexes of ``others`` whose TF-IDF cosine similarity to ``request`` (over ``others``
    and ``request`` together) reaches ``threshold``."""
    from collections import Counter

    from tool_maker.dispatcher import words

    docs = [Counter(words(t)) for t in [request, *others]]
    df: Counter[str] = Counter()
    for d in docs:
        df.update(d.keys())
    n = len(docs)
    idf = {w: math.log((1 + n) / (1 + c)) + 1.0 for w, c in df.items()}

    def vec(c: Counter[str]) -> dict[str, float]:
        return {w: (1 + math.log(k)) * idf[w] for w, k in c.items()}

    vs = [vec(d) for d in docs]
    norms = [math.sqrt(sum(x * x for x in v.values())) for v in vs]
    q, qn = vs[0], norms[0]
    out = []
    for i, (v, vn) in enumerate(zip(vs[1:], norms[1:], strict=True)):
        if qn and vn and sum(q[w] * v.get(w, 0.0) for w in q) / (qn * vn) >= threshold:
            out.append(i)
    return out


# -- making a tool ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SolvedExample:
    """A request with its artifact, solved and verified here: ``objective`` and ``status`` are what
    any artifact for it must solve to."""

    name: str
    request: str
    artifact: Any
    status: str
    objective: Any


def read_examples(folder: str | Path, agent: Agent) -> tuple[str, list[SolvedExample]]:
    """The solved examples in ``folder`` and their kind: each ``NAME.txt`` is a request and the
    other file named ``NAME.*`` its artifact (any formal input formalist reads). Every artifact is
    solved and must verify; ``InputError`` names each example that is missing, unreadable, not
    verified, or of another kind than the rest."""
    from agent.agent import Agent, read_text_file

    root = Path(folder).expanduser()
    if not root.is_dir():
        raise InputError(f"{root} is not a folder of examples (NAME.txt and NAME.json pairs)")
    solver = Agent(config=agent.config.with_overrides(model=""))
    examples: list[SolvedExample] = []
    problems: list[str] = []
    kinds: set[str] = set()
    for req_file in sorted(root.glob("*.txt")):
        others = [
            p for p in root.glob(f"{glob_escape(req_file.stem)}.*") if p.suffix.lower() != ".txt"
        ]
        if len(others) != 1:
            problems.append(
                f"{req_file.name}: {'no' if not others else 'more than one'} artifact file "
                f"named {req_file.stem}.* beside it"
            )
            continue
        try:
            request = read_text_file(req_file).strip()
            answer = solver.solve_file(others[0])
        except FormalistError as e:
            problems.append(f"{others[0].name}: {e}")
            continue
        if answer.error or not answer.verified:
            problems.append(
                f"{others[0].name}: not a verified answer ({answer.status.value}"
                f"{': ' + answer.error.splitlines()[0] if answer.error else ''})"
            )
            continue
        kinds.add(answer.kind)
        examples.append(
            SolvedExample(
                req_file.stem, request, answer.artifact, answer.status.value, answer.objective
            )
        )
    if problems:
        raise InputError(
            "examples that cannot be used:\n" + "\n".join(f"  - {p}" for p in problems)
        )
    if len(kinds) > 1:
        raise InputError(
            f"the examples are of several kinds ({', '.join(sorted(kinds))}); give one"
        )
    if not examples:
        raise InputError(
            f"{root} has no examples (NAME.txt with its artifact NAME.json or similar)"
        )
    return kinds.pop(), examples


def glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


def expected_answer(ex: SolvedExample) -> dict[str, Any]:
    """What a held-out call keeps as its answer: the verified status and objective (never shown
    to the maker; a later version of the tool is checked against it)."""
    return {"status": ex.status, "objective": ex.objective}


def artifact_judge(agent: Agent, kind: str, expected: dict[str, SolvedExample]) -> Any:
    """The judge for artifact tools: the value must read as ``kind``'s artifact, solve, verify
    and reach the verified status and objective of the question's example: from ``expected``, else
    from the call's own answer (a held-out call's ``expected_answer``, or a worked call's
    artifact, solved here), so a new version of a tool is judged on its old calls as well."""
    from agent.agent import Agent

    solver = Agent(config=agent.config.with_overrides(model=""))

    def known(call: ToolCall) -> SolvedExample | None:
        if call.question in expected:
            return expected[call.question]
        a = call.answer
        if isinstance(a, dict) and set(a) == {"status", "objective"}:
            return SolvedExample("", call.question, None, str(a["status"]), a["objective"])
        if a is None:
            return None
        try:
            answer = solver.solve(
                Request(artifact_text(a), ARTIFACT_FILE_NAMES.get(kind, ""), kind)
            )
        except FormalistError:
            return None
        if answer.error or not answer.verified:
            return None
        return SolvedExample("", call.question, a, answer.status.value, answer.objective)

    def judge(call: ToolCall, value: Any) -> str:
        ex = known(call)
        if ex is None:
            return "no verified answer is known for this question"
        try:
            answer = solver.solve(
                Request(artifact_text(value), ARTIFACT_FILE_NAMES.get(kind, ""), kind)
            )
        except FormalistError as e:
            return f"its artifact does not read as {kind}: {e}"
        if answer.error:
            return f"its artifact fails: {answer.error[:600]}"
        if not answer.verified:
            return f"its artifact solves to {answer.status.value}, not verified"
        if answer.status.value != ex.status:
            return f"its artifact solves to {answer.status.value}; the answer is {ex.status}"
        if not same_objective(answer.objective, ex.objective):
            return f"its artifact's objective is {answer.objective}; the verified answer is {ex.objective}"
        return ""

    return judge


def same_objective(got: Any, want: Any) -> bool:
    """Objectives agree to a relative 1e-6 (lists element by element); None only with None."""
    if isinstance(got, list) and isinstance(want, list):
        return len(got) == len(want) and all(map(same_objective, got, want))
    if got is None or want is None:
        return got is None and want is None
    try:
        return math.isclose(float(got), float(want), rel_tol=1e-6, abs_tol=1e-6)
    except (TypeError, ValueError):
        return False


@dataclass(slots=True)
class MakeReport:
    """What ``make_tool`` did: the cached tool (None when none passed) and each attempt's outcome."""

    tool: Tool | None
    kind: str
    examples: int
    held_out: int
    attempts: list[dict[str, Any]]
    error: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "tool": self.tool.label if self.tool is not None else "",
            "kind": self.kind,
            "examples": self.examples,
            "held_out": self.held_out,
            "attempts": self.attempts,
            "error": self.error,
        }


def make_tool(
    agent: Agent,
    folder: str | Path,
    client: ChatClient,
    cache: ToolCache,
    sandbox: Sandbox,
    name: str = "",
    shown: int = 3,
    max_attempts: int = 3,
) -> MakeReport:
    """Make a tool from the solved examples in ``folder`` with the maker model ``client`` and cache
    it only when it passes on every example, the held-out ones included (see the module doc)."""
    from tool_maker.cache import ToolRejected
    from tool_maker.maker import TaskSpec, ToolMaker, ToolNotMade
    from tool_maker.tool import Example

    kind, examples = read_examples(folder, agent)
    if shown < 1:
        raise InputError("--shown must be at least 1")
    if len(examples) <= shown:
        raise InputError(
            f"{len(examples)} example(s) with {shown} shown leaves none held out: a tool is "
            "verified on examples its maker did not see answered; give more or show fewer"
        )
    task_name = name or Path(folder).expanduser().resolve().name
    what = {
        "milp": "the request's five-element optimization model as a JSON object",
        "routing": "the request's routing spec as a JSON object",
        "pddl": "the request's PDDL problem as a string",
        "asp": "the request's clingo (ASP) program as a string",
        "apis": "the facts of the request over APIs as a JSON object",
    }.get(kind, f"the request's {kind} artifact")
    from tool_maker.prompts import demo

    description = (
        f"Each question is a request in words; the function returns {what}, like the answers "
        "shown (its names may differ), with the request's own numbers read into its arguments. "
        "Every answer is checked by solving the returned model: it must reach the same optimum."
    )
    task = TaskSpec(
        task_name,
        description,
        tuple(Example(e.request, e.artifact) for e in examples[:shown]),
        tuple(Example(e.request, expected_answer(e)) for e in examples[shown:]),
        kind=kind,
        sources=tuple(f"{Path(folder).name}/{e.name}" for e in examples),
        demo=demo(kind),
    )
    expected = {e.request: e for e in examples}
    judge = artifact_judge(agent, kind, expected)
    maker = ToolMaker(client, sandbox, max_attempts, judge)
    report = MakeReport(None, kind, len(examples), len(examples) - shown, [])
    try:
        tool = maker.make(task)
    except ToolNotMade as e:
        report.error = e.feedback()
    except ReplyTimedOut as e:  # a maker reply ran out of time: no further attempt would fit
        report.error = f"the maker model stopped: {e}"
    finally:
        report.attempts = [
            {"number": a.number, "accepted": not a.feedback, "feedback": a.feedback}
            for a in maker.attempts
        ]
    if report.error:
        return report
    existing = cache.get(tool.name)
    if existing is not None and existing.task != tool.task:
        n = 2
        while cache.get(f"{tool.name}_{n}") is not None:
            n += 1
        from tool_maker.tool import Tool as ToolType

        tool = ToolType.from_json({**tool.to_json(), "name": f"{tool.name}_{n}"})
    try:
        report.tool = cache.put(tool, sandbox, judge)
    except ToolRejected as e:
        report.error = e.feedback()
    return report


def export_examples(
    cache: ToolCache, kind: str, like: str, out: str | Path, threshold: float, limit: int = 50
) -> list[Path]:
    """Write the verified requests of ``kind`` like ``like`` (TF-IDF similarity at least
    ``threshold``) from the agent's history into ``out`` as example pairs (``NAME.txt`` and its
    artifact), ready for ``make_tool``; returns the request files written."""
    seen = cache.verified_requests(kind)
    picked = [seen[i] for i in similar_requests(like, [s["request"] for s in seen], threshold)]
    root = Path(out).expanduser()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"cannot create {root}: {e.strerror or e}") from e
    suffix = Path(ARTIFACT_FILE_NAMES.get(kind, "artifact.txt")).suffix
    written = []
    for i, s in enumerate(picked[:limit], 1):
        stem = f"{kind}_{i:03d}"
        (root / f"{stem}.txt").write_text(s["request"] + "\n", encoding="utf-8")
        (root / f"{stem}{suffix}").write_text(artifact_text(s["artifact"]), encoding="utf-8")
        written.append(root / f"{stem}.txt")
    return written


def list_cached_tools(agent: Agent) -> list[dict[str, Any]]:
    """Every cached tool of ``agent`` (latest version) with its provenance and record, as
    ``formalist tools list --json``, ``GET /v1/tools`` and MCP's ``list_tools`` give it."""
    from tool_maker.cli import list_tools

    cache = tools_cache(agent)
    try:
        return list_tools(cache)
    finally:
        cache.close()
