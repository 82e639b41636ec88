"""The Formalizer protocol and the artifact types every formal language shares."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where an artifact came from: ``source`` is ``"model"`` (a language model wrote it) or
    ``"input"`` (given directly); ``model_id`` and ``prompt_version`` name the model and prompt;
    ``attempt`` counts from 1."""

    source: str
    model_id: str = ""
    prompt_version: str = ""
    attempt: int = 1
    grammar_id: str = ""
    elapsed_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__ if getattr(self, k) not in ("", 0.0)}


@dataclass(frozen=True, slots=True)
class Artifact:
    """A formal model, typed, as parsed from text.

    ``kind`` is the problem kind (``"milp"``); ``language`` the notation (``"five-element"``,
    ``"lp"``, ``"mps"``); ``model`` the parsed object (a ``FiveElementModel`` or a
    ``LinearModel``); ``text`` the text it was parsed from (the model's raw reply, or the file).
    """

    kind: str
    language: str
    model: Any
    text: str
    provenance: Provenance = field(default_factory=lambda: Provenance("input"))

    def to_json(self) -> Any:
        """The artifact as JSON data (the five-element model), or its text for file formats."""
        to_json = getattr(self.model, "to_json", None)
        return to_json() if callable(to_json) else self.text


@dataclass(frozen=True, slots=True)
class Feedback:
    """What went wrong with the previous attempt, for the formalizer to fix: ``kind`` is the
    ``ArtifactError`` kind, ``text`` the message for the model, ``previous`` the previous reply."""

    kind: str
    text: str
    previous: str = ""


class Formalizer(Protocol):
    """Natural language to an artifact. Owns prompts, examples and parsing; never calls a solver."""

    kind: str

    def formalize(
        self, request: str, feedback: Feedback | None = None, attempt: int = 1
    ) -> Artifact:
        """Return an artifact for ``request``; raise ``ArtifactError`` when the reply is unusable."""
        ...
