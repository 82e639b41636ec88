"""What a problem kind provides to the agent: the stages of its pipeline.

A kind (``milp``, ``pddl``, ``asp``...) says which formal inputs it recognises, how a language model
formalizes a request into its artifact, and how the artifact is validated, solved, verified and
explained. The agent loops over these stages; the kind never loops.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from agent.errors import ArtifactError, Diagnostic
from formalizers.base import Artifact, Formalizer
from solvers.base import Limits, SolveResult, Verification

if TYPE_CHECKING:
    from agent.llm.client import ChatClient


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


class Kind(Protocol):
    """The stages of one kind of problem."""

    name: str
    words: tuple[str, ...]
    """Words that suggest this kind in a natural-language request (a cheap pre-filter)."""

    def is_formal(self, text: str, name: str) -> bool:
        """Whether ``text`` (from a file called ``name``, possibly empty) is this kind's formal input."""
        ...

    def read(self, text: str, name: str, options: Options) -> Artifact:
        """Parse formal input into an artifact; ``ArtifactError`` or ``InputError`` if it cannot."""
        ...

    def formalizer(self, client: ChatClient, options: Options) -> Formalizer:
        """The language-model formalizer for this kind."""
        ...

    def validate(self, artifact: Artifact, options: Options) -> Any:
        """Check the artifact and compile it for the solver; raises ``ArtifactError``."""
        ...

    def solve(self, validated: Any, options: Options) -> SolveResult:
        """Run the solver within ``options.limits``; outcomes are statuses."""
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
        """What to tell the language model about this result, or None when it is a final answer."""
        ...


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
