"""NL4Opt gold declarations to five-element models.

The NL4Opt generation data (NeurIPS 2022 competition, ``shared/data/nl4opt``) annotates each problem
with an objective declaration and constraint declarations of seven types (``linear``, ``sum``,
``upperbound``, ``lowerbound``, ``xy``, ``xby``, ``ratio``) whose numbers are written as in the text
("twice", "third", "30%", "4,000", "one hundred thousand"). ``convert`` turns one record into a
five-element model: one set of decisions, one variable indexed by it (continuous and non-negative:
the declarations do not say which quantities are whole), one parameter per coefficient vector and
limit, and one constraint per declaration, with the declaration's words as its description.

    python -m benchmarks.nl4opt [PATH]     convert, solve and verify every problem; print a summary
    python -m benchmarks.nl4opt --write-bank [PATH]   write the example bank (``bank_model``)
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from formalizers.milp.grounding import FRACTION_WORDS, SCALE_WORDS, UNIT_WORDS, words_value
from formalizers.milp.model import FiveElementModel

DEFAULT_PATH = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "nl4opt" / "generation_dev.jsonl"
)


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
    elif s in FRACTION_WORDS:
        value = FRACTION_WORDS[s]
    else:
        value = _words_to_number(s)
    return value / 100 if percent else value


_MAX_WORDS = ("max", "highest", "most", "largest", "greatest", "increase")
_MIN_WORDS = ("min", "lowest", "least", "fewest", "smallest", "decrease", "reduce")


def objective_sense(direction: str) -> str:
    """The sense an objective declaration's ``direction`` words give: ``"maximize"`` for
    "maximize", "maximizing", "highest"..., ``"minimize"`` for "minimum", "reduce", "decrease"...
    (the dev split words 7 of its 99 objectives so). Unknown words raise ``ConversionError``."""
    word = direction.strip().lower()
    if word.startswith(_MAX_WORDS):
        return "maximize"
    if word.startswith(_MIN_WORDS):
        return "minimize"
    raise ConversionError(f"objective direction {direction!r} is neither a maximum nor a minimum")


def _words_to_number(s: str) -> float:
    words = s.replace("-", " ").split()
    if not words:
        raise ConversionError(f"no number in {s!r}")
    value = words_value(s)
    if value is None or any(
        w not in UNIT_WORDS and w not in SCALE_WORDS and w != "and" for w in words
    ):
        raise ConversionError(f"cannot read {s!r} as a number")
    return value


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
    sense = objective_sense(obj["direction"])
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


# -- the example bank: readable, checked models of the dev problems --------------------------------

INTEGRALITY_RULE = (
    "A decision is integer when the request counts whole things: items made or sold (cakes, "
    "phones, containers, packages, kits), vehicles, trips, machines, stores, people, shifts, and "
    "portions taken whole (servings, doses, glasses, cups, scoops, packs, meals, batches, runs of "
    "an experiment). It is continuous when the request measures an amount of something divisible: "
    "kilograms, tons or units of a material or ingredient, acres, hectares or square kilometres "
    "of land, dollars invested, hours or minutes a machine or process runs."
)
"""The rule the bank's variable domains follow (``CONTINUOUS`` lists the problems it makes
continuous; every other problem's decisions count whole things)."""

CONTINUOUS = {
    "2117951416": "units of peppers and tomatoes mixed into a paste (ingredients)",
    "-1501301743": "tons of alloy",
    "1775140418": "kilograms of rice and corn",
    "-927748635": "acres of strawberries and watermelons",
    "1213406437": "dollars invested",
    "2042898874": "kilograms of paint",
    "-1684549839": "kilograms of ham and bacon",
    "882129265": "acres of land served by each kind of truck",
    "691521231": "hours each analyzer runs",
    "-188754660": "hours each plant runs",
    "-706167573": "hectares harvested each way",
    "-955370712": "square kilometres of water used each way",
    "-1389517053": "minutes each reaction runs",
}
"""Problems whose decisions are amounts of something divisible (``INTEGRALITY_RULE``), with what
the text measures; checked by reading every dev problem."""

