"""Voting over sampled formalizations: draw k, solve and verify each, and let the verified answers vote.

A request with ``samples`` above 1 (``Request.extra["samples"]``, ``formalist bench --samples K``)
is formalized k times from one conversation, each sample with its own seed: the first greedily
(``GREEDY``), the others at a sampling temperature. Every sample is validated, solved and
verified on its own; only samples whose solution the independent check accepted vote, by objective
value: values within ``REL_TOL`` of each other are one value, and values within ``NEAR_TOL`` vote
together as one answer (the same formulation with a variable's integrality changed or a number
rounded lands that close). The answer is the most-voted answer's most common value, taken from its
first sample; its confidence is its votes over all k samples drawn (a sample that failed counts
against it), and a request whose verified samples reached different values says so. Where some
verified samples are grounded in the request (``formalizers.milp.grounding``), only those vote.
When no sample verifies, the ordinary repair loop takes over.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agent.errors import ArtifactError, InputError, NeedsInformation
from agent.kinds.base import OUR_SIDE_STATUSES
from agent.types import Answer, Attempt, Request

if TYPE_CHECKING:
    from agent.agent import Agent
    from agent.kinds import Kind
    from agent.llm.client import ChatClient

REL_TOL = 1e-6
"""Two objective values within this relative distance (of the larger, at least 1) are one value."""
NEAR_TOL = 0.005
"""Values within this relative distance of an answer's most common value vote for that answer.
Samples of one formulation that differ only in whether a count is whole (16400 in whole units,
16428.57 in fractions) or in a rounded coefficient land this close, while different readings of a
request rarely do: counting them apart split the votes of the right formulation and let a wrong
one win. On the recorded real-model votes (session 9): NL4Opt +2 items (lenient), Mamo unchanged;
at 1% it would also join 4950 and 5000, two readings of one problem."""
TEMPERATURE = 0.7
"""The sampling temperature of the k samples."""
GREEDY = 1
"""How many of the k samples are drawn greedily (temperature 0), in the same batch: the vote
keeps the reply a single greedy call would give among its samples, so that a few noisy samples
at the temperature cannot outvote it without agreeing among themselves."""
MAX_SAMPLES = 64


@dataclass(frozen=True, slots=True)
class SampleOutcome:
    """What became of one sample: ``index`` (from 0), the solver ``status`` (empty when it never
    reached the solver), its ``objective``, whether its solution ``verified``, and ``outcome``
    (``ok`` or the error kind that stopped it)."""

    index: int
    status: str
    objective: float | None
    verified: bool
    outcome: str
    grounded: bool | None = None
    """Whether its numbers are the request's (None: not checked)."""


@dataclass(frozen=True, slots=True)
class Group:
    """The verified samples that reached one answer (``members``: sample indices, in order):
    ``objective`` is its most common value, first reached by sample ``answer``; ``near`` holds
    the other values within ``NEAR_TOL`` of it that voted with it."""

    objective: float
    members: tuple[int, ...]
    answer: int
    near: tuple[float, ...] = ()

    @property
    def votes(self) -> int:
        return len(self.members)


