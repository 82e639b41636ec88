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

A third check ties the numbers to the words around them (``misattributions``): a constraint (or a
variable bound) that uses a quantity stated in exactly one sentence, as a literal or through a
parameter, must constrain a variable that sentence names. The request is split into sentences;
names are split into words (on ``_``, digits and camelCase, lowercased, a simple singular:
``max_baguettes`` is "max" and "baguette"), an indexed variable is also named by its index
members. A number is misattributed when the words near it in its sentence (up to ``NEAR`` words
either side, not past another number) name one of the model's variables, the sentence names none
of the variables the constraint uses, and the parameter carrying it does not name one of them
either: ``croissants <= max_baguettes`` with 60 from "The bakery can sell at most 60 baguettes a
day". The check is conservative (a sentence naming both variables judges neither; a number in two
sentences is not judged): no alarm on the example bank's 94 verified models. Within a constraint
that does use the sentence's variable, each term's per-unit number is judged the same way
(``_term_misattributions``): ``0.5 * lemonade + 0.2 * brownies <= 10`` from "A pitcher of lemonade
takes 0.5 hours of John's time along with 0.2 hours of William's time" puts lemonade's 0.2 on
brownies.

A fourth reads each constraint against the sentence it comes from (``contradictions``): a limit
written the other way round from its words ("at least 160 grams" as ``<= 160``), a share too ("at
most 30% of the cans be large" as ``large >= 0.3 * (large + small)``) and a multiple ("at least
twice as many vanilla shakes as chocolate shakes" as ``2 * vanilla >= chocolate``); a constraint
whose description quotes one sentence while its limit is another's and the quoted number is used
nowhere in it (nor in another constraint that quotes it too: then only the description is
loose); a description whose numbers or words the request never states (copied from a few-shot
example); two units of one dimension (50 g, 4 kg) in one constraint with neither
converted; a per-unit number left out of the one expression that holds its kind for the other
variables ("a baguette 5 minutes" missing from ``3 * croissants <= 480``: ``_owner`` says whose
number it is); an objective of the other sense from the one the request asks for ("what is the
minimum total return" written ``maximize``: ``asked_sense``); a total bounded on one of its parts
("the total number of shifts is at least 10" as ``X >= 10``). Each says what the request says and,
where one edit fixes it, the edit. No alarm on
the bank's 94 models, nor on the real 1.5B model's right answers of the first 25 NL4Opt dev items
of a sample; 10 of its 11 wrong answers that solved are caught (before: 3). Of the bank's
terms dropped one at a time (227), the left-out-term reading puts 85 back, each to the bank's optimum,
and makes no wrong edit (``tests/formalizers/milp/test_grounding_readings.py``).

The agent reports the outcome beside "verified" (``Answer.grounding``); with the request option
``grounding = "repair"`` a verified but ungrounded model also goes back to the model, each number
named (a misattributed one with the sentence it comes from); with ``"amend"`` (the default) the
contradictions' own edits (``Contradiction.edits``) are made first, without a model, and the
edited model (``amended``) is kept only when it solves, verifies and passes these checks.

Numbers match within a relative 1e-6, or within the rounding of the model's own digits when it
wrote at least two decimals (0.33 for a third).
"""

from __future__ import annotations

import functools
import itertools
import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from formalizers.milp.expr import (
    BinOp,
    BoolOp,
    Compare,
    InSet,
    Name,
    Neg,
    Node,
    Not,
    Num,
    Ref,
    Str,
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
class Misattribution:
    """A stated quantity used on variables its sentence does not name: ``where`` in the model
    (``constraint 'oven_cap'``), the ``variables`` it constrains there, the ``number`` as the model
    carries it (``60`` or ``max_baguettes = 60``), the ``quantity`` as the request states it, the
    ``sentence`` it comes from and the variables that sentence is ``about``."""

    where: str
    variables: tuple[str, ...]
    number: str
    quantity: str
    sentence: str
    about: tuple[str, ...]
    suggestion: str = ""
    """The edit that attaches the number where its sentence puts it, when that is one renaming
    (a constraint on one plain variable whose number's words name one other): the constraint's
    expression with the variable renamed, or the variable the bound belongs on."""
    term: bool = False
    """Whether the number is one term's coefficient (``0.2 * brownies``) on the wrong variable of
    a constraint that also uses the right one (``_term_misattributions``)."""

    def text(self) -> str:
        if self.term:
            said = f"in the {self.where}, {self.number} multiplies {_and(self.variables)}"
        elif self.where.startswith("constraint"):
            verb = "bounds" if len(self.variables) == 1 else "constrains"
            said = f"the {self.where} {verb} {_and(self.variables)} with {self.number}"
        else:
            said = f"the {self.where} is {self.number}"
        return (
            f'{said}, but {self.quantity} comes from "{self.sentence}", which is about '
            f"{_and(self.about)}"
        )


@dataclass(frozen=True, slots=True)
class Grounding:
    """The outcome of the checks: ``invented`` numbers of the model no stated quantity gives,
    ``unused`` quantities of the request the model neither uses nor names, and ``misattributed``
    quantities, used on variables their sentence does not name."""

    invented: tuple[ModelNumber, ...] = ()
    unused: tuple[Quantity, ...] = ()
    checked: int = 0
    misattributed: tuple[Misattribution, ...] = ()
    contradicted: tuple[Contradiction, ...] = ()

    @property
    def ok(self) -> bool:
        return (
            not self.invented
            and not self.unused
            and not self.misattributed
            and not self.contradicted
        )

    @property
    def findings(self) -> int:
        """How many things the checks found: the agent keeps, of the verified answers that are
        not grounded, the one with the fewest."""
        return (
            len(self.invented) + len(self.unused) + len(self.misattributed) + len(self.contradicted)
        )

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
        for a in self.misattributed:
            fix = f": {a.suggestion}" if a.suggestion else ""
            lines.append(f"- {a.text()}: attach the number to what its sentence is about{fix}")
        for c in self.contradicted:
            lines.append(f"- {c.text()}" + (f": {c.fix}" if c.fix else ""))
        head = "the model's numbers do not match the request's:"
        return "\n".join([head, *lines])

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "invented": [{"where": m.where, "value": m.value} for m in self.invented],
            "unused": [q.text for q in self.unused],
            "misattributed": [a.text() for a in self.misattributed],
            "contradicted": [c.text() for c in self.contradicted],
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
    request = plain_text(request)
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
    misattributed = tuple(misattributions(model, request))
    contradicted = tuple(contradictions(model, request))
    return Grounding(tuple(invented), tuple(unused), len(numbers), misattributed, contradicted)


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


# -- names: a stated number and the variables it constrains come from the same sentence ----------

_SENTENCE_END = re.compile(
    r"(?<=[.!?])\s+(?=[A-Z0-9$\"'(])|\n\s*\n|(?<=[.!?:;,])[ \t]*\n\s*|\n\s*(?=[-*\u2022]\s|[A-Z0-9(])"
)
"""Where a sentence ends: sentence punctuation before a capital, a blank line, and a line break
after punctuation or before a list item or a capital (a line wrapped mid-sentence is joined)."""
_ESCAPED_NEWLINE = re.compile(r"\\n(?!(?:e|eq|eg|u|abla|ewline|ot|otin|mid|leq|geq|parallel)\b)")
"""A line break written as the two characters backslash and n (469 of Mamo EasyLP's 642 texts
have them, and no real one), not a LaTeX command such as ``\\neq``."""


def plain_text(request: str) -> str:
    """``request`` with its escaped line breaks made real ones."""
    return _ESCAPED_NEWLINE.sub("\n", request)


_WORD = re.compile(r"[A-Za-z]+")
_CAMEL = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+")
_FUNCTION_WORDS = frozenset(
    "a an and are as at be by each for from in is it its of on or per the to with".split()
)
"""Words too common to name anything (a variable ``x_of_a`` is not named by every "of")."""


def sentences(text: str) -> list[str]:
    """The sentences of ``text``, each on one line with single spaces (a decimal point such as
    ``$1.20`` ends none; a blank line, a list item and an escaped line break end one)."""
    return [" ".join(s.split()) for s in _SENTENCE_END.split(plain_text(text)) if s.strip()]


def singular(word: str) -> str:
    """A simple singular of a lowercase word: ``baguettes`` -> ``baguette``, ``boxes`` -> ``box``,
    ``batteries`` -> ``battery``; words in ``ss``, ``us`` and ``is`` are left as they are."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("ches", "shes", "xes", "sses", "zes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def name_tokens(text: str) -> frozenset[str]:
    """The words of a name or a sentence: split on anything not a letter (``_``, digits, spaces)
    and on camelCase, lowercased, singular, without one-letter and function words."""
    out = set()
    for run in _WORD.findall(text):
        for part in _CAMEL.findall(run):
            w = singular(part.lower())
            if len(w) > 1 and w not in _FUNCTION_WORDS:
                out.add(w)
    return frozenset(out)


@dataclass(frozen=True, slots=True)
class _Use:
    """A variable as a constraint uses it: ``members`` per index position (None: any member)."""

    var: str
    members: tuple[tuple[str, ...] | None, ...]


@dataclass(frozen=True, slots=True)
class _Carried:
    """A number in a constraint: its ``value``, as ``written`` there, and the ``parameter`` that
    carries it (empty for a literal)."""

    value: float
    written: str
    parameter: str = ""


class _Names:
    """The model's variables with the words that name them: their own and their index members'."""

    def __init__(self, model: FiveElementModel) -> None:
        members = {s.name: [str(m) for m in s.members] for s in model.sets}
        self.own = {v.name: name_tokens(v.name) for v in model.variables}
        self.index = {v.name: [members.get(i, []) for i in v.index] for v in model.variables}
        self.member_tokens = {m: name_tokens(m) for ms in members.values() for m in ms}

    def named_by(self, use: _Use, words: frozenset[str]) -> bool:
        """Whether ``words`` name the variable of ``use`` (or one of the members it may take)."""
        if self.own.get(use.var, frozenset()) & words:
            return True
        for k, allowed in enumerate(self.index.get(use.var, [])):
            chosen = use.members[k] if k < len(use.members) else None
            for m in allowed if chosen is None else chosen:
                if self.member_tokens.get(m, name_tokens(m)) & words:
                    return True
        return False

    def named_apart(self, use: _Use, words: frozenset[str]) -> bool:
        """``named_by`` on the words of the variable's name that no other variable's name has
        ("Liquid waste requires..." names ``liquid_waste``, not ``solid_waste``); on all its
        words when every one is shared."""
        own = self.own.get(use.var, frozenset())
        others = frozenset().union(*(w for v, w in self.own.items() if v != use.var))
        if own - others and not self.index.get(use.var):
            return bool((own - others) & words)
        return self.named_by(use, words)

    def about(self, words: frozenset[str]) -> list[str]:
        """The variables (or a variable's members, ``x[baguette]``) that ``words`` name."""
        out = []
        for var, own in self.own.items():
            if own & words:
                out.append(var)
                continue
            for allowed in self.index[var]:
                out += [f"{var}[{m}]" for m in allowed if self.member_tokens[m] & words]
        return out


def _walk(node: Node) -> Any:
    """Every node of an expression, indices and conditions included."""
    yield node
    children: tuple[Node, ...] = ()
    if isinstance(node, Ref):
        children = node.indices
    elif isinstance(node, BinOp):
        children = (node.left, node.right)
    elif isinstance(node, Neg | Not):
        children = (node.operand,)
    elif isinstance(node, Sum):
        children = (node.body,) if node.cond is None else (node.body, node.cond)
    elif isinstance(node, Compare):
        children = node.operands
    elif isinstance(node, BoolOp):
        children = node.values
    elif isinstance(node, InSet):
        children = (node.item,)
    for child in children:
        yield from _walk(child)


def _literal_index(node: Node) -> str | None:
    if isinstance(node, Str):
        return node.value
    if isinstance(node, Num) and node.value == int(node.value):
        return str(int(node.value))
    return None


def _entries(values: Any, keys: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], float]]:
    """The numbers of indexed parameter data with the members that key them."""
    if isinstance(values, dict):
        return [e for k, x in values.items() for e in _entries(x, (*keys, str(k)))]
    if isinstance(values, list):
        return [e for i, x in enumerate(values) for e in _entries(x, (*keys, str(i)))]
    if isinstance(values, int | float) and not isinstance(values, bool):
        return [(keys, float(values))]
    return []


def _uses_and_numbers(node: Node, model: FiveElementModel) -> tuple[list[_Use], list[_Carried]]:
    """The variables ``node`` uses and the numbers it uses: its literals (not those of an index or
    a condition: they count members) and its parameters' values."""
    variables = {v.name for v in model.variables}
    params = {p.name: p for p in model.parameters}
    uses: list[_Use] = []
    numbers = [_Carried(v, _written(v)) for v in _literals(node)]
    for n in _walk(node):
        if isinstance(n, Name | Ref):
            name = n.id
            picked = tuple(_literal_index(i) for i in n.indices) if isinstance(n, Ref) else ()
            if name in variables:
                uses.append(_Use(name, tuple(None if m is None else (m,) for m in picked)))
            elif name in params:
                p = params[name]
                if p.value is not None:
                    v = float(p.value)
                    numbers.append(_Carried(v, f"{name} = {_written(v)}", name))
                    continue
                for keys, v in _entries(p.values):
                    if all(m is None or m == k for m, k in zip(picked, keys, strict=False)):
                        shown = f"{name}[{', '.join(keys)}] = {_written(v)}"
                        numbers.append(_Carried(v, shown, name))
    return uses, numbers


def misattributions(model: FiveElementModel, request: str) -> list[Misattribution]:
    """The stated quantities the model uses on variables their sentence does not name.

    A constraint's (or a variable bound's) number that the request states in exactly one sentence
    is judged against that sentence: it is misattributed when the sentence names at least one of
    the model's variables (by a word of its name or of its index members), names none of the
    variables the constraint uses, and the parameter carrying the number (if one does) does not
    name one of them either (``max_croissants`` on croissants is the model's own reading)."""
    where_stated: list[tuple[float, int, str]] = []
    texts = sentences(request)
    counts: list[int] = []  # how many quantities each sentence states
    for i, s in enumerate(texts):
        quantities = request_quantities(s)
        counts.append(len(quantities))
        for q in quantities:
            where_stated += [(v, i, q.text) for v in q.values if v not in (0.0, 1.0)]
    if not where_stated:
        return []
    names = _Names(model)
    words = [name_tokens(s) for s in texts]
    parsed = [(c, parse_constraint(c.expression)) for c in model.constraints]
    pieces: list[tuple[str, Node, list[_Use], str]] = []
    for c, compare in parsed:
        pieces.append((f'constraint "{c.name}"', compare, [], c.expression))
    for var in model.variables:
        use = _Use(var.name, ())
        for side, bound in (("lower", var.lower), ("upper", var.upper)):
            if bound is None or (side == "lower" and bound == 0):
                continue
            node = Num(float(bound)) if not isinstance(bound, str) else parse_expression(bound)
            pieces.append((f"{side} bound of {var.name}", node, [use], ""))
    plain = {v.name for v in model.variables if not v.index}
    out: list[Misattribution] = []
    for where, node, given, expression in pieces:
        uses, numbers = _uses_and_numbers(node, model)
        uses += given
        if not uses:
            continue
        judged: set[float] = set()
        for n in numbers:
            x, digits = abs(n.value), _decimals(n.value)
            stated = [(i, t) for v, i, t in where_stated if _close(x, v, digits)]
            if x in judged or len({i for i, _ in stated}) != 1:
                continue
            judged.add(x)
            i, quantity = stated[0]
            about = names.about(_near(texts[i], quantity))
            if not about or any(names.named_by(u, words[i]) for u in uses):
                continue
            if n.parameter and any(names.named_by(u, name_tokens(n.parameter)) for u in uses):
                continue
            shown = tuple(dict.fromkeys(_shown(u) for u in uses))
            sentence = texts[i].rstrip(".!?;: ")
            fix = _suggestion(expression, uses, tuple(about), plain)
            out.append(
                Misattribution(where, shown, n.written, quantity, sentence, tuple(about), fix)
            )
    already = {(a.where, a.quantity) for a in out}
    out += [
        a
        for a in _term_misattributions(model, parsed, texts, counts, words, where_stated, names)
        if (a.where, a.quantity) not in already
    ]
    return out


_SHARE_OR_MULTIPLE = re.compile(
    r"%|\bpercent|\b(?:times|twice|thrice|half|third|quarter|fifth)\b", re.IGNORECASE
)
"""Words around a number that make it a share or a multiple of something (``0.7 * car`` is right
for "at least 70% of the trips by bike"): such a number is no per-unit coefficient."""


_CONTRAST = re.compile(r"\b(?:while|whereas|but|than|versus|vs|compared)\b", re.IGNORECASE)
"""A sentence that sets two things side by side ("film-based stores require 10 units while the
electric-based stores take 15"): it may name the second in other words than the variable's
name, so its numbers are not judged term by term."""


def _loose(words: frozenset[str]) -> frozenset[str]:
    """``words`` with a final ``e`` both ways: ``singular`` makes "buses" ``buse`` but leaves
    "bus" ``bus``."""
    return words | {w[:-1] for w in words if w.endswith("e")} | {w + "e" for w in words}


def _products(node: Node, model: FiveElementModel) -> list[tuple[_Carried, _Use]]:
    """The terms of ``node`` that are one number times one variable (``0.5 * lemonade``,
    ``time[p] * x[p]``): the number as carried and the variable's use."""
    out = []
    for n in _walk(node):
        if not isinstance(n, BinOp) or n.op != "*":
            continue
        for number_side, var_side in ((n.left, n.right), (n.right, n.left)):
            uses, numbers = _uses_and_numbers(number_side, model)
            var_uses, var_numbers = _uses_and_numbers(var_side, model)
            if not uses and len(numbers) == 1 and len(var_uses) == 1 and not var_numbers:
                out.append((numbers[0], var_uses[0]))
    return out


def _term_misattributions(
    model: FiveElementModel,
    parsed: list[tuple[Any, Compare]],
    texts: list[str],
    counts: list[int],
    words: list[frozenset[str]],
    where_stated: list[tuple[float, int, str]],
    names: _Names,
) -> list[Misattribution]:
    """Per-unit numbers on the wrong variable of a constraint: ``0.5 * lemonade + 0.2 * brownies
    <= 10`` from "A pitcher of lemonade takes 0.5 hours of John's time along with 0.2 hours of
    William's time".

    A term's number is judged when the request states it in exactly one sentence, that sentence
    states at least two numbers (a thing's data: its time, its nutrients) and sets no two things
    side by side (``_CONTRAST``), the number is no share or multiple, and the sentence names
    exactly one of the variables the constraint uses, not the term's own (nor does the parameter
    carrying the number name it). A variable is named by the words of its name that no other
    variable's name has (``_Names.named_apart``). On the real 1.5B model's recorded NL4Opt vote
    samples (session 9) it fires on 43 samples whose model verified, all 43 wrong answers; on
    Mamo's 800 on none. ``parsed``: the constraints with their expressions; ``counts`` and
    ``words``: each sentence's number of quantities and its name words."""
    # A word's camelCase parts and the word whole ("QuickAnalytics" names ``quickanalytics``).
    wide = [
        _loose(w | {singular(x.lower()) for x in _WORD.findall(s)})
        for s, w in zip(texts, words, strict=True)
    ]
    out: list[Misattribution] = []
    for c, node in parsed:
        uses, _ = _uses_and_numbers(node, model)
        seen: set[tuple[float, str]] = set()
        for number, use in _products(node, model):
            x, digits = abs(number.value), _decimals(number.value)
            stated = [(i, t) for v, i, t in where_stated if _close(x, v, digits)]
            if len({i for i, _ in stated}) != 1 or (x, use.var) in seen:
                continue
            i, quantity = stated[0]
            seen.add((x, use.var))
            if (
                counts[i] < 2
                or _share_or_multiple(texts[i], quantity)
                or _CONTRAST.search(texts[i])
            ):
                continue
            named = {u.var for u in uses if names.named_apart(u, wide[i])}
            if len(named) != 1 or names.named_apart(use, wide[i]):
                continue
            if number.parameter and names.named_by(use, name_tokens(number.parameter)):
                continue
            sentence = texts[i].rstrip(".!?;: ")
            where = f'constraint "{c.name}"'
            out.append(
                Misattribution(
                    where,
                    (_shown(use),),
                    number.written,
                    quantity,
                    sentence,
                    tuple(named),
                    term=True,
                )
            )
    return out


def _share_or_multiple(sentence: str, quantity: str) -> bool:
    """Whether ``quantity`` is written as a share or a multiple in ``sentence`` (its own text, or
    the two words after it: "70%", "40 percent", "3 times")."""
    at = sentence.find(quantity)
    if at < 0:
        return False
    after = " ".join(sentence[at + len(quantity) :].split()[:2])
    return bool(_SHARE_OR_MULTIPLE.search(quantity) or _SHARE_OR_MULTIPLE.search(" " + after))


def _suggestion(expression: str, uses: list[_Use], about: tuple[str, ...], plain: set[str]) -> str:
    """The one renaming that puts a misattributed number where its sentence does ("" when it is
    not one renaming): on one plain variable, to the one plain variable its words name."""
    used = {u.var for u in uses}
    if len(used) != 1 or len(about) != 1 or any(u.members for u in uses):
        return ""
    (old,), new = tuple(used), about[0]
    if old not in plain or new not in plain or new == old:
        return ""
    if not expression:  # a variable's bound
        return f"put the bound on {new}, not on {old}"
    renamed = re.sub(rf"(?<![\w.]){re.escape(old)}(?![\w.\[])", new, expression)
    return f'write "{renamed}"' if renamed != expression else ""


_TOKEN = re.compile(r"\d+-?[A-Za-z][\w-]*|[A-Za-z]+|\$?\d[\d,]*(?:\.\d+)?")
"""The words of a sentence and its numbers; a numeral glued to letters (``2-piece``) is a word."""
NEAR = 6
"""How many words (function words not counted) either side of a number say what it is about."""


def _is_number(token: str) -> bool:
    return not _WORD.search(token)


@functools.lru_cache(maxsize=512)
def _sentence_tokens(sentence: str) -> tuple[re.Match[str], ...]:
    """The numbers and name words of ``sentence``, once per sentence (``_near`` asks for each
    number in it)."""
    return tuple(
        m for m in _TOKEN.finditer(sentence) if _is_number(m.group(0)) or name_tokens(m.group(0))
    )


def _near(sentence: str, quantity: str) -> frozenset[str]:
    """The name words within ``NEAR`` words of ``quantity`` in ``sentence``, not past another
    number: what the number is about ("at most 60 baguettes"), not what the sentence's other
    parts name ("the coffee shop buys 3300 units of milk and 2600 units of cream": 2600 is
    about cream, not coffee)."""
    tokens = _sentence_tokens(sentence)
    words: list[str] = []
    # Each place the quantity is written (as itself: the 5 of "50" is not one).
    for found in re.finditer(
        r"(?<![\w.,])" + re.escape(quantity) + r"(?![\w%]|[.,]\d)", sentence, re.IGNORECASE
    ):
        at = [
            k for k, m in enumerate(tokens) if m.end() > found.start() and m.start() < found.end()
        ]
        if not at:
            continue
        for step, start in ((-1, at[0] - 1), (1, at[-1] + 1)):
            k = start
            while 0 <= k < len(tokens) and abs(k - start) < NEAR:
                if _is_number(tokens[k].group(0)):
                    break  # another number: its own words
                words.append(tokens[k].group(0))
                k += step
    return name_tokens(" ".join(words))


def _shown(use: _Use) -> str:
    """A used variable as the feedback names it: ``croissants``, ``x[croissant]``."""
    if use.members and all(m is not None and len(m) == 1 for m in use.members):
        return f"{use.var}[{', '.join(m[0] for m in use.members if m)}]"
    return use.var


def _and(items: tuple[str, ...]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


# -- readings: what a constraint says against the sentence it comes from ------------------------
#
# The checks above ask whether the numbers are the request's and sit on the right variables. A
# real 1.5B model also writes models that pass them and still contradict the text: "at least 160
# grams of protein" as ``... <= 160``; a constraint described by the oven sentence whose limit is
# the 60 of the baguette sentence; a description copied from another problem (the few-shot
# example's "90 units of the solid"); 50 g and 4 kg in one inequality. ``contradictions`` finds
# these, each with the sentence it reads and, where one edit fixes it, the edit.


@dataclass(frozen=True, slots=True)
class Edit:
    """One change to a model: ``what`` is ``"parameter"`` (the scalar parameter ``name`` set to
    the number ``value``), ``"constraint"`` (constraint ``name``'s expression made ``value``),
    ``"objective"`` (the objective's expression made ``value``; ``name`` is ""), ``"sense"``
    (the objective's sense made ``value``; ``name`` is ""), ``"domain"`` (variable ``name``'s
    domain made ``value``), ``"bounds"``
    (variable ``name``'s bounds made ``value``, a ``(lower, upper)`` pair) or ``"add"`` (a new
    constraint ``name`` with the expression ``value``)."""

    what: str
    name: str
    value: Any

    def text(self) -> str:
        if self.what == "parameter":
            return f"set the parameter {self.name} to {_written(float(self.value))}"
        if self.what == "constraint":
            return f'write "{self.value}"'
        if self.what == "objective":
            return f'write the objective "{self.value}"'
        if self.what == "add":
            return f'add the constraint "{self.value}"'
        if self.what == "sense":
            return f"make the objective {self.value}"
        if self.what == "domain":
            return f"make {self.name} {self.value}"
        lower, upper = self.value
        return f"give {self.name} the bounds lower {lower}, upper {upper}"


@dataclass(frozen=True, slots=True)
class Contradiction:
    """A constraint (or bound) that contradicts the request: ``where`` in the model, ``what`` is
    wrong, said with the request's words, and ``fix``, the edit when one is clear (``edits``, the
    same as changes formalist can make itself: ``amended``)."""

    where: str
    what: str
    fix: str = ""
    edits: tuple[Edit, ...] = ()

    def text(self) -> str:
        return f"{self.where}: {self.what}"


LOWER, UPPER = ">=", "<="

_LOWER_BEFORE = re.compile(
    r"\b(?:at\s+least|a\s+minimum\s+of|minimum\s+of|minimum|at\s+minimum|no\s+(?:less|fewer)\s+"
    r"than|not\s+(?:less|fewer)\s+than|(?<!no\s)(?<!not\s)(?:more|greater)\s+than|"
    r"(?<!not\s)(?<!n't\s)(?<!never\s)(?<!cannot\s)exceeds?|(?<!not\s)(?<!n't\s)surpass(?:es)?)"
    r"\s*\$?$",
    re.IGNORECASE,
)
_UPPER_BEFORE = re.compile(
    r"\b(?:at\s+most|a\s+maximum\s+of|maximum\s+of|maximum|at\s+maximum|up\s+to|no\s+more\s+than|"
    r"not\s+more\s+than|(?<!no\s)(?<!not\s)(?:less|fewer)\s+than|(?:not|n't|never|cannot)\s+"
    r"exceed|limited\s+to|capped\s+at|a\s+limit\s+of|a\s+cap\s+of)\s*\$?$",
    re.IGNORECASE,
)
_LOWER_AFTER = re.compile(
    r"^\s*(?:%|percent)?\s*(?:\w+\s+){0,2}?or\s+(?:more|greater|above|higher)\b"
)
_UPPER_AFTER = re.compile(r"^\s*(?:%|percent)?\s*(?:\w+\s+){0,2}?or\s+(?:less|fewer|below|lower)\b")
_COMPARATIVE = re.compile(r"\b(?:more|greater|less|fewer)\s+than|exceed|surpass", re.IGNORECASE)
_NEGATION = re.compile(
    r"\b(?:no|not|nothing|none|never|nobody|neither|nor|cannot)\b|n't\b", re.IGNORECASE
)
_CUE_WINDOW = 40
"""How many characters before a number its direction words may start."""


def _only_mention(sentence: str, quantity: str) -> re.Match[str] | None:
    """The one place ``quantity`` is written in ``sentence`` (group 1: the "$" before it, or
    ""); None when it is written nowhere or more than once."""
    found = list(
        re.finditer(
            r"(?<![\w.,])(\$?)" + re.escape(quantity) + r"(?![\w%]|[.,]\d)", sentence, re.IGNORECASE
        )
    )
    return found[0] if len(found) == 1 else None


def stated_direction(sentence: str, quantity: str, _shared: int = 4) -> str | None:
    """What the words next to ``quantity`` in ``sentence`` make of it: a lower limit ("at least
    160", "more than 40", "1000 or more") ``>=``, an upper limit ("at most 60", "up to 50", "cannot
    exceed 300") ``<=``, or None (no such words, or the quantity is written twice). A quantity
    joined by "and", "or" or a comma to one with such words shares them: "at least 1000 samples of
    water and 800 samples of dirt" makes 800 a lower limit too (a list: up to four back)."""
    m = _only_mention(sentence, quantity)
    if m is None:
        return None
    before = sentence[max(0, m.start() - _CUE_WINDOW) : m.start()]
    # Not past another number: its words are its own.
    before = re.split(r"\d", before)[-1]
    after = sentence[m.end() : m.end() + 30]
    after = re.split(r"\d", after)[0]
    low, up = _LOWER_BEFORE.search(before), _UPPER_BEFORE.search(before)
    lower = bool(low or _LOWER_AFTER.match(after))
    upper = bool(up or _UPPER_AFTER.match(after))
    cue = low or up
    if cue is not None and lower != upper and _COMPARATIVE.search(cue.group(0)):
        # "nothing weighs more than 1000 kg", "none may be less than 5": negated further back;
        # "should not exceed twice Y by more than 4": a margin, negated with its verb, anywhere
        # before it in the sentence.
        head = before[: cue.start()]
        if _BY_MARGIN.search(head):
            head = sentence[: m.start() - len(before) + cue.start()]
        if _NEGATION.search(head):
            lower, upper = upper, lower
    if lower == upper:
        if lower or not _shared:
            return None
        joined = _JOINED.search(sentence[: m.start()])
        return stated_direction(sentence, joined.group(1), _shared - 1) if joined else None
    return LOWER if lower else UPPER


_BY_MARGIN = re.compile(r"\bby\s*$", re.I)
"""The word before a margin's comparative ("exceed Y by more than 4")."""
_JOINED = re.compile(
    r"(?<![\w.,])(\d[\d,]*(?:\.\d+)?)\s*%?(?:\s+[A-Za-z'-]+){0,5}"
    r"(?:\s*,\s*(?:and\s+|or\s+)?|\s+(?:and|or)\s+)\$?$"
)
"""A quantity, up to five words, then "and", "or" or a comma right before another: the first
one's words speak for both ("at least 1000 samples of water and 800 samples of dirt")."""


@dataclass(frozen=True, slots=True)
class _Side:
    """One limit of a constraint: the operand without variables, the direction it bounds the other
    side in (``>=``: a lower limit), and its numbers."""

    direction: str
    numbers: tuple[_Carried, ...]
    negated: bool = False
    """The limit is written negative (``x - y >= -200``): it bounds the other side's negative,
    so its magnitude is a limit the other way (``y - x <= 200``)."""

    @property
    def magnitude_direction(self) -> str:
        """The direction the limit's magnitude bounds its side in (``direction``, turned
        round for a negated limit)."""
        if not self.negated:
            return self.direction
        return LOWER if self.direction == UPPER else UPPER


def _limits(node: Compare, model: FiveElementModel) -> list[_Side]:
    """The limits of an inequality whose one side has variables and the other none (``3 c + 5 b
    <= 480``, ``lo <= x <= hi``); [] when both sides have variables (``chairs >= 0.7 * total``)."""
    has_vars = [bool(_uses_and_numbers(o, model)[0]) for o in node.operands]
    out: list[_Side] = []
    for k, op in enumerate(node.ops):
        if op not in ("<=", ">=", "<", ">"):
            continue
        left, right = has_vars[k], has_vars[k + 1]
        if left == right:
            continue
        bound = node.operands[k + 1] if left else node.operands[k]
        upper = op in ("<=", "<")
        if not left:  # the limit on the left: 480 >= 3 c + 5 b
            upper = not upper
        numbers = tuple(_uses_and_numbers(bound, model)[1])
        negated = isinstance(bound, Neg) or (isinstance(bound, Num) and bound.value < 0)
        direction = UPPER if upper else LOWER
        if isinstance(bound, Num) and bound.value == 0:
            # Everything on one side (``1000 - x - y <= 0``): its constant terms are the limits,
            # moved across with their sign turned (``-x - y <= -1000``: x + y >= 1000).
            side = node.operands[k] if left else node.operands[k + 1]
            for sign, term in _signed_terms(side):
                term_uses, term_numbers = _uses_and_numbers(term, model)
                if term_uses:
                    continue
                moved = tuple(term_numbers)
                if moved:
                    out.append(_Side(direction, moved, negated=sign > 0))
        out.append(_Side(direction, numbers, negated))
    return out


def _signed_terms(node: Node, sign: int = 1) -> list[tuple[int, Node]]:
    """The terms of a sum with their signs: ``1000 - x - (y - 3)`` is +1000, -x, -y, +3."""
    if isinstance(node, BinOp) and node.op in ("+", "-"):
        right = sign if node.op == "+" else -sign
        return _signed_terms(node.left, sign) + _signed_terms(node.right, right)
    if isinstance(node, Neg):
        return _signed_terms(node.operand, -sign)
    if isinstance(node, Num) and node.value < 0:
        return [(-sign, Num(-node.value, node.pos))]
    return [(sign, node)]


def _where_stated(texts: list[str]) -> list[tuple[float, int, str]]:
    out = []
    for i, s in enumerate(texts):
        for q in request_quantities(s):
            out += [(v, i, q.text) for v in q.values if v not in (0.0, 1.0)]
    return out


def _one_place(x: float, where_stated: list[tuple[float, int, str]]) -> tuple[int, str] | None:
    """The sentence and the words of the one place the request states ``x``; None when it states
    it nowhere or more than once."""
    digits = _decimals(x)
    places = [(i, t) for v, i, t in where_stated if _close(abs(x), v, digits)]
    if len({(i, t) for i, t in places}) != 1:
        return None
    return places[0]


COMPARISON = re.compile(r"<=|>=|==|(?<![<>=!])[<>](?!=)")
"""A comparison operator in an expression's text (``<`` and ``>`` alone, not part of another)."""


def _parsed_constraints(model: FiveElementModel) -> list[tuple[Any, Compare]]:
    """Each constraint with its parsed expression; those that do not parse are left out
    (validation names them)."""
    out = []
    for c in model.constraints:
        try:
            out.append((c, parse_constraint(c.expression)))
        except ValueError:
            continue
    return out


def _flip(expression: str) -> str:
    """``expression`` with its one inequality turned round; "" when it has none or several."""
    ops = COMPARISON.findall(expression)
    if len(ops) != 1 or ops[0] == "==":
        return ""
    turn = {"<=": ">=", ">=": "<=", "<": ">", ">": "<"}
    return COMPARISON.sub(lambda m: turn[m.group(0)], expression, count=1)


def _direction_readings(
    model: FiveElementModel, texts: list[str], where_stated: list[tuple[float, int, str]]
) -> list[Contradiction]:
    """Limits written the other way round from their words: "at least 160" as ``<= 160``."""
    out = []
    for c, node in _parsed_constraints(model):
        for side in _limits(node, model):
            verdicts = []
            for n in side.numbers:
                place = _one_place(n.value, where_stated)
                if place is None:
                    continue
                said = stated_direction(texts[place[0]], place[1])
                if said is not None:
                    verdicts.append((said, n, place))
            direction = side.magnitude_direction
            if not verdicts or any(said == direction for said, _, _ in verdicts):
                continue
            said, n, (i, quantity) = verdicts[0]
            words = "a lower limit" if said == LOWER else "an upper limit"
            wrote = "an upper limit" if direction == UPPER else "a lower limit"
            flipped = _flip(c.expression)
            out.append(
                Contradiction(
                    f'constraint "{c.name}"',
                    f"it makes {n.written} {wrote} ({c.expression}), but "
                    f'"{texts[i].rstrip(".!?;: ")}" makes {quantity} {words}',
                    f'write "{flipped}"' if flipped else "",
                    (Edit("constraint", c.name, flipped),) if flipped else (),
                )
            )
            break
    for var in model.variables:
        for side_name, bound, direction in (
            ("lower", var.lower, LOWER),
            ("upper", var.upper, UPPER),
        ):
            if not isinstance(bound, int | float) or bound in (0, 1):
                continue
            place = _one_place(float(bound), where_stated)
            if place is None:
                continue
            said = stated_direction(texts[place[0]], place[1])
            if said is None or said == direction:
                continue
            other = "lower" if side_name == "upper" else "upper"
            out.append(
                Contradiction(
                    f"variable '{var.name}'",
                    f"its {side_name} bound is {_written(float(bound))}, but "
                    f'"{texts[place[0]].rstrip(".!?;: ")}" makes {place[1]} '
                    f"{'a lower' if said == LOWER else 'an upper'} limit",
                    f'make {_written(float(bound))} its {other} bound ("{other}": '
                    f"{_written(float(bound))})",
                    (Edit("bounds", var.name, _moved(var, side_name, float(bound))),),
                )
            )
    return out


def _ratio_readings(
    model: FiveElementModel, texts: list[str], where_stated: list[tuple[float, int, str]]
) -> list[Contradiction]:
    """Share constraints written the other way round from their words: "at most 30% of the cans
    be large cans" as ``large >= 0.3 * (large + small)``. Both sides have variables; one side
    holds a stated fraction (30% as 0.3, "a third"), the other, the subject, none; the
    constraint read with the subject first must bound it as the fraction's words do."""
    out = []
    for c, node in _parsed_constraints(model):
        if len(node.ops) != 1 or node.ops[0] not in ("<=", ">=", "<", ">"):
            continue
        sides = [_uses_and_numbers(o, model) for o in node.operands]
        if not all(uses for uses, _ in sides):
            continue
        shares = []
        for k, (_, numbers) in enumerate(sides):
            for n in numbers:
                if 0 < abs(n.value) < 1:
                    place = _one_place(n.value, where_stated)
                    rest = _one_place(1 - abs(n.value), where_stated)
                    if place is not None:
                        shares.append((k, n, place, False))
                    elif rest is not None:
                        shares.append((k, n, rest, True))
        if len(shares) != 1:
            continue
        k, n, (i, quantity), complement = shares[0]
        said = stated_direction(texts[i], quantity)
        if said is None:
            continue
        subject = sides[1 - k][0]
        edits: list[Edit] = []
        expression = c.expression
        if complement:
            # "at most 25% of the meals should be salmon lunch" as salmon <= 0.75 * total: the
            # share of the named subject is the stated one, not what is left of it.
            names, near = _Names(model), _near(texts[i], quantity)
            if not any(names.named_by(u, near) for u in subject):
                continue
            fix = _number_edit(model, c.name, expression, n, 1 - n.value)
            if fix is None:
                continue
            edits.append(fix)
            if fix.what == "constraint":
                expression = str(fix.value)
        upper = node.ops[0] in ("<=", "<")
        if k == 0:  # the share on the left: 0.3 * (large + small) <= large bounds large below
            upper = not upper
        wrote = UPPER if upper else LOWER
        if said != wrote:
            flipped = _flip(expression)
            if not flipped:
                continue
            edits = [e for e in edits if e.what != "constraint"]
            edits.append(Edit("constraint", c.name, flipped))
        if not edits:
            continue
        words = "at most" if said == UPPER else "at least"
        share = f" (what is left of {quantity})" if complement else ""
        out.append(
            Contradiction(
                f'constraint "{c.name}"',
                f"it makes {n.written}{share} of the total "
                f"{'an upper' if wrote == UPPER else 'a lower'} limit ({c.expression}), but "
                f'"{_clip(texts[i].rstrip(".!?;: "))}" says {words} {quantity}',
                _and(tuple(e.text() for e in edits)),
                tuple(edits),
            )
        )
    return out


_TIMES = re.compile(
    r"\b(?:(?P<twice>twice)|(?P<k>\d+(?:\.\d+)?|[a-z]+)\s+times)\s+(?:as\s+(?:many|much)|more)\s+"
    r"(?P<a>[\w' -]+?)\s+(?:as|than)\s+(?:(?:the\s+)?(?:number|amount)\s+of\s+)?"
    r"(?P<b>[\w' -]+?)(?=\s*[.,;:!?]|\s+(?:and|but|so|because|since|while|if)\b|$)",
    re.IGNORECASE,
)
"""A multiple of one thing against another: "at least twice as many vanilla shakes as chocolate
shakes", "a minimum of 3 times as many trucks as vans"."""


def _best_named(model: FiveElementModel, words: frozenset[str]) -> list[str]:
    """The scalar variable whose name shares the most of ``words`` ("vanilla powder shakes":
    ``vanilla_powder`` over ``chocolate_powder``), then has the fewest words beyond them ("AC
    seats": ``ac_seats`` over ``non_ac_seats``), as a list of one; [] when none or a tie."""
    scores = sorted(
        (
            (len(own & words), -len(own - words), v.name)
            for v in model.variables
            if not v.index
            for own in [name_tokens(v.name)]
        ),
        reverse=True,
    )
    if not scores or scores[0][0] == 0 or (len(scores) > 1 and scores[1][:2] == scores[0][:2]):
        return []
    return [scores[0][2]]


def _multiple_readings(model: FiveElementModel, texts: list[str]) -> list[Contradiction]:
    """A multiple written the wrong way round: "at least twice as many vanilla shakes as
    chocolate shakes" as ``2 * vanilla >= chocolate``. The words say which variable gets the
    multiple and, with "at least" or "at most" before them, the direction; the one constraint
    over exactly those two variables (and no number) must read ``vanilla >= 2 * chocolate``."""
    from agent.errors import ArtifactError
    from formalizers.milp.linear import INF, compile_model

    scalar = {v.name for v in model.variables if not v.index}
    compiled = None
    out: list[Contradiction] = []
    for text in texts:
        for m in _TIMES.finditer(text):
            k = 2.0 if m.group("twice") else words_value(m.group("k") or "")
            if k is None and m.group("k") and m.group("k")[0].isdigit():
                k = float(m.group("k"))
            if k is None or k <= 1:
                continue
            before = text[max(0, m.start() - _CUE_WINDOW) : m.start()]
            said = (
                LOWER
                if _LOWER_BEFORE.search(before)
                else UPPER
                if _UPPER_BEFORE.search(before)
                else None
            )
            a = _best_named(model, name_tokens(m.group("a")))
            b = _best_named(model, name_tokens(m.group("b")))
            if said is None or len(a) != 1 or len(b) != 1 or a == b or not {*a, *b} <= scalar:
                continue
            if compiled is None:
                try:
                    compiled = compile_model(model)
                except (ValueError, ArtifactError):  # validation names it, not this reading
                    return out
            cols = {i: col.var for i, col in enumerate(compiled.columns)}
            rows = [
                r
                for r in compiled.rows
                if {cols[i] for i in r.coeffs} == {a[0], b[0]}
                and (r.lower == 0 or r.upper == 0)
                and (r.lower == -INF or r.upper == INF)
            ]
            if len(rows) != 1 or sum(1 for r in compiled.rows if r.family == rows[0].family) != 1:
                continue
            row = rows[0]
            sign = 1.0 if row.upper == INF else -1.0  # as coeffs >= 0
            ca = sign * sum(v for i, v in row.coeffs.items() if cols[i] == a[0])
            cb = sign * sum(v for i, v in row.coeffs.items() if cols[i] == b[0])
            want = (1.0, -k) if said == LOWER else (-1.0, k)
            if ca and _close(cb / ca, want[1] / want[0], 6) and (ca > 0) == (want[0] > 0):
                continue
            op = ">=" if said == LOWER else "<="
            written = f"{a[0]} {op} {_written(k)} * {b[0]}"
            out.append(
                Contradiction(
                    f'constraint "{row.family}"',
                    f"it reads {row.text}, but "
                    f'"{_clip(text.rstrip(".!?;: "))}" says {m.group(0).strip()}',
                    f'write "{written}"',
                    (Edit("constraint", row.family, written),),
                )
            )
    return out


def _description_readings(
    model: FiveElementModel, texts: list[str], where_stated: list[tuple[float, int, str]]
) -> list[Contradiction]:
    """Constraints whose description and expression tell two stories: the description states
    numbers of the request, the constraint uses one of them nowhere, and its limit is none of
    them (the oven sentence's 480 described, the baguette sentence's 60 used); and descriptions
    with numbers the request never states (copied from another problem)."""
    stated = [v for v, _, _ in where_stated]
    known = name_tokens(" ".join(texts)) | _model_words(model)
    # Each constraint that parses: its expression, its numbers and those its description states.
    parts: dict[int, tuple[Compare, list[float], list[float]]] = {}
    for other, node in _parsed_constraints(model):
        _, nums = _uses_and_numbers(node, model)
        told = [v for q in request_quantities(other.description or "") for v in q.values]
        parts[id(other)] = (node, [abs(n.value) for n in nums], told)
    out = []
    for c in model.constraints:
        if not c.description:
            continue
        foreign = [
            q.text
            for q in request_quantities(c.description)
            if all(v not in (0.0, 1.0) for v in q.values)
            and not any(_close(v, s, _decimals(v)) for v in q.values for s in stated)
        ]
        strange = sorted(name_tokens(c.description) - known - _COMMON_WORDS)
        if len(strange) >= FOREIGN_WORDS and len(strange) >= 0.3 * len(name_tokens(c.description)):
            foreign += [f'"{w}"' for w in strange[:4]]
        if foreign:
            out.append(
                Contradiction(
                    f'constraint "{c.name}"',
                    f'its description ("{_clip(c.description)}") states '
                    f"{_and(tuple(dict.fromkeys(foreign)))}, which the request does not: it "
                    "describes another problem",
                    "write this constraint from a sentence of the request, and quote that "
                    "sentence as its description",
                )
            )
            continue
        described = [
            v
            for q in request_quantities(c.description)
            for v in q.values[:1]
            if v not in (0.0, 1.0) and any(_close(v, s, _decimals(v)) for s in stated)
        ]
        if not described or id(c) not in parts:
            continue
        node, used_values, _ = parts[id(c)]
        sides = [(side, n) for side in _limits(node, model) for n in side.numbers]
        limits = [(side, n) for side, n in sides if abs(n.value) > 1]
        if not limits:
            continue
        if any(_single(abs(n.value), d) for _, n in limits for d in described):
            continue
        missing = [d for d in described if not any(_single(u, d) for u in used_values)]
        if not missing:
            continue
        side, limit = limits[0]
        place = _one_place(limit.value, where_stated)
        # The limit comes from the very sentence described (one sentence, two limits: "only has
        # 250 minutes ... and only 1375 ounces of meat"), or every described number the
        # constraint lacks is used by another constraint that describes it too, and not this
        # one's limit (two limits swapped): the description is loose, the model says what the
        # request says.
        quoted = {p[0] for d in described for p in [_one_place(d, where_stated)] if p}
        here = abs(limit.value)
        if (place is not None and place[0] in quoted) or all(
            any(
                key != id(c)
                and any(_single(u, d) for u in nums)
                and any(_close(d, t, _decimals(d)) for t in told)
                and not any(_close(here, t, _decimals(here)) for t in told)
                for key, (_, nums, told) in parts.items()
            )
            for d in missing
        ):
            continue
        source = f' (from "{texts[place[0]].rstrip(".!?;: ")}")' if place else ""
        fix = "each sentence with a limit gets its own constraint"
        edits: tuple[Edit, ...] = ()
        limit_values = {abs(n.value) for _, n in sides}
        rates = [u for u in used_values if u not in limit_values]
        if len(missing) == 1 and not _rate_like(missing[0], rates, where_stated, texts):
            fix, edits = _limit_fix(
                model, c.name, c.expression, side, limit, missing[0], texts, where_stated
            )
        out.append(
            Contradiction(
                f'constraint "{c.name}"',
                f'its description quotes "{_clip(c.description)}", but its limit is '
                f"{limit.written}{source} and it does not use {_written(missing[0])}",
                fix,
                edits,
            )
        )
    return out


def _rate_like(
    x: float, rates: list[float], where_stated: list[tuple[float, int, str]], texts: list[str]
) -> bool:
    """Whether ``x`` reads as a rate rather than a limit: stated "per" something ("7 units of
    gasoline per acre"), or not above the rates the constraint already uses (a limit of ``12 a +
    25 b`` is not 7)."""
    if rates and x <= max(rates):
        return True
    place = _one_place(x, where_stated)
    if place is None:
        return False
    i, quantity = place
    m = _only_mention(texts[i], quantity)
    return bool(m and re.match(r"(?:\W*\w+){0,4}?\W+(?:per|each|every)\b", texts[i][m.end() :]))


def _number_edit(
    model: FiveElementModel, constraint: str, expression: str, carried: _Carried, value: float
) -> Edit | None:
    """The edit that makes the number ``carried`` ``value``: its scalar parameter set, or its
    literal replaced in ``expression`` (of the constraint named ``constraint``); None when
    neither is one edit."""
    shown = _written(abs(value))
    if carried.parameter:
        scalar = any(p.name == carried.parameter and p.value is not None for p in model.parameters)
        return Edit("parameter", carried.parameter, value) if scalar else None
    spots = [
        m
        for m in re.finditer(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.])", expression)
        if _close(float(m.group(0)), carried.value, 0)
    ]
    if len(spots) != 1:
        return None
    (m,) = spots
    return Edit(
        "constraint", constraint, f"{expression[: m.start()]}{shown}{expression[m.end() :]}"
    )


def _moved(var: Any, side: str, bound: float) -> tuple[Any, Any]:
    """``var``'s (lower, upper) bounds with ``bound`` moved from ``side`` to the other side (the
    side it leaves falls back to the default: lower 0, upper none)."""
    return (bound, None) if side == "upper" else (0, bound)


def _limit_fix(
    model: FiveElementModel,
    constraint: str,
    expression: str,
    side: _Side,
    limit: _Carried,
    described: float,
    texts: list[str],
    where_stated: list[tuple[float, int, str]],
) -> tuple[str, tuple[Edit, ...]]:
    """The edit for a constraint whose limit is not its described number: the limit set to that
    number, and, when the number's words name one plain variable and the constraint has others,
    the constraint written on that variable alone (``baguettes <= c1_total``, not ``croissants +
    baguettes <= c1_total``). Its text and its edits."""
    place = _one_place(described, where_stated)
    uses, _ = _uses_and_numbers(parse_constraint(expression), model)
    about = _Names(model).about(_near(texts[place[0]], place[1])) if place else []
    plain = {v.name for v in model.variables if not v.index}
    bound = limit.parameter or _written(described)
    if len(about) == 1 and about[0] in plain and {u.var for u in uses} != {about[0]}:
        op = stated_direction(texts[place[0]], place[1]) if place else None
        edits = [Edit("constraint", constraint, f"{about[0]} {op or side.direction} {bound}")]
        if limit.parameter:
            edits.append(Edit("parameter", limit.parameter, described))
        return " and ".join(e.text() for e in edits), tuple(edits)
    edit = _number_edit(model, constraint, expression, limit, described)
    if edit is None:
        return (
            f"its limit should be {_written(described)}, the number of the sentence it quotes",
            (),
        )
    return edit.text(), (edit,)


FOREIGN_WORDS = 3
"""How many words of a constraint's description, neither the request's nor the model's names,
make it a description of another problem (and at least 30% of its words)."""


_COMMON_WORDS = frozenset(
    """additionally also although amount any because been but can cannot could do does due each
    every exceed fewer further furthermore greater have how however if least less limit many
    maximum minimum moreover more most much must need no not number only other over same should
    since so than that the their then there these this those through total under up use used
    want was we were what when whereas which while who will would""".split()
)
"""Words a description may use in its own phrasing without quoting another problem."""


def _model_words(model: FiveElementModel) -> frozenset[str]:
    """The words of the model's names and set members."""
    texts = [p.name for p in model.parameters] + [v.name for v in model.variables]
    texts += [str(m) for s in model.sets for m in s.members] + [s.name for s in model.sets]
    return frozenset(w for t in texts for w in name_tokens(t))


_UNITS: dict[str, tuple[str, float]] = {}
for _names, _dim, _scale in (
    (("mg", "milligram", "milligrams"), "mass", 0.001),
    (("g", "gram", "grams", "gr"), "mass", 1.0),
    (("kg", "kgs", "kilogram", "kilograms", "kilo", "kilos"), "mass", 1000.0),
    (("oz", "ounce", "ounces"), "imperial mass", 1.0),
    (("lb", "lbs", "pound", "pounds"), "imperial mass", 16.0),
    (("ml", "milliliter", "milliliters", "millilitre", "millilitres"), "volume", 1.0),
    (("l", "liter", "liters", "litre", "litres"), "volume", 1000.0),
    (("second", "seconds", "sec", "secs"), "time", 1.0),
    (("minute", "minutes", "min", "mins"), "time", 60.0),
    (("hour", "hours", "hr", "hrs"), "time", 3600.0),
    (("cent", "cents"), "money", 1.0),
):
    for _n in _names:
        _UNITS[_n] = (_dim, _scale)
_UNIT_AFTER = re.compile(r"\s*([A-Za-z]+)\b")


def stated_unit(sentence: str, quantity: str) -> tuple[str, float, str] | None:
    """The unit written with ``quantity`` in ``sentence``: ``(dimension, scale, word)`` for "50 g"
    (mass, 1, g), "4 kg" (mass, 1000, kg), "$1.20" (money, 100, $); None when none is."""
    m = _only_mention(sentence, quantity)
    if m is None:
        return None
    if m.group(1):
        return ("money", 100.0, "$")
    word = _UNIT_AFTER.match(sentence, m.end())
    if word and word.group(1).lower() in _UNITS:
        dim, scale = _UNITS[word.group(1).lower()]
        return (dim, scale, word.group(1))
    return None


def _unit_readings(
    model: FiveElementModel, texts: list[str], where_stated: list[tuple[float, int, str]]
) -> list[Contradiction]:
    """Constraints that add or compare numbers stated in two units of one dimension (50 g of
    butter per croissant against 4 kg a day) with neither converted: no number of the
    constraint is the factor between them, or one of them converted."""
    out = []
    for c, node in _parsed_constraints(model):
        _, numbers = _uses_and_numbers(node, model)
        units: dict[str, dict[float, tuple[str, str, _Carried]]] = {}
        for n in numbers:
            place = _one_place(n.value, where_stated)
            if place is None:
                continue
            unit = stated_unit(texts[place[0]], place[1])
            if unit is None:
                continue
            dim, scale, word = unit
            shown = f"{place[1]} {word}" if word != "$" else f"${place[1]}"
            units.setdefault(dim, {})[scale] = (shown, word, n)
        values = [abs(n.value) for n in numbers]
        for scales in units.values():
            if len(scales) < 2:
                continue
            (s1, (a, small, _)), (s2, (b, big, carried)) = sorted(scales.items())[:2]
            factor = s2 / s1
            if any(_close(v, factor, 0) or _close(v, 1 / factor, 3) for v in values):
                continue  # converted in the constraint
            small = "cents" if small == "$" else small
            big = "dollar" if big == "$" else big
            value = math.copysign(abs(carried.value) * factor, carried.value)
            edit = _number_edit(model, c.name, c.expression, carried, value)
            out.append(
                Contradiction(
                    f'constraint "{c.name}"',
                    f"it uses {a} and {b} as they are, but they are in different units (one "
                    f"{singular(big.lower())} is {_written(factor)} {small})",
                    f"write {b} as {_written(abs(carried.value) * factor)} {small}"
                    + _then(edit.text() if edit else ""),
                    (edit,) if edit else (),
                )
            )
    return out


def _then(edit: str) -> str:
    return f": {edit}" if edit else ""


def _clip(text: str, n: int = 90) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 3].rstrip() + "..."


