"""The language-model formalizer for routing requests: text in, routing spec out."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from agent.llm.chat import Chat, Message
from formalizers.base import (
    Artifact,
    Feedback,
    ask,
    compact_json,
    few_shot_messages,
    json_examples,
    nearest,
    prompt_hash,
    reading,
)
from formalizers.milp.formalizer import extract_json
from formalizers.routing.grammar import RoutingContext, routing_grammar
from formalizers.routing.spec import parse_spec


@dataclass(frozen=True, slots=True)
class Example:
    """A worked few-shot example: a request and its routing spec."""

    name: str
    request: str
    spec: dict[str, Any]


@cache
def load_examples() -> tuple[Example, ...]:
    """The bundled few-shot examples (each parsed: a broken example is a defect)."""
    out = []
    for name, data in json_examples("formalizers.routing"):
        parse_spec(data["spec"])
        out.append(Example(name, data["request"], data["spec"]))
    return tuple(out)


def prompt_version() -> str:
    """A short hash of the prompt files and examples: it changes whenever they do."""
    return prompt_hash(
        "formalizers.routing",
        ("system.md", "request.md", "repair.md"),
        ([ex.request, ex.spec] for ex in load_examples()),
    )


def select_examples(request: str, k: int = 2) -> list[Example]:
    """The ``k`` examples whose requests share the most words with ``request`` (Jaccard)."""
    return nearest(request, load_examples(), lambda e: e.request, lambda e: e.name, k)


class RoutingFormalizer:
    """Asks a chat model for a routing spec and parses it (schema errors go back as feedback).

    The replies' grammar is the routing spec's; with ``context`` (the request's location ids, and
    its depots, clients and groups where known) it is specialised to the request
    (``formalizers.routing.grammar.routing_grammar``)."""

    kind = "routing"

    def __init__(
        self, client: Chat, n_examples: int = 2, context: RoutingContext | None = None
    ) -> None:
        self.client = client
        self.n_examples = n_examples
        self.context = context

    def messages(self, request: str, feedback: Feedback | None = None) -> list[Message]:
        examples = select_examples(request, self.n_examples)
        shots = ((ex.request, compact_json(ex.spec)) for ex in examples)
        return few_shot_messages("formalizers.routing", request, shots, feedback)

    def formalize(
        self, request: str, feedback: Feedback | None = None, attempt: int = 1
    ) -> Artifact:
        messages = self.messages(request, feedback)
        grammar = routing_grammar(None, self.context)
        reply, prov = ask(self.client, messages, attempt, prompt_version(), output=grammar)
        with reading(reply):
            spec = parse_spec(extract_json(reply))
        return Artifact("routing", "routing-spec", spec, reply, prov)
