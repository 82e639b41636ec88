"""What a problem kind provides to the agent: the stages of its pipeline, and its follow-ups.

A kind (``milp``, ``pddl``, ``asp``...) says which formal inputs it recognises, how a language model
formalizes a request into its artifact, and how the artifact is validated, solved, verified and
explained. The agent loops over these stages; the kind never loops. What the loop does after a solve
is decided by the result's ``Status`` (see ``STOP_STATUSES``), not by error text: ``Kind.problem``
gives feedback only for what the model can fix.

Follow-ups belong to the kind too: ``revising`` (a follow-up edits the previous artifact),
``continue_request`` (a NEEDS_INFO answer carried on with the person's ``name = value`` answers) and
``follow_up`` (what ``/help`` says). Kinds subclass ``Kind`` to inherit the defaults.

NEEDS_INFO has one mechanism for every kind: a stage that finds something only the person can give
raises ``agent.errors.NeedsInformation`` with the questions (a formalizer whose model asked, a reader
or validator), or the solver reports ``Status.NEEDS_INFO`` with ``SolveResult.questions`` (the APIs
kind's planner); either way the agent answers NEEDS_INFO with the questions and stops.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from agent.errors import ArtifactError, Diagnostic
from formalizers.base import Artifact, Formalizer
from solvers.base import Limits, SolveResult, Status, Verification

if TYPE_CHECKING:
    from agent.llm.chat import Chat
    from agent.types import Request


OUR_SIDE_STATUSES = frozenset({Status.TIMEOUT, Status.ERROR, Status.UNSUPPORTED})
"""Results that are nobody's answer and nothing the model can fix: the solver's budget ran out, or
our side failed or cannot take the task. ``Kind.problem`` gives no feedback for them."""

STOP_STATUSES = OUR_SIDE_STATUSES | {Status.NEEDS_INFO}
"""Results that end the repair loop (unless the solution they carry fails its check): those of
``OUR_SIDE_STATUSES``, and NEEDS_INFO (only the person can give what is missing). Asking the model
to rewrite the artifact would not help; the answer is given as it is."""


@dataclass(frozen=True, slots=True)
class Options:
    """Per-request settings a kind may read: ``backend`` (milp), ``optimal`` (planning),
    ``extra`` for kind-specific inputs such as a PDDL domain file's text."""

    limits: Limits = field(default_factory=Limits)
    backend: str = "highs"
    optimal: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    request: str = ""
    """The request's text (a formalizer may choose examples or a domain by it)."""
    planner: str = "auto"
    """Planning: ``auto`` (Fast Downward, then SymK), ``fast-downward``, ``symk`` or ``pyperplan``."""
    deadline: float | None = None
    """The ``time.perf_counter()`` instant by which the answer must be out: when the request began
    plus its time limit (``Agent.options``). None: each stage counts ``limits.time_s`` from its
    own start, as a solver call alone would."""

    def left(self) -> float:
        """Seconds left before the deadline, never negative (``limits.time_s`` without one)."""
        if self.deadline is None:
            return self.limits.time_s
        return max(0.0, self.deadline - time.perf_counter())


ANSWER_RESERVE_S = 0.1
"""Seconds of every request's limit kept back for explaining and writing out the answer."""

MIN_SOLVE_S = 0.01
"""The least time limit a solver is called with (a limit must be positive): with nothing left,
the solver stops at once and reports TIMEOUT with whatever it had."""

MIN_VERIFY_S = 0.2
"""The least time an independent check is given, even when the solver ran into its share."""


def verify_share(options: Options, fraction: float, least_s: float, most_s: float) -> float:
    """Seconds of the request's limit reserved up front for the independent check and for writing
    the answer: ``fraction`` of the limit, within ``[least_s, most_s]``, plus ``ANSWER_RESERVE_S``;
    never more than half the limit."""
    limit = options.limits.time_s
    share = min(max(fraction * limit, least_s), most_s) + ANSWER_RESERVE_S
    return min(share, 0.5 * limit)


def solver_limits(options: Options, reserve_s: float) -> Limits:
    """The solver's limits: what is left of the request's time less ``reserve_s`` (the check's
    share, see ``verify_share``), so a solver that uses all its time still leaves the check its
    share; at least ``MIN_SOLVE_S``."""
    return dataclasses.replace(options.limits, time_s=max(MIN_SOLVE_S, options.left() - reserve_s))