def _expression_nodes(model: FiveElementModel) -> list[tuple[str, str, Node]]:
    """Each constraint's and the objective's (where, expression, parsed node); those that do not
    parse are left out (validation names them)."""
    parts: list[tuple[str, str, Callable[[str], Node]]] = [
        (f'constraint "{c.name}"', c.expression, parse_constraint) for c in model.constraints
    ]
    parts.append(("the objective", model.objective.expression, parse_expression))
    out = []
    for where, expression, parse in parts:
        try:
            out.append((where, expression, parse(expression)))
        except ValueError:
            continue
    return out


def _constant_readings(model: FiveElementModel) -> list[Contradiction]:
    """A constraint or objective with no decision variable in it: only parameters and numbers
    (the 1.5B model's ``intake_salmon * c1_salmon + ... <= c1_limit``, every name a parameter),
    so it constrains or measures nothing, whatever the request says."""
    out = []
    for where, expression, node in _expression_nodes(model):
        if _uses_and_numbers(node, model)[0]:
            continue
        out.append(
            Contradiction(
                where,
                f"it has no decision variable in it ({expression}: every name in it is a "
                "parameter), so it decides nothing",
                "write it over the variables: each number per unit multiplies the variable it "
                "counts",
            )
        )
    return out


def _with_term(where: str, expression: str, node: Node, term: str) -> str:
    """``expression`` with ``term`` added to its side that has the variables (the objective: to
    the whole); "" when that side is not one of two (a range, or variables on both sides)."""
    if where == "the objective":
        return f"{expression} + {term}"
    ops = list(COMPARISON.finditer(expression))
    if not isinstance(node, Compare) or len(ops) != 1 or len(node.operands) != 2:
        return ""
    (op,) = ops
    left, right = expression[: op.start()].rstrip(), expression[op.end() :].lstrip()
    if not left or not right:
        return ""
    return f"{left} + {term} {op.group(0)} {right}"


