"""The model layer's interface: ``Chat`` sends a conversation and returns a ``Reply``.

Callers (formalizers, the tools flow, the tool maker) depend on this protocol only, never on a
backend; ``agent.llm.client.ChatClient`` implements it over LangChain chat models. The output
constraint travels with each call (``output``: a ``agent.llm.grammar.Grammar`` or a staged grammar,
None for free text): the caller builds it, the model layer forwards it to the backend.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

Message = dict[str, str]
"""``{"role": "system" | "user" | "assistant", "content": ...}``"""


class Output(Protocol):
    """What a call may ask its reply to be: a ``Grammar`` (``format`` ``json_schema`` or ``ebnf``)
    or a staged grammar (``format`` ``staged``). ``id`` is a hash of its language (part of the
    reply cache key)."""

    @property
    def name(self) -> str: ...

    @property
    def format(self) -> str: ...

    @property
    def id(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Reply:
    """One reply of a model, with what its backend reported about it.

    ``model``: the model's id (``openai:gpt-4o-mini``); ``grammar_id``: the id of the ``output``
    the call asked for ("" for free text); ``constrained``: whether the backend was held to it
    (an EBNF or staged grammar cannot be sent to a served model: it is asked unconstrained);
    ``cut_off``: the model stopped before the reply ended (its token budget or time limit);
    ``finish``: why it stopped, as its backend said (``stop``, ``length``, ``eos``, ``time``...;
    "" when not reported); ``seconds``: the time the call took (shared evenly among samples drawn
    in one call; 0 from the cache); token counts as the server reported them (0 from the cache);
    ``cached``: answered from the reply cache."""

    text: str
    model: str
    grammar_id: str = ""
    constrained: bool = False
    cut_off: bool = False
    finish: str = ""
    seconds: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached: bool = False


@runtime_checkable
class Chat(Protocol):
    """A language model behind one id: ``complete`` answers a conversation once, ``complete_n``
    draws ``n`` replies at ``temperature`` (reply ``i`` with seed ``seed + i``; the first
    ``greedy`` of them at temperature 0)."""

    @property
    def model_id(self) -> str: ...

    def complete(self, messages: list[Message], output: Output | None = None) -> Reply: ...

    def complete_n(
        self,
        messages: list[Message],
        n: int,
        temperature: float,
        seed: int = 0,
        output: Output | None = None,
        greedy: int = 0,
    ) -> list[Reply]: ...
