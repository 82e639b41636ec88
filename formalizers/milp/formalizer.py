"""The language-model formalizer for optimization requests: text in, five-element model out."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from functools import cache
from string import Template
from typing import Any

from agent.errors import ArtifactError, Diagnostic, NeedsInformation
from agent.llm.chat import Chat, Message
from formalizers.base import (
    Artifact,
    Feedback,
    Provenance,
    ask,
    compact_json,
    few_shot_messages,
    json_examples,
    load_prompt,
    nearest,
    prompt_hash,
    reading,
    repair_turns,
)
from formalizers.milp.grammar import asked_questions, five_element_grammar_for
from formalizers.milp.model import five_element_from_data


@dataclass(frozen=True, slots=True)
class Example:
    """A worked few-shot example: a request and its five-element model."""

    name: str
    request: str
    model: dict[str, Any]


def _prompt(name: str) -> str:
    return load_prompt("formalizers.milp", name)


NUMBER_STYLES = ("named", "inline")
"""Where a model writes the request's single numbers: each as a named scalar parameter
(``named``), or in the expression that uses it, with parameters only for tables indexed by sets
(``inline``). The few-shot examples are shown in the same style (``inline_numbers``)."""
DEFAULT_NUMBERS = "inline"
"""The style a request gets unless it says. With the real 1.5B model, inline replies converted
units and kept limits on their sentences where named ones swapped parameters (the README's
bakery), and were shorter; on the first 18 items of an NL4Opt dev sample they were right under
the lenient rule 10 times (named: 10 of the first 36)."""


def system_prompt(numbers: str = DEFAULT_NUMBERS) -> str:
    """The formalizer's system prompt for the number style ``numbers`` (``NUMBER_STYLES``):
    ``system.md`` with ``numbers_STYLE.md``'s two parts (the parameters field, then the rule for
    numbers) in its place. Raises ``ValueError`` for another style."""
    if numbers not in NUMBER_STYLES:
        raise ValueError(f"numbers must be one of {', '.join(NUMBER_STYLES)}, not {numbers!r}")
    parameters, _, rule = _prompt(f"numbers_{numbers}.md").partition("\n---\n")
    return Template(_prompt("system.md")).substitute(parameters=parameters, numbers=rule.strip())


_NAME_USE = re.compile(r"(?<![\w.'\"])[A-Za-z_]\w*(?![\w\['\"])")
_BOUND_INDEX = re.compile(r"\b(?:for\s+)?([A-Za-z_]\w*)\s+in\s+[A-Za-z_]")


def _number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else repr(value)


def inline_numbers(model: dict[str, Any]) -> dict[str, Any]:
    """``model`` (five-element JSON data) with each scalar parameter written as its number where
    it is used, and left out of ``parameters``; indexed parameters stay. A quoted set member or
    an index bound in the expression or the constraint's family is not a parameter's use
    (``for p in PRODUCTS`` keeps ``p``)."""
    scalars = {
        p["name"]: p["value"]
        for p in model.get("parameters", [])
        if not p.get("index") and isinstance(p.get("value"), int | float)
    }
    if not scalars:
        return model

    def sub(text: Any, bound: frozenset[str] = frozenset()) -> Any:
        if not isinstance(text, str):
            return text
        bound = bound | frozenset(_BOUND_INDEX.findall(text))

        def one(m: re.Match[str]) -> str:
            name = m.group(0)
            return _number_text(scalars[name]) if name in scalars and name not in bound else name

        return _NAME_USE.sub(one, text)

    out = dict(model)
    out["parameters"] = [p for p in model.get("parameters", []) if p["name"] not in scalars]
    out["variables"] = [
        {**v, **{k: sub(v[k]) for k in ("lower", "upper") if k in v}}
        for v in model.get("variables", [])
    ]
    objective = model.get("objective")
    if isinstance(objective, dict):
        out["objective"] = {**objective, "expression": sub(objective.get("expression"))}
    out["constraints"] = []
    for c in model.get("constraints", []):
        index = frozenset(_BOUND_INDEX.findall(" ".join(map(str, c.get("index") or []))))
        out["constraints"].append(
            {**c, **{k: sub(c[k], index) for k in ("expression", "condition") if k in c}}
        )
    return out


@cache
def load_examples() -> tuple[Example, ...]:
    """The bundled few-shot examples (each also validated: a broken example is a defect)."""
    out = []
    for name, data in json_examples("formalizers.milp"):
        five_element_from_data(data["model"])
        out.append(Example(name, data["request"], data["model"]))
    return tuple(out)


def prompt_version() -> str:
    """A short hash of the prompt files and examples: it changes whenever they do."""
    return prompt_hash(
        "formalizers.milp",
        (
            "system.md",
            "numbers_named.md",
            "numbers_inline.md",
            "request.md",
            "repair.md",
            "revise.md",
        ),
        ([ex.request, ex.model] for ex in load_examples()),
    )


def select_examples(request: str, k: int = 2) -> list[Example]:
    """The ``k`` examples whose requests share the most words with ``request`` (Jaccard)."""
    return nearest(request, load_examples(), lambda e: e.request, lambda e: e.name, k)


VARY_TEMPERATURE = 0.8
"""The sampling temperature of a reply asked for after a repeated one (``MilpFormalizer.vary``)."""

EXAMPLE_MODES = ("fixed", "retrieved", "none")
"""Where the few-shot examples come from: the bundled ``examples/`` (``fixed``), the nearest
models of the example bank (``retrieved``, ``formalizers.milp.retrieval``), or none."""
DEFAULT_EXAMPLES = "retrieved"
"""The examples a request gets unless it says: the bank's nearest (with the real 1.5B model the
README's bakery came back right this way, and NL4Opt-style requests are what the bank holds)."""