@dataclass(frozen=True, slots=True)
class Ballot:
    """The vote of ``k`` samples: ``groups`` of verified answers, most votes first (ties: the
    group whose first sample came first)."""

    k: int
    groups: tuple[Group, ...]
    outcomes: tuple[SampleOutcome, ...] = field(default=())
    grounded_only: bool = False
    """Whether only grounded verified samples voted (some were grounded, so the others did not)."""

    @property
    def winner(self) -> Group | None:
        return self.groups[0] if self.groups else None

    @property
    def verified(self) -> int:
        """How many samples voted (verified, and grounded when ``grounded_only``)."""
        return sum(g.votes for g in self.groups)

    @property
    def confidence(self) -> float:
        """The winner's votes over all samples drawn (0 with no winner)."""
        return self.winner.votes / self.k if self.winner and self.k else 0.0

    @property
    def disagree(self) -> bool:
        """Whether verified samples reached more than one objective value."""
        return len(self.groups) > 1

    @property
    def tie(self) -> bool:
        """Whether the two most-voted values have as many votes each."""
        return len(self.groups) > 1 and self.groups[0].votes == self.groups[1].votes

    def summary(self) -> str:
        """One or two sentences for the person: the vote, and any disagreement."""
        if self.winner is None:
            return f"None of {self.k} sampled formalizations gave a verified answer."
        w = self.winner
        voters = "verified and grounded" if self.grounded_only else "verified"
        near = (
            f" ({', '.join(f'{v:g}' for v in w.near)} within {NEAR_TOL:.1%} of it counted with it)"
            if w.near
            else ""
        )
        text = (
            f"{w.votes} of {self.k} sampled formalizations agree on the objective {w.objective:g}"
            f"{near} (confidence {self.confidence:.2f}; {self.verified} {voters})."
        )
        if self.disagree:
            others = ", ".join(f"{g.objective:g} ({g.votes})" for g in self.groups[1:])
            text += f" The samples disagree: others reached {others}."
            if self.tie:
                text += " The vote is tied; the first sample's value is given."
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "verified": self.verified,
            "confidence": round(self.confidence, 4),
            "disagree": self.disagree,
            "tie": self.tie,
            "grounded_only": self.grounded_only,
            "groups": [
                {
                    "objective": g.objective,
                    "votes": g.votes,
                    **({"near": list(g.near)} if g.near else {}),
                }
                for g in self.groups
            ],
            # The sample (1-based) whose model gave the answer: the first at the winner's value.
            "answer_sample": self.winner.answer + 1 if self.winner else None,
            "samples": [
                {
                    "status": o.status,
                    "objective": o.objective,
                    "verified": o.verified,
                    "outcome": o.outcome,
                    "grounded": o.grounded,
                }
                for o in self.outcomes
            ],
        }


def same_value(a: float, b: float, rel_tol: float = REL_TOL) -> bool:
    return abs(a - b) <= rel_tol * max(1.0, abs(a), abs(b))


def tally(
    outcomes: list[SampleOutcome], rel_tol: float = REL_TOL, near_tol: float = NEAR_TOL
) -> Ballot:
    """The vote among the verified outcomes; when some verified outcomes are grounded in the
    request, among those only. Outcomes within ``rel_tol`` are one value; the values, most
    reached first (ties: the value reached first), each join the first answer whose value is
    within ``near_tol`` of theirs or found a new one. Answers are ordered by votes, ties by the
    answer reached first."""
    voters = [
        o for o in outcomes if o.verified and o.objective is not None and math.isfinite(o.objective)
    ]
    grounded_only = any(o.grounded for o in voters)
    if grounded_only:
        voters = [o for o in voters if o.grounded]
    values: list[tuple[float, list[int]]] = []
    for o in voters:
        value = float(o.objective or 0.0)  # never None here: filtered above
        for v, members in values:
            if same_value(v, value, rel_tol):
                members.append(o.index)
                break
        else:
            values.append((value, [o.index]))
    values.sort(key=lambda v: (-len(v[1]), v[1][0]))
    # Each answer: its value, its members (the value's own first: members[0] gave it), near values.
    answers: list[tuple[float, list[int], list[float]]] = []
    for value, members in values:
        for a_value, a_members, near in answers:
            if same_value(a_value, value, near_tol):
                a_members.extend(members)
                near.append(value)
                break
        else:
            answers.append((value, list(members), []))
    ordered = sorted(answers, key=lambda a: (-len(a[1]), min(a[1])))
    groups = tuple(Group(v, tuple(sorted(m)), m[0], tuple(near)) for v, m, near in ordered)
    return Ballot(len(outcomes), groups, tuple(outcomes), grounded_only)


def samples_option(req: Request) -> int:
    """The ``samples`` option of a request (1 when absent); ``InputError`` when it is not a whole
    number from 1 to ``MAX_SAMPLES``."""
    k = req.extra.get("samples", 1)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_SAMPLES:
        raise InputError(f"samples must be a whole number from 1 to {MAX_SAMPLES}, not {k!r}")
    return k


