"""The language-model formalizer for planning: a request in words -> a PDDL problem (and, where no
known domain fits, a domain too; that path is marked experimental)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from string import Template
from typing import Any

from agent.errors import ArtifactError, Diagnostic
from agent.llm.chat import Chat, Message
from agent.llm.grammar import Grammar
from formalizers.base import (
    Artifact,
    Feedback,
    ask,
    load_prompt,
    prompt_hash,
    reading,
    repair_turns,
)
from formalizers.pddl.grammar import PddlGrammar, pddl_any_grammar
from formalizers.pddl.library import LibraryDomain
from formalizers.pddl.model import read_domain


@dataclass(frozen=True, slots=True)
class PlanningTask:
    """A domain and a problem as PDDL text. ``library_key`` names the shipped domain used (empty for
    a domain given by the person or written by the model); ``experimental`` marks a model-written
    domain."""

    domain: str
    problem: str
    library_key: str = ""
    experimental: bool = False

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"problem": self.problem}
        if self.library_key:
            out["library_domain"] = self.library_key
        else:
            out["domain"] = self.domain
        if self.experimental:
            out["experimental"] = True
        return out


def _prompt(name: str) -> str:
    return load_prompt("formalizers.pddl", name)


def prompt_version() -> str:
    return prompt_hash(
        "formalizers.pddl", ("system.md", "request.md", "domain_request.md", "repair.md")
    )


_FENCE = re.compile(r"```[a-zA-Z]*\s*\n(.*?)```", re.DOTALL)
_DEFINE = re.compile(r"\(\s*define\s*\(\s*(domain|problem)\b", re.IGNORECASE)


def extract_pddl(reply: str) -> dict[str, str]:
    """The domain and/or problem in a reply: fenced blocks, else ``(define ...)`` forms in the text."""
    blocks = [m.group(1) for m in _FENCE.finditer(reply)] or [reply]
    found: dict[str, str] = {}
    for block in blocks:
        starts = [(m.start(), m.group(1).lower()) for m in _DEFINE.finditer(block)]
        for i, (start, kind) in enumerate(starts):
            end = starts[i + 1][0] if i + 1 < len(starts) else len(block)
            found[kind] = block[start:end].strip()
    if not found:
        raise ArtifactError(
            "parse",
            [
                Diagnostic(
                    "reply",
                    "no (define (problem ...)) found",
                    "reply with the problem file alone, from (define (problem NAME) ...) to "
                    "its closing parenthesis (a domain you write goes first, as its own "
                    "(define (domain NAME) ...)), with no fences or other text",
                )
            ],
        )
    return found


class PddlFormalizer:
    """Asks a chat model for a problem file for ``domain`` (a library domain, or a person's domain
    file as ``domain_text``); with neither, for a domain and a problem."""

    kind = "pddl"

    def __init__(
        self, client: Chat, library_domain: LibraryDomain | None = None, domain_text: str = ""
    ) -> None:
        self.client = client
        self.library_domain = library_domain
        self.domain_text = domain_text or (library_domain.text if library_domain else "")

    @property
    def writes_domain(self) -> bool:
        return not self.domain_text

    def grammar(self) -> PddlGrammar | Grammar | None:
        """The grammar of this formalizer's replies: a problem over the chosen domain (a staged
        grammar: the model declares the objects first), or, where the model writes the domain
        too, a domain and a problem as s-expressions. None (free text) for a person's domain file
        that does not read: the planner's reader then says what is wrong with it."""
        if self.writes_domain:
            return pddl_any_grammar()
        lib = self.library_domain
        if lib is not None and self.domain_text == lib.text:
            return PddlGrammar(lib.domain)
        try:
            return PddlGrammar(read_domain(self.domain_text))
        except ArtifactError:
            return None

    def messages(self, request: str, feedback: Feedback | None = None) -> list[Message]:
        msgs: list[Message] = [{"role": "system", "content": _prompt("system.md")}]
        if self.writes_domain:
            msgs.append(
                {
                    "role": "user",
                    "content": Template(_prompt("domain_request.md")).substitute(request=request),
                }
            )
        else:
            lib = self.library_domain
            msgs.append(
                {
                    "role": "user",
                    "content": Template(_prompt("request.md")).substitute(
                        domain_name=lib.name if lib else "given by the user",
                        domain=self.domain_text.strip(),
                        description=lib.description
                        if lib
                        else "(no description: read the domain file)",
                        example_request=lib.example_request if lib else "(none)",
                        example_problem=lib.example_problem if lib else "(none)",
                        request=request,
                    ),
                }
            )
        if feedback is not None:
            msgs += repair_turns("formalizers.pddl", feedback)
        return msgs

    def formalize(
        self, request: str, feedback: Feedback | None = None, attempt: int = 1
    ) -> Artifact:
        messages = self.messages(request, feedback)
        reply, prov = ask(self.client, messages, attempt, prompt_version(), output=self.grammar())
        with reading(reply):
            found = extract_pddl(reply)
            if "problem" not in found:
                raise ArtifactError(
                    "parse",
                    [
                        Diagnostic(
                            "reply",
                            "the reply has no problem file",
                            "write (define (problem NAME) ...)",
                        )
                    ],
                )
            if self.writes_domain and "domain" not in found:
                raise ArtifactError(
                    "parse",
                    [
                        Diagnostic(
                            "reply",
                            "the reply has no domain file",
                            "write (define (domain NAME) ...) first",
                        )
                    ],
                )
        domain = found["domain"] if self.writes_domain else self.domain_text
        task = PlanningTask(
            domain,
            found["problem"],
            self.library_domain.key if self.library_domain else "",
            experimental=self.writes_domain,
        )
        return Artifact("pddl", "pddl", task, reply, prov)
