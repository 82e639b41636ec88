"""The language-model formalizer for logic and configuration requests: text in, clingo program out."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from agent.llm.chat import Chat, Message
from formalizers.asp.grammar import asp_grammar
from formalizers.asp.program import AspProgram, check_program, extract_program
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
        messages = self.messages(request, feedback)
        reply, prov = ask(self.client, messages, attempt, prompt_version(), output=asp_grammar())
        with reading(reply):
            program = extract_program(reply)
        return Artifact("asp", "asp", AspProgram(program), reply, prov)