def _owner(sentence: str, quantity: str, model: FiveElementModel) -> str | None:
    """The scalar variable a per-unit number belongs to: the one named last before it in the
    sentence ("a croissant needs 3 minutes ... and a baguette 5 minutes": 5 is the baguette's;
    "the rickshaws can take 50 coconuts each and cost $10": 10 is the rickshaws'), the words
    of a two- or three-word name read together ("magazine ad"); None when no variable, or two
    alike, are named there."""
    m = _only_mention(sentence, quantity)
    if m is None:
        return None
    own = {v.name: name_tokens(v.name) for v in model.variables if not v.index}
    tokens = [t for t in _sentence_tokens(sentence) if t.end() <= m.start()]
    for k in range(len(tokens) - 1, -1, -1):
        if _is_number(tokens[k].group(0)):
            continue
        word = name_tokens(tokens[k].group(0))
        if not any(word & o for o in own.values()):
            continue
        window = name_tokens(" ".join(t.group(0) for t in tokens[max(0, k - 2) : k + 1]))
        scores = sorted(((len(o & window), v) for v, o in own.items() if o & word), reverse=True)
        if len(scores) > 1 and scores[0][0] == scores[1][0]:
            return None
        return scores[0][1]
    return None


def _missing_term_readings(
    model: FiveElementModel, texts: list[str], where_stated: list[tuple[float, int, str]]
) -> list[Contradiction]:
    """A per-unit number left out of the one constraint (or the objective) that holds its kind
    for the other variables: "a croissant needs 3 minutes of oven time and a baguette 5
    minutes; the oven is free for 480 minutes" written ``3 * croissants <= 480``; "a magazine
    ad costs $1000" left out of ``200 * flyers + 7000 * billboards <= 50000``. The number is
    stated once, used nowhere and is no limit ("at most"); it belongs to a variable
    (``_owner``) the expression lacks; and the expression multiplies another variable by a
    number that belongs to that variable and is said with the same words ("minutes of oven
    time", "costs") in a unit of the same kind. The edit adds the term (``+ 5 * baguettes``)."""
    used = [abs(m.value) for m in model_numbers(model)]
    variables = frozenset().union(*(name_tokens(v.name) for v in model.variables))
    nodes = _expression_nodes(model)
    out: list[Contradiction] = []
    seen: set[tuple[int, str]] = set()
    for value, i, text in where_stated:
        if (i, text) in seen or any(_single(u, value) for u in used):
            continue
        seen.add((i, text))
        if _one_place(value, where_stated) is None or stated_direction(texts[i], text):
            continue
        var = _owner(texts[i], text, model)
        if var is None:
            continue
        unit = stated_unit(texts[i], text)
        said = _near(texts[i], text) - variables
        hits = []
        for where, expression, node in nodes:
            if isinstance(node, Compare):
                sides = [o for o in node.operands if _uses_and_numbers(o, model)[0]]
                if len(sides) != 1:
                    continue
                side = sides[0]
            else:
                side = node
            uses, numbers = _uses_and_numbers(side, model)
            if var in {u.var for u in uses}:
                continue
            for n in numbers:
                place = _one_place(n.value, where_stated)
                if place is None or stated_direction(texts[place[0]], place[1]):
                    continue
                other = stated_unit(texts[place[0]], place[1])
                if (unit is None) != (other is None) or (unit and other and unit[0] != other[0]):
                    continue
                if not said & (_near(texts[place[0]], place[1]) - variables):
                    continue
                owner = _owner(texts[place[0]], place[1], model)
                if owner is not None and owner in {u.var for u in uses}:
                    hits.append((where, expression, node))
                    break
        if len(hits) != 1:
            continue
        where, expression, node = hits[0]
        written = _with_term(where, expression, node, f"{_written(value)} * {var}")
        if not written:
            continue
        if where == "the objective":
            edit = Edit("objective", "", written)
        else:
            edit = Edit("constraint", where.split('"')[1], written)
        out.append(
            Contradiction(
                where,
                f'it leaves out {text} of "{_clip(texts[i].rstrip(".!?;: "))}": {var} has no term '
                "in it, while the other variables' numbers of that kind are there",
                f'write "{written}"',
                (edit,),
            )
        )
    return out