def examples_for(
    request: str, mode: str = "fixed", k: int = 2, exclude: tuple[str, ...] = ()
) -> list[Example]:
    """The few-shot examples for ``request`` under ``mode`` (``EXAMPLE_MODES``); ``exclude``:
    bank ids never to show (a benchmark item's own id). Raises ``ValueError`` for another mode."""
    if mode == "fixed":
        return select_examples(request, k)
    if mode == "none":
        return []
    if mode == "retrieved":
        from formalizers.milp.retrieval import retrieve

        return [Example(e.id, e.request, e.model) for e in retrieve(request, k, exclude)]
    raise ValueError(f"examples must be one of {', '.join(EXAMPLE_MODES)}, not {mode!r}")


_FENCE = re.compile(r"```(?:json|JSON)?\s*\n(.*?)```", re.DOTALL)


def extract_json(reply: str) -> Any:
    """The JSON object in a model reply: a fenced block, else the outermost ``{...}``.

    Raises ``ArtifactError("parse")`` with the line and column of a JSON syntax error.
    """
    if not reply or not reply.strip():
        raise ArtifactError(
            "parse", [Diagnostic("reply", "the reply is empty", "reply with one JSON object")]
        )
    candidates = [m.group(1) for m in _FENCE.finditer(reply)]
    if not candidates:
        start, end = reply.find("{"), reply.rfind("}")
        if start < 0:
            raise ArtifactError(
                "parse",
                [
                    Diagnostic(
                        "reply",
                        "no JSON object found",
                        "reply with one JSON object and nothing else",
                    )
                ],
            )
        # An object that never closes still goes to the JSON parser, which says where it broke.
        candidates = [reply[start : end + 1] if end > start else reply[start:]]
    text = candidates[-1]
    try:
        return json.loads(text)
    except RecursionError as e:
        raise ArtifactError("parse", [Diagnostic("reply", "the JSON is nested too deeply")]) from e
    except json.JSONDecodeError as e:
        line = text.splitlines()[e.lineno - 1] if 0 < e.lineno <= len(text.splitlines()) else ""
        raise ArtifactError(
            "parse",
            [
                Diagnostic(
                    f"JSON line {e.lineno}, column {e.colno}", e.msg, f"near: {line.strip()[:80]!r}"
                )
            ],
            f"the reply is not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}",
        ) from e