CORRECTIONS: dict[str, dict[str, Any]] = {
    # The annotation drops "A train can carry at most 500 passengers."
    "-996226930": {
        "add": [
            {"type": "sum", "direction": "at most", "limit": "500", "operator": "LESS_OR_EQUAL"}
        ]
    },
    # "at least 1200 new accounts every day" is annotated with no terms: 5 and 12 per branch.
    "-1379231929": {"terms": {1: {"remote branch": "5", "urban branch": "12"}}},
    # "at least 150000 orders per day" is annotated with no terms: 10000 and 7000 per line.
    "141730788": {
        "terms": {
            0: {"all-in-one manufacturing line": "10000", "decoupled manufacturing line": "7000"}
        }
    },
    # The demand constraint drops "A small production line is capable of creating 150 sets"
    # (found by the grounding check: formalizers.milp.grounding).
    "471112257": {"terms": {1: {"small production line": "150", "large production line": "500"}}},
    # The guests constraint drops "a coin-based system can only accept 45 guests per hour".
    "137282577": {"terms": {0: {"card-based system": "60", "coin-based system": "45"}}},
    # "economical mobile phone" is annotated as a mention of the premium phone, so the economical
    # one is never used and both coefficients fall on the premium one (4400; the right optimum
    # is 4950, found by the real model's replies, 2026-12-08).
    "1670020945": {"mentions": {"economical mobile phone": "economical"}},
    # "at least 1000 t-shirts or hoodies, in any combination" is annotated as at least 1000 of
    # each (30000); it bounds their sum (found by the real model's replies, 2026-12-07).
    "-106908195": {
        "drop": [0, 1],
        "add": [
            {
                "type": "sum",
                "direction": "at least",
                "limit": "1000",
                "operator": "GREATER_OR_EQUAL",
            }
        ],
    },
}
"""Annotation slips fixed for the bank (each checked against the text); the dataset's label of
these problems stays what the raw declarations give."""

NO_OPTIMUM = {
    "-1194187124": "infeasible as stated: at least 170 orders needs 637.5 electricity units; 600",
    "-1028228232": "infeasible as stated: 300 strong containers need 1200 emulsifier units; 1000",
    "-641246185": "infeasible as stated: at most 30 units cover at most 360 of the 8000 minutes",
    "31495053": "unbounded as stated: profit with lower limits only",
    "381702316": "unbounded as stated: profit with lower limits only",
}
"""Problems left out of the bank: their text admits no optimum (a worked example of those would
teach nothing about modelling)."""


def corrected(item: Item) -> Item:
    """``item`` with its annotation slips fixed (``CORRECTIONS``); the item itself otherwise."""
    fix = CORRECTIONS.get(item.id)
    if fix is None:
        return item
    rec = json.loads(json.dumps(item.record))
    rec["var_mention_to_first_var"] = {
        **rec.get("var_mention_to_first_var", {}),
        **fix.get("mentions", {}),
    }
    for k, terms in fix.get("terms", {}).items():
        rec["const_declarations"][k]["terms"] = dict(terms)
    drop = set(fix.get("drop", []))
    rec["const_declarations"] = [
        d for k, d in enumerate(rec["const_declarations"]) if k not in drop
    ] + list(fix.get("add", []))
    return Item(item.id, item.document, rec)


def _sentences(text: str) -> list[str]:
    # A decimal point ("2.5 hours") does not end a sentence.
    parts = re.split(r"(?<=[.?!])\s+(?=[A-Z\u201c\"])", " ".join(text.split()))
    return [p.strip() for p in parts if p.strip()]


class _Words:
    """Finds the sentence of the request that a declaration came from."""

    def __init__(self, document: str) -> None:
        self.sentences = _sentences(document)
        self.used: set[int] = set()

    def find(self, *needles: str) -> str:
        keys = [n.lower() for n in needles if n and n.strip()]
        for pass_ in (0, 1):
            for i, s in enumerate(self.sentences):
                if pass_ == 0 and i in self.used:
                    continue
                low = s.lower()
                if keys and all(re.search(rf"(?<![\w.]){re.escape(k)}(?![\w])", low) for k in keys):
                    self.used.add(i)
                    return s
        return ""