_DIFFERENCE = re.compile(r"\bdifference\b", re.I)


def _difference_readings(
    model: FiveElementModel, texts: list[str], where_stated: list[tuple[float, int, str]]
) -> list[Contradiction]:
    """A difference bounded from one side only: "the difference between warehouse X and Z must
    not exceed 200" written ``warehouse_x - warehouse_z <= 200`` alone. The difference is the
    distance between the two, either way round (as Mamo's answers read it: the other side is
    what makes them right), so the edit adds ``warehouse_z - warehouse_x <= 200``. Only where
    the limit's sentence says "difference", its words make the number an upper limit, the
    constraint is one variable less another, and no constraint bounds the other side."""
    from agent.errors import ArtifactError
    from formalizers.milp.linear import compile_model

    compiled = None
    out: list[Contradiction] = []
    for c, node in _parsed_constraints(model):
        sides = _limits(node, model)
        if node.ops[0] not in ("<=", "<") or len(node.ops) != 1 or len(sides) != 1:
            continue
        if sides[0].negated:
            continue
        (side,) = sides
        if side.direction != UPPER or len(side.numbers) != 1:
            continue
        (n,) = side.numbers
        place = _one_place(n.value, where_stated)
        if place is None or not _DIFFERENCE.search(texts[place[0]]):
            continue
        if stated_direction(texts[place[0]], place[1]) != UPPER:
            continue
        body = node.operands[0]  # the variables' side: the limit is an upper one, on the right
        if not (
            isinstance(body, BinOp)
            and body.op == "-"
            and isinstance(body.left, Name)
            and isinstance(body.right, Name)
            and body.left.id != body.right.id
        ):
            continue
        a, b = body.left.id, body.right.id
        if compiled is None:
            try:
                compiled = compile_model(model)
            except (ValueError, ArtifactError):  # validation names it, not this reading
                return out
        ia, ib = compiled.column_index.get(a), compiled.column_index.get(b)
        if ia is None or ib is None:
            continue
        lowest = -math.inf  # the largest lower bound any row puts on a - b
        for row in compiled.rows:
            if set(row.coeffs) != {ia, ib} or row.coeffs[ia] != -row.coeffs[ib]:
                continue
            k = row.coeffs[ia]
            low = row.lower / k if k > 0 else row.upper / k
            lowest = max(lowest, low)
        if lowest > -math.inf:
            continue
        other = f"{b} - {a} <= {n.parameter or _written(n.value)}"
        name = f"{c.name}_other_way"
        out.append(
            Contradiction(
                f'constraint "{c.name}"',
                f"it bounds {a} - {b} by {n.written} one way only, but "
                f'"{_clip(texts[place[0]].rstrip(".!?;: "))}" bounds the difference either way',
                f'add "{other}"',
                (Edit("add", name, other),),
            )
        )
    return out


