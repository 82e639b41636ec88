"""The language-model formalizer for logic and configuration requests: text in, clingo program out."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from agent.errors import ArtifactError, Diagnostic
from agent.llm.chat import Chat, Message
from formalizers.asp.program import AspProgram, check_program
from formalizers.base import (
    Artifact,
    Feedback,
    ask,
    few_shot_messages,
    json_examples,
    nearest,
    prompt_hash,
    reading,
)

ASP_FENCES = frozenset({"asp", "clingo", "gringo", "lp", "prolog", ""})
"""Languages of a fenced block taken as the program (a bare ``` fence counts)."""


@dataclass(frozen=True, slots=True)
class Example:
    """A worked few-shot example: a request and its clingo program."""

    name: str
    request: str
    program: str


@cache
def load_examples() -> tuple[Example, ...]:
    """The bundled few-shot examples (each checked by clingo: a broken example is a defect)."""
    out = []
    for name, data in json_examples("formalizers.asp"):
        check_program(data["program"])
        out.append(Example(name, data["request"], data["program"]))
    return tuple(out)


def prompt_version() -> str:
    """A short hash of the prompt files and examples: it changes whenever they do."""
    return prompt_hash(
        "formalizers.asp",
        ("system.md", "request.md", "repair.md"),
        ([ex.request, ex.program] for ex in load_examples()),
    )


def select_examples(request: str, k: int = 2) -> list[Example]:
    """The ``k`` examples whose requests share the most words with ``request`` (Jaccard)."""
    return nearest(request, load_examples(), lambda e: e.request, lambda e: e.name, k)


_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)```", re.DOTALL)


def extract_program(reply: str) -> str:
    """The program in a model reply: the last fenced block marked ``asp``, ``clingo``, ``lp``,
    ``prolog`` or unmarked; else the last fenced block of any language; else the whole reply.

    Raises ``ArtifactError("parse")`` when the reply, or the block taken from it, is empty.
    """
    if not reply or not reply.strip():
        raise ArtifactError(
            "parse",
            [Diagnostic("reply", "the reply is empty", "reply with the program in a ```asp block")],
        )
    blocks = [(m.group(1).lower(), m.group(2)) for m in _FENCE.finditer(reply)]
    asp = [body for lang, body in blocks if lang in ASP_FENCES]
    text = asp[-1] if asp else (blocks[-1][1] if blocks else reply)
    if not text.strip():
        raise ArtifactError(
            "parse",
            [
                Diagnostic(
                    "reply", "the fenced block is empty", "put the whole program inside the block"
                )
            ],
        )
    # Kept exactly as written: clingo's line numbers must match the lines the model wrote.
    return text


class AspFormalizer:
    """Asks a chat model for a clingo program and extracts it from the reply.

    Feedback from a failed attempt is sent as a follow-up turn after the model's previous reply. The
    program is checked by clingo in the validate stage, not here.
    """

    kind = "asp"

    def __init__(self, client: Chat, n_examples: int = 2) -> None:
        self.client = client
        self.n_examples = n_examples

    def messages(self, request: str, feedback: Feedback | None = None) -> list[Message]:
        examples = select_examples(request, self.n_examples)
        shots = ((ex.request, f"```asp\n{ex.program.strip()}\n```") for ex in examples)
        return few_shot_messages("formalizers.asp", request, shots, feedback)

    def formalize(
        self, request: str, feedback: Feedback | None = None, attempt: int = 1
    ) -> Artifact:
        reply, prov = ask(self.client, self.messages(request, feedback), attempt, prompt_version())
        with reading(reply):
            program = extract_program(reply)
        return Artifact("asp", "asp", AspProgram(program), reply, prov)
