"""The Formalizer protocol and the artifact types every formal language shares."""

from __future__ import annotations

import functools
import hashlib
import json
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import resources
from string import Template
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from agent.errors import ArtifactError

if TYPE_CHECKING:
    from agent.llm.chat import Chat, Output


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


# ---------------------------------------------------------------------------------------------
# What every language-model formalizer does the same way


@functools.cache
def load_prompt(package: str, name: str) -> str:
    """The prompt data file ``prompts/NAME`` of ``package`` (``"formalizers.milp"``), trimmed."""
    return resources.files(package).joinpath("prompts", name).read_text(encoding="utf-8").strip()


def prompt_hash(package: str, prompts: Sequence[str], examples: Iterable[Any] = ()) -> str:
    """A short hash of ``package``'s prompt files ``prompts`` and its few-shot ``examples`` (each
    JSON data): a formalizer's prompt version, which changes whenever any of them does."""
    h = hashlib.sha256()
    for name in prompts:
        h.update(load_prompt(package, name).encode())
    for ex in examples:
        h.update(json.dumps(ex, sort_keys=True).encode())
    return h.hexdigest()[:12]


def compact_json(value: Any) -> str:
    """``value`` as the JSON text a grammar-constrained model writes: no whitespace (the local
    engine compiles JSON schemas with ``separators=(",", ":")``). Few-shot answers are shown in
    this form, so that the model sees the very text it will be held to, and the prompt is shorter."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def repair_turns(package: str, feedback: Feedback) -> list[dict[str, str]]:
    """The turns that ask for a repair: the model's previous reply, then the package's
    ``repair.md`` filled with the feedback's ``$kind`` and ``$feedback``."""
    text = Template(load_prompt(package, "repair.md")).substitute(
        kind=feedback.kind, feedback=feedback.text
    )
    return [{"role": "assistant", "content": feedback.previous}, {"role": "user", "content": text}]


def few_shot_messages(
    package: str,
    request: str,
    examples: Iterable[tuple[str, str]],
    feedback: Feedback | None = None,
    system: str | None = None,
) -> list[dict[str, str]]:
    """The conversation that asks ``package``'s formalizer for an artifact: its ``system.md``
    (or ``system``, a system prompt the formalizer composed);
    each example as a request (``request.md`` filled with it) and its answer, given as
    ``(request, answer)``; the request; and, after a failed attempt, the repair turns."""
    tmpl = Template(load_prompt(package, "request.md"))
    msgs = [{"role": "system", "content": system or load_prompt(package, "system.md")}]
    for ex_request, answer in examples:
        msgs.append({"role": "user", "content": tmpl.substitute(request=ex_request)})
        msgs.append({"role": "assistant", "content": answer})
    msgs.append({"role": "user", "content": tmpl.substitute(request=request)})
    if feedback is not None:
        msgs += repair_turns(package, feedback)
    return msgs


@contextmanager
def reading(reply: str) -> Iterator[None]:
    """Read an artifact from a model's ``reply`` inside this block: an ``ArtifactError`` raised
    there carries the reply (``e.reply``), which the repair turn quotes back to the model."""
    try:
        yield
    except ArtifactError as e:
        e.reply = reply
        raise


def ask(
    client: Chat,
    messages: list[dict[str, str]],
    attempt: int,
    prompt_version: str,
    output: Output | None = None,
) -> tuple[str, Provenance]:
    """The model's reply text to ``messages`` (under the grammar ``output``, None for free text)
    and the provenance of the artifact made from it (with the grammar's id)."""
    t0 = time.perf_counter()
    reply = client.complete(messages, output)
    return reply.text, Provenance(
        "model",
        client.model_id,
        prompt_version,
        attempt,
        grammar_id=reply.grammar_id,
        elapsed_s=time.perf_counter() - t0,
    )


def json_examples(package: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(name, data)`` for each ``examples/*.json`` of ``package``, in name order."""
    folder = resources.files(package).joinpath("examples")
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".json"):
            yield entry.name.removesuffix(".json"), json.loads(entry.read_text(encoding="utf-8"))


_WORD = re.compile(r"[a-z]{3,}")
_STOP = frozenset(
    "the and for are each with that this from can has have must per will how many much what which "
    "not but all any its into than then they their there these those was were who one two".split()
)
T = TypeVar("T")


def request_words(text: str) -> set[str]:
    """The content words of a request (three letters or more, common words left out)."""
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP}


def nearest(
    request: str, items: Sequence[T], text: Callable[[T], str], name: Callable[[T], str], k: int
) -> list[T]:
    """The ``k`` items whose text shares the most words with ``request`` (Jaccard; ties by name)."""
    words = request_words(request)
    scored = []
    for item in items:
        other = request_words(text(item))
        union = words | other
        scored.append((len(words & other) / len(union) if union else 0.0, name(item), item))
    scored.sort(key=lambda s: (-s[0], s[1]))
    return [item for _, _, item in scored[:k]]