class MilpFormalizer:
    """Asks a chat model for a five-element model and parses the reply.

    Feedback from a failed attempt is sent as a follow-up turn after the model's previous reply.
    """

    kind = "milp"

    def __init__(
        self,
        client: Chat,
        n_examples: int = 2,
        examples: str = DEFAULT_EXAMPLES,
        exclude: tuple[str, ...] = (),
        numbers: str = DEFAULT_NUMBERS,
    ) -> None:
        if examples not in EXAMPLE_MODES:
            raise ValueError(
                f"examples must be one of {', '.join(EXAMPLE_MODES)}, not {examples!r}"
            )
        if numbers not in NUMBER_STYLES:
            raise ValueError(f"numbers must be one of {', '.join(NUMBER_STYLES)}, not {numbers!r}")
        self.client = client
        self.n_examples = n_examples
        self.examples = examples
        """``fixed``, ``retrieved`` or ``none`` (``EXAMPLE_MODES``)."""
        self.exclude = tuple(exclude)
        """Bank ids never shown as examples (a benchmark item's own)."""
        self.numbers = numbers
        """``named`` or ``inline`` (``NUMBER_STYLES``): how the prompt and its examples write
        the request's single numbers."""
        self._revision: tuple[dict[str, Any], str] | None = None
        self._vary: int | None = None

    def vary(self, seed: int) -> None:
        """Draw later replies at ``VARY_TEMPERATURE`` with seeds from ``seed`` on, not greedily
        (the agent calls this when a reply repeated an earlier one after feedback)."""
        self._vary = seed

    @classmethod
    def from_options(cls, client: Chat, extra: dict[str, Any]) -> MilpFormalizer:
        """A formalizer set by a request's options: ``examples`` (``EXAMPLE_MODES``, default
        ``DEFAULT_EXAMPLES``), ``shots`` (how many examples, default 2) and ``exclude_ids`` (bank
        ids never shown) and ``numbers`` (``NUMBER_STYLES``, default ``DEFAULT_NUMBERS``).
        ``InputError`` names a bad option."""
        from agent.errors import InputError

        mode = extra.get("examples") or DEFAULT_EXAMPLES
        shots = extra.get("shots", 2)
        exclude = extra.get("exclude_ids", ())
        numbers = extra.get("numbers") or DEFAULT_NUMBERS
        if numbers not in NUMBER_STYLES:
            raise InputError(f"numbers must be one of {', '.join(NUMBER_STYLES)}, not {numbers!r}")
        if mode not in EXAMPLE_MODES:
            raise InputError(f"examples must be one of {', '.join(EXAMPLE_MODES)}, not {mode!r}")
        if isinstance(shots, bool) or not isinstance(shots, int) or not 0 <= shots <= 8:
            raise InputError(f"shots must be a whole number from 0 to 8, not {shots!r}")
        if isinstance(exclude, str) or not all(isinstance(x, str) for x in exclude):
            raise InputError("exclude_ids must be a list of ids")
        return cls(client, shots, mode, tuple(exclude), numbers)

    def version(self) -> str:
        """The prompt version of this formalizer's conversations (with retrieved examples, the
        bank's version joins the prompt's; an ``inline`` number style is named too)."""
        style = "" if self.numbers == "named" else f"+{self.numbers}"
        if self.examples == "retrieved":
            from formalizers.milp.retrieval import bank_version

            return f"{prompt_version()}+bank-{bank_version()}{style}"
        if self.examples == "fixed":
            return prompt_version() + style
        return f"{prompt_version()}+no-examples{style}"

    def _revision_messages(self, request: str, feedback: Feedback | None) -> list[Message]:
        assert self._revision is not None
        previous, instruction = self._revision
        msgs: list[Message] = [
            {"role": "system", "content": system_prompt(self.numbers)},
            {
                "role": "user",
                "content": Template(_prompt("request.md")).substitute(request=request),
            },
            {"role": "assistant", "content": compact_json(previous)},
            {
                "role": "user",
                "content": Template(_prompt("revise.md")).substitute(instruction=instruction),
            },
        ]
        if feedback is not None:
            msgs += repair_turns("formalizers.milp", feedback)
        return msgs

    def revising(self, previous: dict[str, Any], instruction: str) -> MilpFormalizer:
        """A formalizer whose first attempt edits ``previous`` (a five-element model) as
        ``instruction`` says, instead of starting from the request."""
        other = MilpFormalizer(
            self.client, self.n_examples, self.examples, self.exclude, self.numbers
        )
        other._revision = (previous, instruction)
        return other

    def messages(self, request: str, feedback: Feedback | None = None) -> list[Message]:
        if self._revision is not None:
            return self._revision_messages(request, feedback)
        examples = examples_for(request, self.examples, self.n_examples, self.exclude)
        shown = inline_numbers if self.numbers == "inline" else dict
        shots = ((ex.request, compact_json(shown(ex.model))) for ex in examples)
        return few_shot_messages(
            "formalizers.milp", request, shots, feedback, system_prompt(self.numbers)
        )

    def formalize(
        self, request: str, feedback: Feedback | None = None, attempt: int = 1
    ) -> Artifact:
        messages = self.messages(request, feedback)
        if self._vary is None:
            reply, prov = ask(
                self.client,
                messages,
                attempt,
                self.version(),
                output=five_element_grammar_for(request),
            )
        else:
            t0 = time.perf_counter()
            seed = self._vary + attempt
            drawn = self.client.complete_n(
                messages, 1, VARY_TEMPERATURE, seed, output=five_element_grammar_for(request)
            )[0]
            elapsed = time.perf_counter() - t0
            reply = drawn.text
            prov = Provenance(
                "model",
                self.client.model_id,
                self.version(),
                attempt,
                grammar_id=drawn.grammar_id,
                elapsed_s=elapsed,
            )
        return self.read(reply, prov)

    def formalize_samples(
        self, request: str, k: int, temperature: float = 0.7, seed: int = 0, greedy: int = 0
    ) -> list[Artifact | ArtifactError]:
        """``k`` formalizations of ``request`` drawn at ``temperature`` with seeds ``seed``,
        ``seed + 1``..., the first ``greedy`` of them at temperature 0 (``Chat.complete_n``: one
        call where the model can share the prompt among samples): each an ``Artifact``, or the
        ``ArtifactError`` its reply raised (with the reply attached). ``NeedsInformation`` from a
        sample is raised."""
        t0 = time.perf_counter()
        replies = self.client.complete_n(
            self.messages(request),
            k,
            temperature,
            seed,
            output=five_element_grammar_for(request),
            greedy=greedy,
        )
        each = (time.perf_counter() - t0) / max(1, k)
        out: list[Artifact | ArtifactError] = []
        for reply in replies:
            prov = Provenance(
                "model",
                self.client.model_id,
                self.version(),
                1,
                grammar_id=reply.grammar_id,
                elapsed_s=each,
            )
            try:
                out.append(self.read(reply.text, prov))
            except ArtifactError as e:
                out.append(e)
        return out

    def read(self, reply: str, prov: Provenance) -> Artifact:
        """The five-element artifact in a model ``reply``; ``ArtifactError`` (carrying the
        reply) when it is unusable, ``NeedsInformation`` when the model asked questions."""
        with reading(reply):
            data = extract_json(reply)
            questions = asked_questions(data)
            if questions is not None:
                raise NeedsInformation(questions)
            model = five_element_from_data(data)
        return Artifact("milp", "five-element", model, reply, prov)
