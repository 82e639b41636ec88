"""Which kind a request is, and whether it is already formal.

Each kind in ``agent.kinds.KINDS`` brings a content test for its formal inputs and words that suggest
it in a natural-language request.
"""

from __future__ import annotations

import re

from agent.errors import InputError
from agent.kinds import KINDS
from agent.types import MAX_REQUEST_BYTES, Request, Route


def check_text(text: object) -> str:
    """Refuse input that is not usable text: not a string, empty, too large, or binary."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as e:
            raise InputError("the request is binary data, not UTF-8 text") from e
    if not isinstance(text, str):
        raise InputError(f"the request must be text, not {type(text).__name__}")
    if len(text.encode("utf-8", "surrogatepass")) > MAX_REQUEST_BYTES:
        raise InputError(
            f"the request is too large ({len(text):,} characters; at most {MAX_REQUEST_BYTES:,} bytes)"
        )
    if "\x00" in text or sum(ch < " " and ch not in "\t\n\r\f" for ch in text[:10_000]) > 10:
        raise InputError("the request looks like binary data, not text")
    if not text.strip():
        raise InputError("the request is empty")
    return text


FORMAL_FILE_SUFFIXES = (
    ".json", ".yaml", ".yml", ".lp", ".mps", ".pddl", ".vrp", ".tsp", ".vrptw", ".asp", ".clingo",
    ".gringo",
)  # fmt: skip
"""Suffixes of files that hold formal input (of some kind): with a forced kind such a file is read
as formal input even when its content does not look like that kind's."""

_WORD = re.compile(r"[a-z]+")


def route(request: Request) -> Route:
    """Decide the kind of ``request`` and whether it is formal input."""
    text = check_text(request.text)
    if request.kind:
        if request.kind not in KINDS:
            raise InputError(f"unknown kind {request.kind!r}; known kinds: {', '.join(KINDS)}")
        spec = KINDS[request.kind]
        # A file of words (request.md, a name without a suffix) stays words under a forced kind;
        # a file named as formal input is read as one, and refused by name if it does not read.
        formal = spec.is_formal(text, request.name) or request.name.lower().endswith(
            FORMAL_FILE_SUFFIXES
        )
        return Route(spec.name, formal, f"forced with kind={request.kind}")
    for spec in KINDS.values():
        if spec.is_formal(text, request.name):
            return Route(spec.name, True, f"recognised as a {spec.name} model by its content")
    low = text.lower()
    scores = {name: sum(w in low for w in spec.words) for name, spec in KINDS.items()}
    best = max(scores, key=lambda k: scores[k])
    if len(KINDS) == 1:
        return Route(
            best,
            False,
            f"natural language; {best} is the only kind of request this version formalizes",
        )
    return Route(best, False, f"natural language; keywords suggest {best}")