def verify_seconds(options: Options | None) -> float:
    """Seconds the independent check may take: what is left of the request's time less the
    answer's own reserve (the share ``verify_share`` kept back, and whatever the solver did not
    use), at least ``MIN_VERIFY_S``. Without options, a default limit's worth."""
    opts = options or Options()
    return max(MIN_VERIFY_S, opts.left() - ANSWER_RESERVE_S)


class Kind(Protocol):
    """The stages of one kind of problem. Kinds subclass it: the methods with a body are defaults
    (no grounding check, follow-ups formalized again from the words, no answers by name)."""

    name: str
    words: tuple[str, ...]
    """Words that suggest this kind in a natural-language request (a cheap pre-filter)."""
    follow_up: str
    """What a follow-up after this kind's answer does, with examples (``formalist chat``'s
    ``/help`` lists it for every kind)."""
    takes_answers: bool = False
    """Whether a NEEDS_INFO answer of this kind carries on from the person's ``name = value``
    answers without a language model (``continue_request``)."""

    def is_formal(self, text: str, name: str) -> bool:
        """Whether ``text`` (from a file called ``name``, possibly empty) is this kind's formal input."""
        ...

    def read(self, text: str, name: str, options: Options) -> Artifact:
        """Parse formal input into an artifact; ``ArtifactError`` or ``InputError`` if it cannot."""
        ...

    def formalizer(self, client: Chat, options: Options) -> Formalizer:
        """The language-model formalizer for this kind."""
        ...

    def validate(self, artifact: Artifact, options: Options) -> Any:
        """Check the artifact and compile it for the solver; raises ``ArtifactError``."""
        ...

    def solve(self, validated: Any, options: Options) -> SolveResult:
        """Run the solver within ``options.limits``; outcomes are statuses. A fault of the
        artifact that only the solver finds (clingo grounding it) raises ``ArtifactError``: the
        model can fix it, so the agent sends it back like a validation error."""
        ...

    def verify(
        self, validated: Any, result: SolveResult, opts: Options | None = None
    ) -> Verification | None:
        """Re-check a solution independently (None when there is nothing to check)."""
        ...

    def explain(
        self, validated: Any, result: SolveResult, verification: Verification | None
    ) -> str:
        """Plain-language account of the result."""
        ...

    def problem(
        self, validated: Any, result: SolveResult, verification: Verification | None
    ) -> ArtifactError | None:
        """What to tell the language model about this result: feedback only for what the model can
        fix (a solution that fails the independent check, a proof of INFEASIBLE or UNBOUNDED).
        None for a final answer and for the ``STOP_STATUSES`` (a time-out, our side's failure),
        which are never dressed as artifact errors."""
        ...

    def ground(self, artifact: Artifact, options: Options) -> Any:
        """Whether the numbers of an artifact a model wrote come from the request (an object with
        ``ok``, ``checked``, ``findings`` (how many), ``feedback()`` and ``to_json()``), or None when the kind has no such
        check."""
        return None

    def amend(
        self, artifact: Artifact, finding: Any, options: Options
    ) -> tuple[Artifact, list[str]] | None:
        """``artifact`` (one a language model wrote) with formalist's own edits for ``finding``
        made, and those edits in words: ``finding`` is a failed grounding check (``ground``'s
        result) or the ``ArtifactError`` validation raised. None when the kind makes no such
        edits or has none for this finding. The agent validates, solves, verifies and grounds
        the result again before it keeps it."""
        return None

    def revising(
        self, client: Chat, options: Options, previous: Any, instruction: str
    ) -> Formalizer | None:
        """A formalizer that edits ``previous`` (an earlier answer's artifact, as JSON) as the
        follow-up ``instruction`` says; None when this kind formalizes the request and the
        follow-up again instead."""
        return None

    def continue_request(self, artifact: Any, answers: dict[str, str]) -> Request | None:
        """The request that carries on after a NEEDS_INFO answer whose artifact is ``artifact``,
        with the person's ``answers`` (parameter -> value); None when this kind does not take
        answers by name (``takes_answers``)."""
        return None


def verification_failure(verification: Verification, what: str) -> ArtifactError:
    """Feedback for a result that failed the independent check: the worst violations, located,
    under "the WHAT fails the independent check: ..."."""
    diags = [Diagnostic(v.name, v.detail) for v in verification.violations[:10]]
    return ArtifactError(
        "verification",
        diags or [Diagnostic(what, verification.message)],
        f"the {what} {'fail' if what.endswith('s') else 'fails'} the independent check: "
        f"{verification.message}",
    )