_GENERIC = frozenset(
    "number amount total unit quantity count type kind value level each all".split()
)
"""Words that say how much, not of what: two variables sharing only these share no noun."""


_SMALL_NUMBERS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty"
).split()


def _with_number_words(tokens: frozenset[str]) -> frozenset[str]:
    """``tokens`` with each small number also in the other spelling: "2" and "two"."""
    extra = {_SMALL_NUMBERS[int(t)] for t in tokens if t.isdigit() and int(t) < len(_SMALL_NUMBERS)}
    extra |= {str(_SMALL_NUMBERS.index(t)) for t in tokens if t in _SMALL_NUMBERS}
    return tokens | extra


def _total_readings(
    model: FiveElementModel, texts: list[str], where_stated: list[tuple[float, int, str]]
) -> list[Contradiction]:
    """A total bounded on one of its parts: "the total number of shifts must be at least 10"
    written ``X >= 10`` where the model's shift variables are ``X`` and ``Y``. Only where the
    limit is stated once, in a sentence whose words bound it the way the constraint does; the
    constraint is that one variable against that number; the sentence speaks of what at least
    two scalar variables share by their names and descriptions ("number of shifts for type X"),
    the constraint's among them, and singles none of them out (by a word, a letter or a number
    only one has: "at least 10 must be engineers", "truck A's", "Project X1"); and no other
    constraint uses the number. The edit bounds their sum. No alarm on the bank's 94 models;
    of the 440 replies of a real Mamo run, it reads the two that bound one variable by a total."""
    scalars = [v for v in model.variables if not v.index]
    if len(scalars) < 2 or len(scalars) != len(model.variables):
        return []
    described = {v.name: name_tokens(f"{v.name} {v.description or ''}") - _GENERIC for v in scalars}
    limited = [(c, node, _limits(node, model)) for c, node in _parsed_constraints(model)]
    limits_used = Counter(abs(n.value) for _, _, sides in limited for s in sides for n in s.numbers)
    out: list[Contradiction] = []
    for c, node, sides in limited:
        if len(node.ops) != 1 or len(sides) != 1 or len(sides[0].numbers) != 1:
            continue
        if sides[0].negated:
            continue
        # One side has the variables, the other the limit (``_limits`` found exactly one).
        body = next(o for o in node.operands if _uses_and_numbers(o, model)[0])
        if not isinstance(body, Name):
            continue
        (n,) = sides[0].numbers
        place = _one_place(n.value, where_stated)
        if place is None or limits_used[abs(n.value)] != 1:
            continue
        said = texts[place[0]]
        if stated_direction(said, place[1]) != sides[0].direction:
            continue
        words = name_tokens(said)
        parts = [v.name for v in scalars if described[v.name] & words]
        if len(parts) < 2 or body.id not in parts:
            continue
        common = frozenset.intersection(*(described[p] for p in parts))
        whole = [described[p] <= words for p in parts]
        if not common or any((described[p] - common) & words for p in parts) or len(set(whole)) > 1:
            continue  # the sentence singles out one of them ("at least 10 must be engineers")
        raw = {p: frozenset(re.split(r"_+", p.lower())) for p in parts}
        said_raw = _with_number_words(frozenset(re.findall(r"[a-z0-9]+", said.lower())))
        if any((raw[p] - frozenset.intersection(*raw.values())) & said_raw for p in parts):
            continue  # by a letter or a number: "truck A's" (truck_a), "Project X1" (x1),
            # "40 2-piece suits" (two_piece)
        written = re.sub(rf"\b{re.escape(body.id)}\b", f"({' + '.join(parts)})", c.expression)
        out.append(
            Contradiction(
                f'constraint "{c.name}"',
                f'it bounds {body.id} alone by {n.written}, but "{_clip(said.rstrip(".!?;: "))}" '
                f"bounds the total of {_and(tuple(parts))}",
                f'write "{written}"',
                (Edit("constraint", c.name, written),),
            )
        )
    return out


