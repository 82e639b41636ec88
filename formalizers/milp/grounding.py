"""Grounding: does a five-element model say what the request says? Checked without a language model.

Verification checks a solution against the model; nothing there notices a model that solves
cleanly but contradicts the text (an oven of 50 hours where the request said 480 minutes). Two
checks tie the model to the request's numbers:

- every number the model uses (parameter values, bounds, literals in the objective and the
  constraints) is a quantity the request states, or is derived from them: a percentage as a
  fraction (70% is 0.7), a word ("a third" is 1/3, "twice" is 2), a sum, difference, product or
  ratio of two stated numbers, one minus a stated fraction, or a stated number converted by a
  common unit factor (60, 100, 1000...); 0 and 1 are always allowed;
- every quantity the request states is in the model: as itself, as a fraction or percentage, one
  minus it, converted by 60, 100 or 1000, or as one of the two numbers a computed model number
  came from; or it is named there (a parameter declared and left unused is a number the model set
  aside on purpose; a number in a product's name such as "Aleph 3" may be part of a name).

The agent reports the outcome beside "verified" (``Answer.grounding``); with the request option
``grounding = "repair"`` a verified but ungrounded model also goes back to the model, each number
named.

Numbers match within a relative 1e-6, or within the rounding of the model's own digits when it
wrote at least two decimals (0.33 for a third).
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass
from typing import Any

from formalizers.milp.expr import (
    BinOp,
    BoolOp,
    Compare,
    InSet,
    Neg,
    Node,
    Not,
    Num,
    Ref,
    Sum,
    parse_constraint,
    parse_expression,
)
from formalizers.milp.model import FiveElementModel

REL_TOL = 1e-6
UNIT_FACTORS = (60.0, 100.0, 1000.0, 24.0, 7.0, 12.0, 52.0, 365.0)
"""Conversions a model may apply to a stated number (minutes per hour, percent, grams per kg,
hours per day, days per week, months or weeks per year)."""
ACCOUNTING_FACTORS = (60.0, 100.0, 1000.0)
"""The conversions by which a stated quantity counts as used (the others make too many small
numbers look used by chance: 5 * 12 is the 60 of another sentence)."""

UNIT_WORDS = {
    "zero": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}
SCALE_WORDS = {"hundred": 100, "thousand": 1_000, "million": 1_000_000, "billion": 1_000_000_000}
FRACTION_WORDS = {
    "half": 0.5,
    "third": 1 / 3,
    "thirds": 1 / 3,
    "quarter": 0.25,
    "quarters": 0.25,
    "fourth": 0.25,
    "fifth": 0.2,
    "twice": 2.0,
    "double": 2.0,
    "thrice": 3.0,
    "triple": 3.0,
    "dozen": 12.0,
}
_NUMBER = re.compile(
    r"(?<![A-Za-z0-9_.])(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
    r"(?P<tail>\s*(?:%|percent\b|per\s*cent\b))?"
    r"(?P<glued>-?[A-Za-z])?"
)
_WORD_RUN = re.compile(
    r"\b(?:(?:"
    + "|".join(list(UNIT_WORDS) + list(SCALE_WORDS))
    + r")(?:[\s-]+(?:and[\s-]+)?)?)+\b",
    re.IGNORECASE,
)
_FRACTION_WORD = re.compile(r"\b(" + "|".join(FRACTION_WORDS) + r")\b", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Quantity:
    """A number the request states: ``text`` as written, ``values`` it may stand for (30% is 30
    and 0.3)."""

    text: str
    values: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class ModelNumber:
    """A number the model uses, and ``where`` (``parameter 'budget'``)."""

    where: str
    value: float
    written: str


@dataclass(frozen=True, slots=True)
class Grounding:
    """The outcome of the checks: ``invented`` numbers of the model no stated quantity gives, and
    ``unused`` quantities of the request the model neither uses nor names."""

    invented: tuple[ModelNumber, ...] = ()
    unused: tuple[Quantity, ...] = ()
    checked: int = 0

    @property
    def ok(self) -> bool:
        return not self.invented and not self.unused

    def feedback(self) -> str:
        """The text for the model: each number named, with what to do."""
        lines = []
        for m in self.invented:
            lines.append(
                f"- {m.where} is {m.written}, a number the request does not state (nor a "
                "percentage, sum, product or ratio of its numbers): copy the request's number"
            )
        for q in self.unused:
            lines.append(
                f"- the request states {q.text!r}, which the model does not use: use it where it "
                "belongs, or declare it as a parameter whose description says why it is not needed"
            )
        head = "the model's numbers do not match the request's:"
        return "\n".join([head, *lines])

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "invented": [{"where": m.where, "value": m.value} for m in self.invented],
            "unused": [q.text for q in self.unused],
        }


def words_value(words: str) -> float | None:
    """The number spelled by ``words`` (``one hundred and twenty``), ``None`` when it holds no
    number word; words that are not number words are skipped."""
    total, current, seen = 0, 0, False
    for w in re.split(r"[\s-]+", words.lower()):
        if not w or w == "and":
            continue
        if w in UNIT_WORDS:
            current += UNIT_WORDS[w]
            seen = True
        elif w in SCALE_WORDS:
            current = max(current, 1) * SCALE_WORDS[w]
            seen = True
            if SCALE_WORDS[w] >= 1000:
                total, current = total + current, 0
    return float(total + current) if seen else None


def request_quantities(text: str) -> list[Quantity]:
    """The quantities ``text`` states: numerals (``4,000``, ``$2.5``, ``30%``), number words
    (``twenty``, ``one hundred thousand``) and the words for fractions and multiples (``a
    third``, ``twice``). A numeral glued to letters (``2-piece``, ``x1``) is part of a name."""
    out: list[Quantity] = []
    for m in _NUMBER.finditer(text):
        if m.group("glued"):
            continue
        v = float(m.group("num").replace(",", ""))
        if m.group("tail"):
            out.append(Quantity(m.group(0).strip(), (v / 100, v)))
        else:
            out.append(Quantity(m.group("num"), (v,)))
    for m in _WORD_RUN.finditer(text):
        w = words_value(m.group(0))
        if w is None:
            continue
        rest = text[m.end() : m.end() + 12].lower()
        if re.match(r"\s*(%|percent\b|per\s*cent\b)", rest):
            out.append(Quantity(m.group(0).strip() + " percent", (w / 100, w)))
        else:
            out.append(Quantity(m.group(0).strip(), (w,)))
    for m in _FRACTION_WORD.finditer(text):
        out.append(Quantity(m.group(0), (FRACTION_WORDS[m.group(0).lower()],)))
    return out


def _literals(node: Node, skip_indices: bool = True) -> list[float]:
    """The numeric literals of an expression (not those inside an index ``x[t - 1]``, nor a
    condition's: they count members, not quantities)."""
    if isinstance(node, Num):
        return [node.value]
    if isinstance(node, Ref):
        return []
    if isinstance(node, BinOp):
        if node.op == "^":
            return _literals(node.left)
        return _literals(node.left) + _literals(node.right)
    if isinstance(node, Neg | Not):
        return _literals(node.operand)
    if isinstance(node, Sum):
        return _literals(node.body)
    if isinstance(node, Compare):
        return [v for o in node.operands for v in _literals(o)]
    if isinstance(node, BoolOp):
        return [v for o in node.values for v in _literals(o)]
    if isinstance(node, InSet):
        return []
    return []


def _flatten(values: Any) -> list[float]:
    if isinstance(values, dict):
        return [v for x in values.values() for v in _flatten(x)]
    if isinstance(values, list):
        return [v for x in values for v in _flatten(x)]
    if isinstance(values, int | float) and not isinstance(values, bool):
        return [float(values)]
    return []


def _written(v: float) -> str:
    return f"{v:g}" if abs(v) >= 1e-4 or v == 0 else repr(v)


def model_numbers(model: FiveElementModel) -> list[ModelNumber]:
    """Every number ``model`` uses, with where it is."""
    out: list[ModelNumber] = []

    def add(where: str, v: float) -> None:
        if math.isfinite(v):
            out.append(ModelNumber(where, v, _written(v)))

    for p in model.parameters:
        for v in [p.value] if p.value is not None else _flatten(p.values):
            add(f"parameter '{p.name}'", float(v))
        if p.default is not None:
            add(f"parameter '{p.name}' (default)", float(p.default))
    for var in model.variables:
        for side, bound in (("lower", var.lower), ("upper", var.upper)):
            if side == "lower" and bound == 0:
                continue  # the default
            if isinstance(bound, int | float):
                add(f"the {side} bound of variable '{var.name}'", float(bound))
            elif isinstance(bound, str):
                for v in _literals(parse_expression(bound)):
                    add(f"the {side} bound of variable '{var.name}'", v)
    for v in _literals(parse_expression(model.objective.expression)):
        add("the objective", v)
    for c in model.constraints:
        for v in _literals(parse_constraint(c.expression)):
            add(f"constraint '{c.name}'", v)
    return out


def _close(x: float, y: float, digits: int) -> bool:
    if abs(x - y) <= REL_TOL * max(1.0, abs(x), abs(y)):
        return True
    # A value written with two or more decimals may be a rounding (0.33 for a third).
    return digits >= 2 and abs(x - y) <= 0.5 * 10.0**-digits + 1e-12


def _decimals(v: float) -> int:
    text = repr(abs(v))
    if "e" in text or "." not in text:
        return 0
    return len(text.split(".")[1].rstrip("0"))


def derived_values(stated: list[float]) -> list[float]:
    """What a model may compute from the stated numbers (see the module docstring)."""
    base = sorted({abs(v) for v in stated} | {0.0, 1.0})
    out = set(base)
    for v in base:
        if 0 < v < 1:
            out.add(1 - v)
        for f in UNIT_FACTORS:
            out.update((v * f, v / f))
        if v:
            out.add(1 / v)
    for a, b in itertools.combinations_with_replacement(base, 2):
        out.update((a + b, abs(a - b), a * b))
        if b:
            out.add(a / b)
        if a:
            out.add(b / a)
    return sorted(out)


def check(model: FiveElementModel, request: str) -> Grounding:
    """The grounding of ``model`` in the words of ``request`` (see the module docstring)."""
    quantities = request_quantities(request)
    stated = [v for q in quantities for v in q.values]
    allowed = derived_values(stated)
    numbers = model_numbers(model)
    invented = []
    for m in numbers:
        x, digits = abs(m.value), _decimals(m.value)
        if not any(_close(x, y, digits) for y in _candidates(allowed, x)):
            invented.append(m)
    used = [abs(m.value) for m in numbers]
    # A model number that is no stated number (nor one converted) was computed from two of them:
    # only such numbers account for the quantities they were computed from.
    computed = [u for u in used if not any(_single(u, v) for v in stated)]
    names = _name_numbers(model)
    counts = {float(len(s.members)) for s in model.sets} | {float(len(model.variables))}
    unused = []
    seen_text: set[str] = set()
    for q in quantities:
        if q.text in seen_text:
            continue
        if any(v in (0.0, 1.0) or v in counts for v in q.values):
            continue
        if any(_accounted(v, used, computed, stated) for v in q.values) or any(
            _close(v, n, 0) for v in q.values for n in names
        ):
            continue
        seen_text.add(q.text)
        unused.append(q)
    return Grounding(tuple(invented), tuple(unused), len(numbers))


def _candidates(allowed: list[float], x: float) -> list[float]:
    """The allowed values near ``x`` (a window of the sorted list: the list can hold thousands)."""
    import bisect

    lo = bisect.bisect_left(allowed, x * (1 - 1e-3) - 0.01)
    hi = bisect.bisect_right(allowed, x * (1 + 1e-3) + 0.01)
    return allowed[lo:hi]


def _single(u: float, v: float) -> bool:
    """Whether model number ``u`` is stated value ``v`` itself, as a fraction or percentage, one
    minus it, or converted by a unit factor."""
    d = _decimals(u)
    if _close(u, v, d):
        return True
    if v and (
        _close(u, v / 100, d) or _close(u, v * 100, 0) or (0 < v < 1 and _close(u, 1 - v, d))
    ):
        return True
    return any(_close(u, v * f, 0) or _close(u, v / f, d) for f in ACCOUNTING_FACTORS)


def _accounted(v: float, used: list[float], computed: list[float], stated: list[float]) -> bool:
    """Whether stated value ``v`` is in the model (``_single``), or went into a number the model
    computed from it and another stated value."""
    if any(_single(u, v) for u in used):
        return True
    for u in computed:
        for w in stated:
            if w == v:
                continue
            pair = (v + w, abs(v - w), v * w)
            ratios = (v / w if w else math.inf, w / v if v else math.inf)
            if any(_close(u, p, 0) for p in pair) or any(
                _close(u, r, _decimals(u)) for r in ratios
            ):
                return True
    return False


_DIGITS = re.compile(r"\d+(?:\.\d+)?")


def _name_numbers(model: FiveElementModel) -> list[float]:
    """Numbers written inside the model's names, members and descriptions."""
    texts: list[str] = [model.name, model.description]
    for s in model.sets:
        texts += [s.name, s.description, *(str(m) for m in s.members)]
    for p in model.parameters:
        texts += [p.name, p.description]
    for var in model.variables:
        texts += [var.name, var.description]
    texts += [c.name for c in model.constraints]
    return [float(d) for t in texts for d in _DIGITS.findall(t or "")]