def bank_model(item: Item, domain: str = "") -> dict[str, Any]:
    """The readable five-element model of one problem's gold declarations, as JSON data: one
    scalar variable per decision (``domain``, or integer or continuous by ``INTEGRALITY_RULE``),
    one named parameter per number, each constraint described by the sentence it came from.
    Problems in ``CORRECTIONS`` have their annotation slips fixed first."""
    item = corrected(item)
    rec = item.record
    dv = _Vars(rec)
    if not dv.names:
        raise ConversionError("the problem declares no variables")
    domain = domain or ("continuous" if item.id in CONTINUOUS else "integer")
    words = _Words(item.document)
    taken = set(dv.member.values())
    params: list[dict[str, Any]] = []

    def param(base: str, text: str, what: str) -> str:
        name = _ident(base, taken)
        entry: dict[str, Any] = {"name": name, "value": parse_number(text)}
        if what:
            entry["description"] = what
        params.append(entry)
        return name

    def linear(prefix: str, terms: dict[str, str], what: str) -> str:
        parts = []
        for mention, coef in terms.items():
            var = dv.resolve(mention)
            # The name says what a coefficient is: no description (the examples stay short).
            parts.append(f"{param(f'{prefix}_{var}', coef, '')} * {var}")
        return " + ".join(parts) if parts else "0"

    everything = " + ".join(dv.member[v] for v in dv.names)
    obj = rec["obj_declaration"]
    obj_name = str(obj.get("name", "")).strip() or "objective"
    sense = objective_sense(obj["direction"])
    if obj.get("type") == "objvar" or "terms" not in obj:
        mentioned = [dv.resolve(v) for v in obj.get("vars", [])] or list(dv.member.values())
        expression = " + ".join(dict.fromkeys(mentioned))
    else:
        short = _ident(obj_name.split()[-1], set()) if obj_name.split() else "value"
        expression = linear(short, obj["terms"], obj_name)

    constraints: list[dict[str, Any]] = []
    for k, c in enumerate(rec["const_declarations"], 1):
        op = _OPS.get(c.get("operator", ""))
        if op is None:
            raise ConversionError(f"constraint {k}: unknown operator {c.get('operator')!r}")
        typ = c["type"]
        limit = c.get("limit", "")
        said = words.find(limit.split()[0] if limit else "", c.get("direction", "")) or words.find(
            limit.split()[0] if limit else c.get("direction", "")
        )
        if typ == "linear":
            lhs = linear(f"c{k}", c["terms"], f"c{k}_{typ}: amount")
            expr = f"{lhs} {op} {param(f'c{k}_limit', limit, f'limit of c{k}_{typ}')}"
        elif typ == "sum":
            expr = f"{everything} {op} {param(f'c{k}_total', limit, f'limit of c{k}_{typ}')}"
        elif typ in ("upperbound", "lowerbound"):
            var = dv.resolve(c["var"])
            side = "max" if typ == "upperbound" else "min"
            expr = f"{var} {op} {param(f'{side}_{var}', limit, f'{side} of {var}')}"
        elif typ == "xy":
            expr = f"{dv.resolve(c['x_var'])} {op} {dv.resolve(c['y_var'])}"
        elif typ == "xby":
            x, y = dv.resolve(c["x_var"]), dv.resolve(c["y_var"])
            m = param(f"c{k}_factor", c["param"], f"factor in c{k}_{typ}")
            expr = f"{x} {op} {m} * {y}"
        elif typ == "ratio":
            var = dv.resolve(c["var"])
            r = param(f"c{k}_share", limit, f"share in c{k}_{typ}")
            expr = f"{var} {op} {r} * ({everything})"
        else:
            raise ConversionError(f"constraint {k}: unknown type {typ!r}")
        constraints.append({"name": f"c{k}_{typ}", "expression": expr, "description": said})

    return {
        "name": f"nl4opt_{item.id}".replace("-", "m"),
        "description": obj_name,
        "parameters": params,
        "variables": [{"name": dv.member[v], "domain": domain, "description": v} for v in dv.names],
        "objective": {"sense": sense, "expression": expression, "description": obj_name},
        "constraints": constraints,
    }


BANK_FILE = (
    Path(__file__).resolve().parents[1] / "formalizers" / "milp" / "bank" / "nl4opt_dev.json"
)


def build_bank(path: str | Path = DEFAULT_PATH) -> dict[str, Any]:
    """The example bank: every dev problem with an optimum, its readable model (``bank_model``),
    the model's optimum, and the dataset's label (the optimum of the raw declarations, continuous)
    beside it. Raises ``ValueError`` when a bank model does not solve to a verified optimum."""
    from agent.errors import ArtifactError
    from formalizers.milp.linear import compile_model
    from formalizers.milp.model import five_element_from_data
    from solvers import highs
    from solvers.verify import verify_linear

    entries = []
    for item in load(path):
        if item.id in NO_OPTIMUM:
            continue
        data = bank_model(item)
        lm = compile_model(five_element_from_data(data))
        result = highs.solve(lm)
        if result.status.value != "OPTIMAL" or not verify_linear(lm, result).ok:
            raise ValueError(
                f"bank model {item.id} is {result.status.value}, not a verified optimum"
            )
        try:
            label = highs.solve(compile_model(convert(item)))
            gold = label.objective if label.status.value == "OPTIMAL" else None
        except (ConversionError, ArtifactError):
            gold = None
        entries.append(
            {
                "id": item.id,
                "request": " ".join(item.document.split()),
                "optimum": result.objective,
                "label": gold,
                "model": data,
            }
        )
    return {
        "source": "NL4Opt generation dev split (nl4opt/nl4opt-competition @ 49f1e0d, MIT): the "
        "gold declarations as readable five-element models (python -m benchmarks.nl4opt "
        "--write-bank)",
        "integrality": INTEGRALITY_RULE,
        "left_out": NO_OPTIMUM,
        "corrected": sorted(CORRECTIONS),
        "items": entries,
    }


def main(argv: list[str] | None = None) -> int:
    from agent.errors import ArtifactError
    from formalizers.milp.linear import compile_model
    from solvers import highs
    from solvers.verify import verify_linear

    args = list(argv or [])
    if args and args[0] == "--write-bank":
        bank = build_bank(args[1] if len(args) > 1 else DEFAULT_PATH)
        BANK_FILE.parent.mkdir(parents=True, exist_ok=True)
        lines = ",\n".join(json.dumps(e, ensure_ascii=False) for e in bank.pop("items"))
        head = json.dumps(bank, indent=1, ensure_ascii=False)[:-2]
        BANK_FILE.write_text(f'{head},\n "items": [\n{lines}\n]}}\n', encoding="utf-8")
        print(f"wrote {BANK_FILE}")
        return 0
    path = Path(args[0]) if args else DEFAULT_PATH
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