_SENSE_VERB = re.compile(
    r"\b(minimi[sz](?:e|es|ed|ing|ation)|maximi[sz](?:e|es|ed|ing|ation))\b", re.IGNORECASE
)
_LIMIT_PHRASE = re.compile(
    r"\b(?:at\s+(?:least|most|minimum|maximum)|a\s+(?:minimum|maximum)\s+of|"
    r"(?:minimum|maximum|min|max)\s+(?:amount\s+)?(?:of\s+)?\$?\d[\d,.]*|"
    r"no\s+(?:more|less|fewer)\s+than|"
    r"(?:minimum|maximum)\s+(?:requirements?|capacity|capacities|limits?|allowed|allowable))\b",
    re.IGNORECASE,
)
_ASKED_LOW = re.compile(
    r"\b(?:minimum|minimal|lowest|least|smallest|cheapest|fewest|min|to\s+(?:reduce|decrease))\b",
    re.IGNORECASE,
)
_ASKED_HIGH = re.compile(
    r"\b(?:maximum|maximal|highest|most|largest|greatest|biggest|max)\b", re.IGNORECASE
)
_ASKS = re.compile(r"\b(?:what|how|find|calculate|determine|compute)\b", re.IGNORECASE)


def asked_sense(request: str) -> tuple[str, str] | None:
    """The objective's sense the request asks for, and the sentence that says it: the one sense
    its verbs name ("maximize profits", "minimizing the cost"), else, when it uses none, the one
    its questions name ("what is the minimum total cost", "find ... the highest profit", "how
    many ... to reduce the total number"), read from the question word on, with limit phrases
    ("at most", "a minimum of 50", "the maximum capacity") left out. None when the request names
    both senses or neither. It reads all 99 NL4Opt dev problems, each as annotated."""
    texts = sentences(request)
    verbs: dict[str, str] = {}
    for s in texts:
        for verb in _SENSE_VERB.finditer(s):
            low = verb.group(1).lower()
            verbs.setdefault("minimize" if low.startswith("min") else "maximize", s)
    if verbs:
        return next(iter(verbs.items())) if len(verbs) == 1 else None
    asked: dict[str, str] = {}
    for s in texts:
        ask = _ASKS.search(s)
        if ask is None and not s.endswith("?"):
            continue
        words = _LIMIT_PHRASE.sub(" ", s[ask.start() :] if ask else s)
        if _ASKED_LOW.search(words):
            asked.setdefault("minimize", s)
        if _ASKED_HIGH.search(words):
            asked.setdefault("maximize", s)
    return next(iter(asked.items())) if len(asked) == 1 else None


