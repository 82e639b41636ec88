"""The language-model formalizer for routing requests: text in, routing spec out."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from string import Template
from typing import Any

from agent.errors import ArtifactError
from agent.llm.client import ChatClient, Message
from formalizers.base import Artifact, Feedback, ask, load_prompt, repair_turns
from formalizers.milp.formalizer import extract_json
from formalizers.routing.spec import parse_spec

_WORD = re.compile(r"[a-z]{3,}")
_STOP = frozenset(
    "the and for are each with that this from can has have must per will how many much what which "
    "not but all any its into than then they their there these those was were who one two".split()
)


@dataclass(frozen=True, slots=True)
class Example:
    """A worked few-shot example: a request and its routing spec."""

    name: str
    request: str
    spec: dict[str, Any]


def _prompt(name: str) -> str:
    return load_prompt("formalizers.routing", name)


@cache
def load_examples() -> tuple[Example, ...]:
    """The bundled few-shot examples (each parsed: a broken example is a defect)."""
    out = []
    folder = resources.files("formalizers.routing").joinpath("examples")
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".json"):
            data = json.loads(entry.read_text(encoding="utf-8"))
            parse_spec(data["spec"])
            out.append(Example(entry.name.removesuffix(".json"), data["request"], data["spec"]))
    return tuple(out)


def prompt_version() -> str:
    """A short hash of the prompt files and examples: it changes whenever they do."""
    h = hashlib.sha256()
    for name in ("system.md", "request.md", "repair.md"):
        h.update(_prompt(name).encode())
    for ex in load_examples():
        h.update(json.dumps([ex.request, ex.spec], sort_keys=True).encode())
    return h.hexdigest()[:12]


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP}


def select_examples(request: str, k: int = 2) -> list[Example]:
    """The ``k`` examples whose requests share the most words with ``request`` (Jaccard)."""
    words = _words(request)
    scored = []
    for ex in load_examples():
        other = _words(ex.request)
        union = words | other
        scored.append((len(words & other) / len(union) if union else 0.0, ex.name, ex))
    scored.sort(key=lambda s: (-s[0], s[1]))
    return [ex for _, _, ex in scored[:k]]


class RoutingFormalizer:
    """Asks a chat model for a routing spec and parses it (schema errors go back as feedback)."""

    kind = "routing"

    def __init__(self, client: ChatClient, n_examples: int = 2) -> None:
        self.client = client
        self.n_examples = n_examples

    def messages(self, request: str, feedback: Feedback | None = None) -> list[Message]:
        msgs: list[Message] = [{"role": "system", "content": _prompt("system.md")}]
        tmpl = Template(_prompt("request.md"))
        for ex in select_examples(request, self.n_examples):
            msgs.append({"role": "user", "content": tmpl.substitute(request=ex.request)})
            msgs.append({"role": "assistant", "content": json.dumps(ex.spec, indent=1)})
        msgs.append({"role": "user", "content": tmpl.substitute(request=request)})
        if feedback is not None:
            msgs += repair_turns("formalizers.routing", feedback)
        return msgs

    def formalize(
        self, request: str, feedback: Feedback | None = None, attempt: int = 1
    ) -> Artifact:
        reply, prov = ask(self.client, self.messages(request, feedback), attempt, prompt_version())
        try:
            spec = parse_spec(extract_json(reply))
        except ArtifactError as e:
            e.reply = reply  # type: ignore[attr-defined]
            raise
        return Artifact("routing", "routing-spec", spec, reply, prov)
