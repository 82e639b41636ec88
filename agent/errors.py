"""The two error families of formalist, under one root.

``ArtifactError``: the formal artifact is wrong (it does not parse, names an undeclared symbol, is
infeasible when it should not be...). It carries feedback written for the language model, with a
location, and the agent sends it back to the formalizer.

``StopError``: our side failed, or a person gave input we cannot take (a missing solver, no model
configured, an empty or binary request). It stops the request with a message for the person.

``NeedsInformation``: only the person can give what is missing (see its docstring).

``schema_diagnostics`` turns a pydantic ``ValidationError`` into diagnostics with one location
style (``constraints[2].expression``) for every kind. This module is a leaf: every layer may import
it, and it imports nothing (it reads pydantic's errors without importing pydantic).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One finding about an artifact.

    ``location`` says where (``"constraints[2].expression, column 14"``, ``"constraint capacity[a]"``);
    ``message`` says what is wrong; ``hint`` says how to fix it, for the language model.
    """

    location: str
    message: str
    hint: str = ""

    def render(self) -> str:
        text = f"{self.location}: {self.message}" if self.location else self.message
        return f"{text} ({self.hint})" if self.hint else text


def location(path: Sequence[str | int]) -> str:
    """A place in a nested artifact, in the one style every kind's diagnostics use: fields joined by
    dots, list positions in brackets (``("constraints", 2, "expression")`` ->
    ``constraints[2].expression``); ``""`` for the artifact as a whole."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out.removeprefix(".")


SCHEMA_DIAGNOSTICS_MAX = 20
"""Pydantic errors turned into diagnostics at most (the rest would drown the first ones)."""


class ValidationErrors(Protocol):
    """What ``schema_diagnostics`` reads: pydantic's ``ValidationError`` (or FastAPI's
    ``RequestValidationError``), whose ``errors()`` are dicts with ``loc``, ``msg`` and ``type``."""

    def errors(self) -> Any: ...


def schema_diagnostics(err: ValidationErrors, whole: str) -> list[Diagnostic]:
    """Pydantic's errors as located diagnostics, the same for every kind's artifact
    (``constraints[2].expression: Field required``); ``whole`` names the artifact where an error
    is about all of it (``"model"``, ``"spec"``, ``"request"``). A message of several lines (a
    validator's list of problems) gives one diagnostic per line."""
    out = []
    for e in err.errors()[:SCHEMA_DIAGNOSTICS_MAX]:
        where = location(e["loc"]) or whole
        if e["type"] == "extra_forbidden":
            msg = "unknown field (not part of the schema)"
        else:
            msg = str(e["msg"]).removeprefix("Value error, ")
        out += [Diagnostic(where, line) for line in msg.split("\n") if line.strip()]
    return out


class FormalistError(Exception):
    """Root of every error formalist raises on purpose."""


class ArtifactError(FormalistError):
    """The artifact is wrong; the language model can fix it from ``feedback()``.

    ``kind`` is a short machine-readable class: ``parse``, ``schema``, ``symbol``, ``nonlinear``,
    ``infeasible``, ``unbounded``, ``verification``, ``unsupported``. ``reply`` is the model's
    reply the artifact was read from, where a formalizer attaches it (``formalizers.base.reading``):
    the repair turn quotes it back.
    """

    def __init__(self, kind: str, diagnostics: Sequence[Diagnostic], summary: str = "") -> None:
        self.kind = kind
        self.reply = ""
        self.diagnostics = tuple(diagnostics)
        self.summary = summary or (self.diagnostics[0].render() if self.diagnostics else kind)
        super().__init__(self.feedback())

    def feedback(self) -> str:
        """The text sent back to the language model: what is wrong, where, and how to fix it."""
        lines = [self.summary] if self.summary else []
        for d in self.diagnostics:
            line = f"- {d.render()}"
            if line.removeprefix("- ") != self.summary:
                lines.append(line)
        return "\n".join(lines)


class StopError(FormalistError):
    """Our side failed or the person's input cannot be taken: the request stops here."""


class ReplyTimedOut(StopError):
    """A model's reply was cut off by its time limit (asking again would be cut off again)."""


class InputError(StopError):
    """A person's input is unusable (empty, too large, binary, malformed file)."""


class ConfigError(StopError):
    """Configuration is missing or wrong (no model configured, unknown model spec...)."""


class SolverFault(StopError):
    """A solver is missing or failed in a way that is not the artifact's fault."""


class NeedsInformation(FormalistError):
    """The request lacks information only the person can give; ``questions`` say what to ask.

    Not a failure: the agent answers with status NEEDS_INFO and the questions."""

    def __init__(self, questions: list[str]) -> None:
        self.questions = [q for q in questions if q.strip()]
        super().__init__("; ".join(self.questions))