def _sense_readings(model: FiveElementModel, request: str) -> list[Contradiction]:
    """An objective whose sense is not the one the request asks for ("what is the minimum total
    return" written ``maximize``): the edit turns the sense. Not for an objective written as a
    negation (``minimize -profit`` maximizes the profit)."""
    found = asked_sense(request)
    if found is None or found[0] == model.objective.sense:
        return []
    if model.objective.expression.lstrip().startswith("-"):
        return []
    sense, said = found
    return [
        Contradiction(
            "the objective",
            f'it is to {model.objective.sense}, but "{_clip(said.rstrip(".!?;: "))}" asks to '
            f"{sense}",
            f"make it {sense}",
            (Edit("sense", "", sense),),
        )
    ]


def _negative_floor_readings(
    model: FiveElementModel, where_stated: list[tuple[float, int, str]]
) -> list[Contradiction]:
    """A constraint that lets one variable go below zero (``-100 <= x4 <= 300``, as the request
    states it) while the variable's own lower bound is 0 (the default): the constraint can never
    bind, and the values below zero it allows are cut off. The edit makes the limit the
    variable's lower bound. Only a literal limit whose magnitude the request states."""
    scalars = {v.name: v for v in model.variables if not v.index}
    out = []
    for c, node in _parsed_constraints(model):
        body = [o for o in node.operands if _uses_and_numbers(o, model)[0]]
        if len(body) != 1 or not isinstance(body[0], Name) or body[0].id not in scalars:
            continue
        var = scalars[body[0].id]
        if var.lower != 0:
            continue
        for side in _limits(node, model):
            if side.direction != LOWER or not side.negated or len(side.numbers) != 1:
                continue
            (n,) = side.numbers
            if n.parameter or not any(_close(abs(n.value), v, 6) for v, _, _ in where_stated):
                continue
            floor = -abs(n.value)
            out.append(
                Contradiction(
                    f"variable '{var.name}'",
                    f'its lower bound is 0, so constraint "{c.name}" ({c.expression}) never binds, '
                    f"and the values down to {_written(floor)} it allows are cut off",
                    f'give {var.name} the lower bound {_written(floor)} ("lower": '
                    f"{_written(floor)})",
                    (Edit("bounds", var.name, (floor, var.upper)),),
                )
            )
            break
    return out


