"""The domain library: known planning domains shipped as package data.

Each domain folder holds ``domain.pddl``, ``description.md`` (the domain in words), one worked example
(``example.nl``, ``example.pddl``, ``example.sol``) and ``templates.json`` (a sentence per action, for
explaining plans).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

from formalizers.pddl.model import Domain, read_domain

_WORD = re.compile(r"[a-z]{3,}")
_STOP = frozenset(
    "the and for are you your with that this from can has have must will how what which not but all any "
    "its into than then they their there these those was were who one two three four five six seven eight "
    "nine ten should would could each also other some such only when where while after before over under "
    "turn make want need goal".split()
)


@dataclass(frozen=True, slots=True)
class LibraryDomain:
    """A known domain: ``key`` is the folder name (``blocksworld``); ``name`` the PDDL name."""

    key: str
    name: str
    text: str
    description: str
    example_request: str
    example_problem: str
    example_plan: str
    templates: dict[str, str]

    @property
    def domain(self) -> Domain:
        return _parsed(self.key)


@cache
def library() -> dict[str, LibraryDomain]:
    """Every shipped domain by key."""
    out = {}
    root = resources.files("formalizers.pddl").joinpath("domains")
    for entry in sorted(root.iterdir(), key=lambda p: p.name):
        if not entry.is_dir():
            continue

        def read(name: str, folder=entry) -> str:
            return folder.joinpath(name).read_text(encoding="utf-8")

        text = read("domain.pddl")
        dom = read_domain(text)
        out[entry.name] = LibraryDomain(
            entry.name,
            dom.name,
            text,
            read("description.md").strip(),
            read("example.nl").strip(),
            read("example.pddl").strip(),
            read("example.sol").strip(),
            json.loads(read("templates.json")),
        )
    return out


@cache
def _parsed(key: str) -> Domain:
    return read_domain(library()[key].text)


def find(name: str) -> LibraryDomain | None:
    """A domain by folder key or PDDL name (case-insensitive)."""
    low = name.strip().lower()
    for d in library().values():
        if low in (d.key, d.name):
            return d
    return None


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP}


def rank(request: str) -> list[tuple[float, LibraryDomain]]:
    """Domains ordered by how well their description and example match ``request`` (word overlap
    with the request, weighted towards the domain's own vocabulary)."""
    words = _words(request)
    scored = []
    for d in library().values():
        vocab = _words(d.description + " " + d.example_request)
        vocab |= {w for p in d.domain.predicates for w in re.split(r"[-_]", p) if len(w) >= 3}
        vocab |= {w for a in d.domain.actions for w in re.split(r"[-_]", a) if len(w) >= 3}
        score = (
            len(words & vocab) / (len(words) ** 0.5 * len(vocab) ** 0.5) if words and vocab else 0.0
        )
        scored.append((score, d))
    scored.sort(key=lambda s: (-s[0], s[1].key))
    return scored


def pick(request: str, threshold: float = 0.2) -> LibraryDomain | None:
    """The best-matching domain, or None when none matches well enough."""
    ranked = rank(request)
    return ranked[0][1] if ranked and ranked[0][0] >= threshold else None
