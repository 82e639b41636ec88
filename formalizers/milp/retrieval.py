"""Worked examples chosen for a request: the nearest models of the example bank, never the request's own.

The bank (``bank/nl4opt_dev.json``, written by ``python -m benchmarks.nl4opt --write-bank``) holds
checked five-element models of word problems. ``retrieve`` ranks them by Okapi BM25 over the
requests' content words and skips any whose id is excluded or whose text is nearly the request's
own (the same words, numbers aside: a benchmark item must not be shown its own answer, nor a copy
of it with the numbers changed). BM25 is a few lines over word counts: the bank is ~100 short texts.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

BANK = "nl4opt_dev.json"
NEAR_IDENTICAL = 0.8
"""Jaccard similarity of two texts' word sets (numbers left out) at or above which they are taken
for the same problem."""

_WORD = re.compile(r"[a-z][a-z'-]*")
_STOP = frozenset(
    "a an the and or of to in on for with by at from as is are be been being was were it its this "
    "that these those there their they them he she his her we our you your can could should would "
    "will must may each per every if then than so such how many much what which who whom while "
    "also only not no any all both either".split()
)
K1, B = 1.5, 0.75
"""BM25's term-frequency saturation and length normalisation (the usual values)."""


@dataclass(frozen=True, slots=True)
class BankExample:
    """One bank entry: ``id`` (the dataset's id), the ``request`` text, its checked five-element
    ``model`` (JSON data) and that model's ``optimum``."""

    id: str
    request: str
    model: dict[str, Any]
    optimum: float


def terms(text: str) -> list[str]:
    """The content words of ``text`` for ranking: lower case, common words out, a plural ``s`` cut
    (``chairs`` and ``chair`` are one term). Numbers are left out: they say nothing of the topic."""
    out = []
    for w in _WORD.findall(text.lower()):
        if w in _STOP or len(w) < 2:
            continue
        if len(w) > 3 and w.endswith("s") and not w.endswith("ss"):
            w = w[:-1]
        out.append(w)
    return out


def near_identical(a: str, b: str) -> bool:
    """Whether two requests state the same problem: their word sets (numbers aside) overlap by
    ``NEAR_IDENTICAL`` or more (Jaccard)."""
    wa, wb = set(terms(a)), set(terms(b))
    if not wa or not wb:
        return " ".join(a.split()) == " ".join(b.split())
    return len(wa & wb) / len(wa | wb) >= NEAR_IDENTICAL


class Bm25:
    """Okapi BM25 over a fixed list of documents (each a list of terms)."""

    def __init__(self, docs: Iterable[list[str]]) -> None:
        self.tf = [Counter(d) for d in docs]
        self.lengths = [sum(c.values()) for c in self.tf]
        n = len(self.tf)
        self.avg = sum(self.lengths) / n if n else 0.0
        df: Counter[str] = Counter()
        for c in self.tf:
            df.update(c.keys())
        # The +1 inside the log keeps every idf positive (a word in most documents still counts a
        # little, never against a match).
        self.idf = {t: math.log((n - f + 0.5) / (f + 0.5) + 1.0) for t, f in df.items()}

    def scores(self, query: list[str]) -> list[float]:
        out = []
        q = Counter(query)
        for tf, length in zip(self.tf, self.lengths, strict=True):
            s = 0.0
            norm = K1 * (1 - B + B * length / self.avg) if self.avg else K1
            for t, qn in q.items():
                f = tf.get(t)
                if f:
                    s += qn * self.idf[t] * f * (K1 + 1) / (f + norm)
            out.append(s)
        return out


@cache
def _bank_text() -> str:
    return resources.files("formalizers.milp").joinpath("bank", BANK).read_text(encoding="utf-8")


@cache
def load_bank() -> tuple[BankExample, ...]:
    """The bank's examples, in file order."""
    data = json.loads(_bank_text())
    return tuple(
        BankExample(str(e["id"]), e["request"], e["model"], float(e["optimum"]))
        for e in data["items"]
    )


def bank_version() -> str:
    """A short hash of the bank file: it changes whenever an example does."""
    return hashlib.sha256(_bank_text().encode()).hexdigest()[:8]


@cache
def _index() -> Bm25:
    return Bm25(terms(e.request) for e in load_bank())


def retrieve(request: str, k: int, exclude: Iterable[str] = ()) -> list[BankExample]:
    """The ``k`` bank examples nearest to ``request`` by BM25, best first (ties by id), leaving out
    the ids in ``exclude`` and any example whose text is nearly ``request`` itself."""
    if k <= 0:
        return []
    excluded = {str(x) for x in exclude}
    bank = load_bank()
    scores = _index().scores(terms(request))
    ranked = sorted(range(len(bank)), key=lambda i: (-scores[i], bank[i].id))
    out: list[BankExample] = []
    for i in ranked:
        ex = bank[i]
        if ex.id in excluded or near_identical(ex.request, request):
            continue
        out.append(ex)
        if len(out) == k:
            break
    return out
