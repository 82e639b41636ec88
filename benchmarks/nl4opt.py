"""NL4Opt gold declarations to five-element models.

The NL4Opt generation data (NeurIPS 2022 competition, ``shared/data/nl4opt``) annotates each problem
with an objective declaration and constraint declarations of seven types (``linear``, ``sum``,
``upperbound``, ``lowerbound``, ``xy``, ``xby``, ``ratio``) whose numbers are written as in the text
("twice", "third", "30%", "4,000", "one hundred thousand"). ``convert`` turns one record into a
five-element model: one set of decisions, one variable indexed by it (continuous and non-negative:
the declarations do not say which quantities are whole), one parameter per coefficient vector and
limit, and one constraint per declaration, with the declaration's words as its description.

    python -m benchmarks.nl4opt [PATH]     convert, solve and verify every problem; print a summary
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from formalizers.milp.model import FiveElementModel

DEFAULT_PATH = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "nl4opt" / "generation_dev.jsonl"
)

_UNITS = {
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
    "fifteen": 15,
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}
_SCALES = {"hundred": 100, "thousand": 1_000, "million": 1_000_000}
_FRACTIONS = {"half": 0.5, "third": 1 / 3, "quarter": 0.25, "fourth": 0.25, "fifth": 0.2}
_MULTIPLES = {"twice": 2.0, "double": 2.0, "thrice": 3.0, "triple": 3.0}


class ConversionError(ValueError):
    """A declaration that cannot be turned into a constraint (the message says which and why)."""


def parse_number(text: str) -> float:
    """A number as NL4Opt writes it: ``"4,000"``, ``"$200"``, ``"30%"`` (0.3), ``"thirty percent"``,
    ``"twice"``, ``"three times"``, ``"third"`` (1/3), ``"one hundred thousand"``, ``"8000 minutes"``."""
    s = text.strip().lower().replace(",", "").replace("$", "")
    percent = False
    if s.endswith("%"):
        percent, s = True, s[:-1].strip()
    elif s.endswith(" percent"):
        percent, s = True, s.removesuffix(" percent").strip()
    s = re.sub(r"\s+times$", "", s)
    m = re.match(r"^[-+]?(\d+\.?\d*|\.\d+)", s)
    if m:
        value = float(m.group(0))
    elif s in _FRACTIONS:
        value = _FRACTIONS[s]
    elif s in _MULTIPLES:
        value = _MULTIPLES[s]
    else:
        value = _words_to_number(s)
    return value / 100 if percent else value


def _words_to_number(s: str) -> float:
    total, current = 0, 0
    words = s.replace("-", " ").split()
    if not words:
        raise ConversionError(f"no number in {s!r}")
    for w in words:
        if w in _UNITS:
            current += _UNITS[w]
        elif w in _SCALES:
            current = max(current, 1) * _SCALES[w]
            if _SCALES[w] >= 1000:
                total, current = total + current, 0
        elif w == "and":
            continue
        else:
            raise ConversionError(f"cannot read {s!r} as a number")
    return float(total + current)


def _ident(name: str, taken: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_").lower() or "v"
    if not base[0].isalpha():
        base = f"v_{base}"
    base = base[:60]
    out, k = base, 2
    while out in taken:
        out, k = f"{base}_{k}", k + 1
    taken.add(out)
    return out


@dataclass(frozen=True, slots=True)
class Item:
    """One NL4Opt problem: its id, text, and the raw record."""

    id: str
    document: str
    record: dict[str, Any]


def load(path: str | Path = DEFAULT_PATH) -> Iterator[Item]:
    """The problems of an NL4Opt generation file (one ``{"<id>": {...}}`` object per line)."""
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                obj = json.loads(line)
                for key, record in obj.items():
                    yield Item(str(key), record["document"], record)


class _Vars:
    """Resolves a declaration's variable mention to one of the problem's decisions."""

    def __init__(self, record: dict[str, Any]) -> None:
        self.names: list[str] = list(dict.fromkeys(record["vars"]))
        taken: set[str] = set()
        self.member = {v: _ident(v, taken) for v in self.names}
        self.mentions = {
            k: v for k, v in record.get("var_mention_to_first_var", {}).items() if v in self.member
        }

    def resolve(self, mention: str) -> str:
        if mention in self.member:
            return self.member[mention]
        if mention in self.mentions:
            return self.member[self.mentions[mention]]
        low = mention.strip().strip(".").lower()
        for v in self.names:
            if v.lower() == low:
                return self.member[v]
        partial = [v for v in self.names if low and (low in v.lower() or v.lower() in low)]
        if len(partial) == 1:
            return self.member[partial[0]]
        raise ConversionError(f"variable mention {mention!r} matches none of {self.names}")


_OPS = {"LESS_OR_EQUAL": "<=", "GREATER_OR_EQUAL": ">="}


def convert(item: Item) -> FiveElementModel:
    """The five-element model of one problem's gold declarations."""
    rec = item.record
    dv = _Vars(rec)
    members = [dv.member[v] for v in dv.names]
    if not members:
        raise ConversionError("the problem declares no variables")
    params: list[dict[str, Any]] = []
    constraints: list[dict[str, Any]] = []

    def vector(name: str, terms: dict[str, str]) -> str:
        values: dict[str, float] = {}
        for mention, coef in terms.items():
            key = dv.resolve(mention)
            values[key] = values.get(key, 0.0) + parse_number(coef)
        params.append({"name": name, "index": ["DECISIONS"], "values": values, "default": 0})
        return name

    def scalar(name: str, text: str) -> str:
        params.append(
            {"name": name, "value": parse_number(text), "description": f"written as {text!r}"}
        )
        return name

    obj = rec["obj_declaration"]
    sense = "maximize" if obj["direction"].lower().startswith("max") else "minimize"
    if obj.get("type") == "objvar" or "terms" not in obj:
        mentioned = [dv.resolve(v) for v in obj.get("vars", [])] or members
        params.append(
            {
                "name": "obj_coef",
                "index": ["DECISIONS"],
                "values": dict.fromkeys(mentioned, 1.0),
                "default": 0,
            }
        )
    else:
        vector("obj_coef", obj["terms"])
    objective = {
        "sense": sense,
        "expression": "sum(obj_coef[d] * x[d] for d in DECISIONS)",
        "description": obj.get("name", ""),
    }

    for k, c in enumerate(rec["const_declarations"], 1):
        op = _OPS.get(c.get("operator", ""))
        if op is None:
            raise ConversionError(f"constraint {k}: unknown operator {c.get('operator')!r}")
        typ = c["type"]
        name = f"c{k}_{typ}"
        desc = f"{typ}: {c.get('direction', '')} " + ", ".join(
            f"{f}={c[f]!r}" for f in ("limit", "param", "var", "x_var", "y_var") if f in c
        )
        if typ == "linear":
            a = vector(f"a{k}", c["terms"])
            expr = f"sum({a}[d] * x[d] for d in DECISIONS) {op} {scalar(f'b{k}', c['limit'])}"
        elif typ == "sum":
            expr = f"sum(x[d] for d in DECISIONS) {op} {scalar(f'b{k}', c['limit'])}"
        elif typ in ("upperbound", "lowerbound"):
            expr = f'x["{dv.resolve(c["var"])}"] {op} {scalar(f"b{k}", c["limit"])}'
        elif typ == "xy":
            expr = f'x["{dv.resolve(c["x_var"])}"] {op} x["{dv.resolve(c["y_var"])}"]'
        elif typ == "xby":
            m = scalar(f"m{k}", c["param"])
            expr = f'x["{dv.resolve(c["x_var"])}"] {op} {m} * x["{dv.resolve(c["y_var"])}"]'
        elif typ == "ratio":
            r = scalar(f"r{k}", c["limit"])
            expr = f'x["{dv.resolve(c["var"])}"] {op} {r} * sum(x[d] for d in DECISIONS)'
        else:
            raise ConversionError(f"constraint {k}: unknown type {typ!r}")
        constraints.append({"name": name, "expression": expr, "description": desc.strip()})

    return FiveElementModel.model_validate(
        {
            "name": f"nl4opt_{item.id}",
            "description": item.document,
            "sets": [
                {
                    "name": "DECISIONS",
                    "members": members,
                    "description": "; ".join(f"{dv.member[v]} = {v}" for v in dv.names),
                }
            ],
            "parameters": params,
            "variables": [
                {"name": "x", "index": ["DECISIONS"], "description": "amount of each decision"}
            ],
            "objective": objective,
            "constraints": constraints,
        }
    )


def main(argv: list[str] | None = None) -> int:
    from agent.errors import ArtifactError
    from formalizers.milp.linear import compile_model
    from solvers import highs
    from solvers.verify import verify_linear

    path = Path(argv[0]) if argv else DEFAULT_PATH
    counts: dict[str, int] = {}
    for item in load(path):
        try:
            lm = compile_model(convert(item))
        except (ConversionError, ValueError) as e:
            counts["unconverted"] = counts.get("unconverted", 0) + 1
            print(f"{item.id}: not converted: {e}")
            continue
        except ArtifactError as e:
            counts["invalid"] = counts.get("invalid", 0) + 1
            print(f"{item.id}: the gold declarations do not compile: {e.feedback()}")
            continue
        result = highs.solve(lm)
        ok = verify_linear(lm, result).ok if result.has_solution else None
        counts[result.status.value] = counts.get(result.status.value, 0) + 1
        if result.status.value != "OPTIMAL" or not ok:
            print(
                f"{item.id}: {result.status.value} verified={ok} {result.diagnosis.summary if result.diagnosis else ''}"
            )
    print(json.dumps(counts, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