def solve_by_vote(
    agent: Agent,
    req: Request,
    kind: Kind,
    client: ChatClient,
    k: int,
    temperature: float = TEMPERATURE,
) -> Answer:
    """Answer ``req`` by the vote of ``k`` sampled formalizations (see the module docstring). A
    kind whose formalizer cannot sample goes through the repair loop unchanged."""
    from agent.agent import AMENDED_BY, grounding_option, with_grounding

    opts = agent.options(req)
    formalizer = kind.formalizer(client, opts)
    sample = getattr(formalizer, "formalize_samples", None)
    if sample is None:
        return agent._repair_loop(req, kind, client, formalizer)
    try:
        drawn = sample(req.text, k, temperature, greedy=min(GREEDY, k))
    except NeedsInformation:
        # The repair loop asks the same conversation and answers NEEDS_INFO with the questions.
        return agent._repair_loop(req, kind, client, formalizer)
    trace: list[Attempt] = []
    amend = grounding_option(req) == "amend"

    def amend_sample(item: Any, finding: Any, attempt: Attempt) -> Any:
        """The sample with formalist's own edits for ``finding`` (``Agent.amend_once``), when the
        edited model solves, verifies and is grounded: it votes in the sample's place, its edits
        on the sample's attempt. None otherwise."""
        if not amend:
            return None
        made: list[str] = []

        def new_attempt(edits: list[str]) -> Attempt:
            made.extend(edits)
            return Attempt(attempt.number, stage="validate", model_id=AMENDED_BY)

        done = agent.amend_once(kind, item, finding, opts, new_attempt)
        if done is not None:
            edited, _, result, _, _ = done
            attempt.edits, attempt.artifact = made, edited.to_json()
            attempt.stage, attempt.outcome, attempt.feedback = "verify", "ok", ""
            attempt.status, attempt.objective = result.status.value, result.objective
        return done

    outcomes: list[SampleOutcome] = []
    solved: dict[int, tuple[Any, Any, Any, Any, Any]] = {}
    ground = getattr(kind, "ground", None)
    for i, item in enumerate(drawn):
        attempt = Attempt(i + 1, model_id=client.model_id)
        trace.append(attempt)
        if isinstance(item, ArtifactError):
            attempt.outcome, attempt.feedback, attempt.reply = (
                item.kind,
                item.feedback(),
                item.reply,
            )
            outcomes.append(SampleOutcome(i, "", None, False, item.kind))
            continue
        attempt.reply = item.text
        attempt.prompt_version = item.provenance.prompt_version
        attempt.artifact = item.to_json()
        attempt.stage = "validate"
        try:
            validated = kind.validate(item, opts)
        except ArtifactError as e:
            attempt.outcome, attempt.feedback = e.kind, e.feedback()
            done = amend_sample(item, e, attempt)
            if done is not None:
                outcomes.append(
                    SampleOutcome(i, done[2].status.value, done[2].objective, True, "ok", True)
                )
                solved[i] = done
                continue
            outcomes.append(SampleOutcome(i, "", None, False, e.kind))
            continue
        try:
            result, verification, problem = agent._solve_verify(kind, validated, opts, attempt)
        except ArtifactError as e:  # a fault the solver finds in the artifact (clingo grounding)
            attempt.outcome, attempt.feedback = e.kind, e.feedback()
            outcomes.append(SampleOutcome(i, "", None, False, e.kind))
            continue
        ok = (
            problem is None
            and result.status not in OUR_SIDE_STATUSES
            and verification is not None
            and verification.ok
        )
        if problem is not None:
            attempt.outcome, attempt.feedback = problem.kind, problem.feedback()
        grounding = ground(item, opts) if ok and ground is not None else None
        if grounding is not None and not grounding.ok:
            done = amend_sample(item, grounding, attempt)
            if done is not None:
                item, validated, result, verification, grounding = done
        grounded = None if grounding is None else grounding.ok
        status, objective = result.status.value, result.objective
        outcomes.append(SampleOutcome(i, status, objective, ok, attempt.outcome, grounded))
        solved[i] = (item, validated, result, verification, grounding)
    ballot = tally(outcomes)
    if ballot.winner is None:
        answer = agent._repair_loop(req, kind, client, formalizer)
    else:
        first = ballot.winner.answer
        artifact, validated, result, verification, grounding = solved[first]
        answer = agent._answer(kind, artifact, validated, result, verification, trace)
        edits = trace[first].edits
        if edits:
            answer.explanation = (
                f"{answer.explanation}\nAmended by formalist, not by the model (sample "
                f"{first + 1}'s model, with: {'; '.join(edits)})."
            )
        answer = with_grounding(answer, grounding)
    answer.vote = {**ballot.to_json(), "greedy": min(GREEDY, k)}
    answer.explanation = f"{ballot.summary()}\n\n{answer.explanation}".strip()
    return answer