def _domain_contradiction(name: str, domain: str, sentence: str, said: str) -> Contradiction:
    """Variable ``name`` declared the other way from ``domain``, which ``sentence`` ``said``;
    the edit declares it ``domain``."""
    other = "continuous" if domain == "integer" else "integer"
    return Contradiction(
        f"variable '{name}'",
        f'it is {other}, but "{_clip(sentence.rstrip(".!?;: "))}" {said}',
        f'make it {domain} ("domain": "{domain}")',
        (Edit("domain", name, domain),),
    )


_MEASURED = re.compile(
    r"\b(kilo(?:gram)?s?|kgs?|grams?|tons?|tonnes?|pounds?|lbs?|ounces?|lit(?:re|er)s?|"
    r"millilit(?:re|er)s?|gallons?|acres?|hectares?|(?:square|cubic)\s+\w+)\s+of\s+"
    r"((?:[a-z][\w-]*\s+){0,2}[a-z][\w-]*)",
    re.IGNORECASE,
)
"""A unit of mass, volume or area and the words of what it measures ("kilogram of rice")."""
_WHOLE = re.compile(
    r"\bintegers?\b|\bintegral\b|\bwhole\b|\bindivisible\b|\bfraction|\bcannot be (?:split|"
    r"divided)|\bdiscrete\b",
    re.IGNORECASE,
)
"""Words that say some quantity comes whole: the request then decides integrality itself."""


def _domain_readings(model: FiveElementModel, texts: list[str]) -> list[Contradiction]:
    """An integer variable for an amount the request measures in a unit of mass, volume or area
    ("one kilogram of rice", "acres of wheat"): a divisible amount, not a count, so the edit
    makes it continuous. Only where every word of the variable's name (and description) is in
    that phrase, so ``bags_of_rice`` is not read by "5 kg of rice"; never where the request
    speaks of whole numbers, integers or fractions at all."""
    if any(_WHOLE.search(t) for t in texts):
        return []
    out = []
    for v in model.variables:
        if v.domain != "integer":
            continue
        words = name_tokens(f"{v.name} {v.description or ''}") - _GENERIC
        if not words:
            continue
        for t in texts:
            found = next(
                (
                    m
                    for m in _MEASURED.finditer(t)
                    if words <= name_tokens(f"{m.group(1)} {m.group(2)}") | _GENERIC
                ),
                None,
            )
            if found is None:
                continue
            said = (
                f"measures it in {found.group(1).lower()}: an amount, not a count of whole things"
            )
            out.append(_domain_contradiction(v.name, "continuous", t, said))
            break
    return out


_COUNTED = re.compile(
    r"\bhow\s+many\s+(bottles|cans|bags|boxes|packs|packets|packages|cartons|jars|cups|glasses|"
    r"servings|portions|pills|tablets|capsules|scoops|doses|bars|loaves|slices|pieces|batches|"
    r"trips|shifts)\s+of\s+((?:[a-z][\w-]*\s+){0,2}[a-z][\w-]*)",
    re.IGNORECASE,
)
"""A question that counts whole containers or portions of something ("how many bottles of each
drink"), and the words of what it counts."""
_DIVISIBLE = re.compile(r"\bfraction|\bcontinuous\b|\bdivisible\b|\bpartial\b", re.IGNORECASE)


def _count_readings(model: FiveElementModel, texts: list[str]) -> list[Contradiction]:
    """A continuous variable for what the request's question counts in whole containers or
    portions ("how many bottles of each drink should he buy"): the edit makes it integer. "Of
    each" counts every variable of a model whose variables are all scalar; otherwise every word
    of the variable's name (and description) is in the counted phrase. Never where the request
    speaks of fractions or of a divisible or continuous amount."""
    if any(_DIVISIBLE.search(t) for t in texts):
        return []
    scalar = all(not v.index for v in model.variables)
    out = []
    for v in model.variables:
        if v.domain != "continuous":
            continue
        words = name_tokens(f"{v.name} {v.description or ''}") - _GENERIC
        for t in texts:
            found = None
            for m in _COUNTED.finditer(t):
                counted = name_tokens(m.group(2)) - _GENERIC
                each = m.group(2).lower().split()[0] == "each"
                if (each and scalar) or (words and words <= counted | name_tokens(m.group(1))):
                    found = m
                    break
            if found is None:
                continue
            said = f"counts it in whole {found.group(1).lower()}"
            out.append(_domain_contradiction(v.name, "integer", t, said))
            break
    return out


def contradictions(model: FiveElementModel, request: str) -> list[Contradiction]:
    """The constraints that contradict what the request says (see the section's comment), and an
    objective of the other sense (``_sense_readings``)."""
    texts = sentences(request)
    where_stated = _where_stated(texts)
    first = [
        *_sense_readings(model, request),
        *_constant_readings(model),
        *_domain_readings(model, texts),
        *_count_readings(model, texts),
    ]
    if not where_stated:
        return first
    return [
        *first,
        *_direction_readings(model, texts, where_stated),
        *_ratio_readings(model, texts, where_stated),
        *_multiple_readings(model, texts),
        *_description_readings(model, texts, where_stated),
        *_unit_readings(model, texts, where_stated),
        *_missing_term_readings(model, texts, where_stated),
        *_difference_readings(model, texts, where_stated),
        *_total_readings(model, texts, where_stated),
        *_negative_floor_readings(model, where_stated),
    ]


def amended(
    model: FiveElementModel, grounding: Grounding
) -> tuple[FiveElementModel, list[Edit]] | None:
    """``model`` with the edits its contradictions name made (a limit turned round, a swapped
    limit set back, a unit converted), and those edits; None when there are none, two of them
    change one thing differently, or the edited model no longer parses. The caller checks the
    result again (solve, verify, ground): the edits are a candidate, never an answer by
    themselves."""
    edits: dict[tuple[str, str], Edit] = {}
    for c in grounding.contradicted:
        for e in c.edits:
            earlier = edits.setdefault((e.what, e.name), e)
            if earlier.value != e.value:
                return None
    if not edits:
        return None
    data = model.to_json()
    targets = {
        "parameter": {p["name"]: p for p in data.get("parameters", []) if "value" in p},
        "constraint": {c["name"]: c for c in data.get("constraints", [])},
        "bounds": {v["name"]: v for v in data.get("variables", [])},
        "domain": {v["name"]: v for v in data.get("variables", [])},
        "objective": {"": data["objective"]},
        "sense": {"": data["objective"]},
    }
    for e in edits.values():
        if e.what == "add":
            if e.name in targets["constraint"]:
                return None
            data["constraints"].append({"name": e.name, "expression": e.value})
            continue
        target = targets[e.what].get(e.name)
        if target is None:
            return None
        if e.what == "parameter":
            target["value"] = e.value
        elif e.what in ("constraint", "objective"):
            target["expression"] = e.value
        elif e.what == "sense":
            target["sense"] = e.value
        elif e.what == "domain":
            target["domain"] = e.value
        else:
            target["lower"], target["upper"] = e.value
    try:
        edited = FiveElementModel.model_validate(data)
    except ValueError:
        return None
    # An edit moves or converts the model's numbers, never drops one: the refrigerators' "55
    # kWh" limit set to 1500 in three constraints (their descriptions quoted the items' sentence)
    # gave a model with no energy limit that the checks could not fault.
    after = _used_values(edited)
    if not all(any(_single(u, v) for u in after) for v in _used_values(model)):
        return None
    return edited, list(edits.values())


def _used_values(model: FiveElementModel) -> set[float]:
    """The numbers (beyond 0 and 1) the objective and the constraints use, as magnitudes."""
    out: set[float] = set()
    for _, _, node in _expression_nodes(model):
        out |= {abs(n.value) for n in _uses_and_numbers(node, model)[1]}
    return out - {0.0, 1.0}
