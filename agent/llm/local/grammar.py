"""Grammars for our artifacts, generated from their definitions rather than written by hand.

- JSON artifacts (the five-element model, the routing spec, any pydantic model): the model's JSON
  schema, bounded (``bounded_schema``: every free string, array and open value gets a size limit, so
  a sample cannot run on forever), with the model's own validators that a schema cannot state
  restated as schema where they can be (``five_element_schema``).
- PDDL problems: generated from the chosen domain, so that only its predicates (with their arity
  and argument types), its types and the request's objects can be written (``PddlGrammar``).
- ASP programs: the subset we accept (facts, normal rules, integrity constraints, choice rules,
  ``#count``, ``#minimize``/``#maximize``, ``#show``, comments), shaped so that every rule is safe
  by construction: each rule's variables are bound by its first body literal, and an aggregate's or
  a choice's local variable by its own condition (``asp_grammar``).

A ``Grammar`` is library-neutral text: a JSON schema, or EBNF in the GBNF dialect that xgrammar reads
and llguidance converts to Lark. Each carries the validator of the artifact it produces: the
project's own parser, which every complete sample is checked with.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.errors import ConfigError, InputError

if TYPE_CHECKING:
    from pydantic import BaseModel

    from formalizers.pddl.model import Domain, Types


@dataclass(frozen=True, slots=True)
class Bounds:
    """Size limits a generated grammar puts on what it allows.

    ``max_string``: characters of a free-text JSON string; ``max_items``: items of a JSON array and
    properties of an open JSON object; ``any_depth``: nesting of a JSON value the schema leaves
    open; ``max_statements``: ASP statements and PDDL ``:init`` facts (goals get half);
    ``max_name``: characters of a name the model makes up. ``max_string`` also caps the
    repetitions inside a schema's own patterns (``{0,63}`` becomes ``{0,max_string}``).

    None leaves strings and arrays as long as the schema allows, and a schema's own limit above
    ``REPEAT_LIMIT`` is left to the validator: counted repetitions that long make grammar
    compilation slow (every count is a state of the automaton), while the token budget bounds the
    sample anyway. Small bounds are for random-weight test models, which otherwise ramble."""

    max_string: int | None = None
    max_items: int | None = None
    any_depth: int = 3
    max_statements: int = 60
    max_name: int = 24

    def __post_init__(self) -> None:
        for name in ("max_string", "max_items", "max_statements", "max_name"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.any_depth < 0:
            raise ValueError("any_depth must be >= 0")


@dataclass(frozen=True, slots=True)
class Grammar:
    """A grammar for one kind of artifact.

    ``format`` is ``json_schema`` (``source`` is the schema's JSON text) or ``ebnf`` (GBNF, root rule
    ``root``); ``artifact`` the kind of artifact (``milp``, ``routing``, ``pddl``, ``asp``...);
    ``validator`` the project's parser for a complete sample's text (raises ``ArtifactError`` or
    ``ValueError`` when the text is not a valid artifact)."""

    name: str
    format: str
    source: str
    artifact: str
    validator: Callable[[str], Any] | None = field(default=None, compare=False, repr=False)

    @property
    def id(self) -> str:
        """A short hash of the grammar's text: equal ids, equal languages."""
        return hashlib.sha256(f"{self.format}\n{self.source}".encode()).hexdigest()[:12]

    def validate(self, text: str) -> Any:
        """The artifact parsed from ``text`` by the project's parser (``text`` if none is set)."""
        return self.validator(text) if self.validator is not None else text


# -- JSON schemas ----------------------------------------------------------------------------------

_BLANKS = "\\s\\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
EDGE_CHAR = f'[^{_BLANKS}"\\\\\\x00-\\x1f\\x7f]'
"""A character that may start or end a free string: not blank (as ``str.strip`` counts blanks), not
a quote, a backslash or a control character."""
INNER_CHAR = '[^"\\\\\\x00-\\x1f\\x7f]'
"""A character inside a free string: no quote, backslash or control character, so the JSON text
needs no escapes and the string reads back exactly as sampled."""


REPEAT_LIMIT = 100
"""Longest counted repetition a generated grammar writes (xgrammar rejects counts above 128, and
compiling long counts is slow); longer limits are not written, and the validator checks them."""


def _limit(*limits: int | None) -> int | None:
    """The smallest of the given limits that a grammar can state (None: no stated limit)."""
    known = [x for x in limits if x is not None]
    if not known or min(known) > REPEAT_LIMIT:
        return None
    return min(known)


def string_pattern(min_len: int, max_len: int | None) -> str:
    """A regex for a free string of at least ``min_len`` and at most ``max_len`` characters (None:
    no maximum) that does not start or end with blanks (pydantic models that strip whitespace would
    otherwise see a different length)."""
    if max_len is not None:
        max_len = max(max_len, min_len, 1)
    if max_len == 1:
        core = EDGE_CHAR
    else:
        inner = (
            f"{INNER_CHAR}*"
            if max_len is None
            else f"{INNER_CHAR}{{{max(min_len - 2, 0)},{max_len - 2}}}"
        )
        core = f"{EDGE_CHAR}({inner}{EDGE_CHAR})" + ("?" if min_len <= 1 else "")
    return f"^({core})?$" if min_len == 0 else f"^{core}$"


_JSON_UNSAFE = '"\\\\\\x00-\\x1f\\x7f'
"""Characters (as regex class members) a generated string never holds: quote, backslash and
control characters, so that the JSON needs no escapes and reads back exactly as sampled."""


def narrow_pattern(pattern: str, cap: int | None) -> str:
    """A sub-language of a schema's own ``pattern``, safe to sample: negated classes and ``.``
    also exclude the JSON-unsafe characters, and with ``cap`` set, ``+``, ``*`` and counted
    repetitions ``{m,n}`` repeat at most ``max(m, cap)`` times. Whatever the result matches, the
    original matches too."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\" and i + 1 < n:
            out.append(pattern[i : i + 2])
            i += 2
        elif c == "[":
            j = i + 1
            if j < n and pattern[j] == "^":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 2 if pattern[j] == "\\" else 1
            body = pattern[i:j]
            out.append(body + (_JSON_UNSAFE if body.startswith("[^") else "") + "]")
            i = j + 1
        elif c == ".":
            out.append(INNER_CHAR)
            i += 1
        elif c in "+*" and cap is not None:
            out.append(f"{{{1 if c == '+' else 0},{cap}}}")
            i += 1
        elif c == "{" and cap is not None:
            m = re.match(r"\{(\d+)(?:,(\d*))?\}", pattern[i:])
            if m is None:
                out.append(c)
                i += 1
                continue
            lo = int(m.group(1))
            hi = lo if m.group(2) is None else int(m.group(2) or cap)
            out.append(f"{{{lo},{max(lo, min(hi, cap))}}}")
            i += m.end()
        else:
            out.append(c)
            i += 1
    return "".join(out)


_STRUCTURAL = ("type", "anyOf", "oneOf", "allOf", "$ref", "enum", "const", "properties", "items")


def _is_open(node: Any) -> bool:
    """A schema that allows any JSON value (``{}`` or ``true``, possibly with annotations only)."""
    return node is True or (isinstance(node, dict) and not any(k in node for k in _STRUCTURAL))


def _any_defs(bounds: Bounds) -> dict[str, Any]:
    """``_any0 .. _anyD``: JSON values nested at most ``D`` deep."""
    scalar = [
        {"type": "number"},
        {"type": "string", "pattern": string_pattern(0, _limit(bounds.max_string))},
        {"type": "boolean"},
        {"type": "null"},
    ]
    defs: dict[str, Any] = {"_any0": {"anyOf": scalar}}
    items = _limit(bounds.max_items)
    for d in range(1, bounds.any_depth + 1):
        inner = {"$ref": f"#/$defs/_any{d - 1}"}
        array: dict[str, Any] = {"type": "array", "items": inner}
        if items is not None:
            array["maxItems"] = items
        defs[f"_any{d}"] = {"anyOf": [*scalar, array, _open_object(inner, bounds)]}
    return defs


def _open_object(values: Any, bounds: Bounds) -> dict[str, Any]:
    out = {
        "type": "object",
        "patternProperties": {string_pattern(1, _limit(bounds.max_name)): values},
        "additionalProperties": False,
    }
    items = _limit(bounds.max_items)
    if items is not None:
        out["maxProperties"] = items
    return out


def _bound(node: Any, bounds: Bounds) -> Any:
    if _is_open(node):
        return {"$ref": f"#/$defs/_any{bounds.any_depth}"}
    if not isinstance(node, dict):
        return node
    out = dict(node)
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        if key in out:
            out[key] = [_bound(x, bounds) for x in out[key]]
    if "properties" in out:
        out["properties"] = {k: _bound(v, bounds) for k, v in out["properties"].items()}
    if "patternProperties" in out:
        out["patternProperties"] = {
            k: _bound(v, bounds) for k, v in out["patternProperties"].items()
        }
    if "items" in out:
        out["items"] = _bound(out["items"], bounds)
    types = out.get("type")
    if isinstance(types, list):
        rest = {k: v for k, v in out.items() if k != "type"}
        return {"anyOf": [_bound({**rest, "type": t}, bounds) for t in types]}
    if types == "string" and "pattern" in out:
        out["pattern"] = narrow_pattern(out["pattern"], _limit(bounds.max_string))
    elif types == "string" and not any(k in out for k in ("enum", "const", "format")):
        lo = int(out.pop("minLength", 0))
        hi = _limit(out.pop("maxLength", None), bounds.max_string)
        out["pattern"] = string_pattern(lo, None if hi is None else max(hi, lo))
    elif types == "array":
        hi = _limit(out.pop("maxItems", None), bounds.max_items)
        if hi is not None:
            out["maxItems"] = hi
        out.pop("uniqueItems", None)  # not expressible in a grammar; the validator checks it
    elif types == "object":
        extra = out.get("additionalProperties", True)
        if not out.get("properties") and not out.get("patternProperties") and extra is not False:
            values = _bound({} if extra is True else extra, bounds)
            return _open_object(values, bounds)
        if isinstance(extra, dict):
            out["additionalProperties"] = _bound(extra, bounds)
        if out.get("patternProperties") or isinstance(extra, dict):
            hi = _limit(out.pop("maxProperties", None), bounds.max_items)
            if hi is not None:
                out["maxProperties"] = hi
    return out


def bounded_schema(schema: dict[str, Any], bounds: Bounds) -> dict[str, Any]:
    """``schema`` with every free string, array and open value bounded (see ``Bounds``): a free
    string gets a pattern (no blanks at its ends, no control characters, no escapes, at most
    ``max_string`` characters), an array at most ``max_items`` items, an open value (``Any``) a
    choice of scalars and arrays/objects nested ``any_depth`` deep."""
    out = _bound(copy.deepcopy(schema), bounds)
    defs = out.setdefault("$defs", {})
    for name in list(defs):
        defs[name] = _bound(defs[name], bounds)
    defs.update(_any_defs(bounds))
    return out


def schema_grammar(
    model: type[BaseModel],
    bounds: Bounds | None = None,
    *,
    name: str = "",
    artifact: str = "json",
    refine: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    validator: Callable[[str], Any] | None = None,
) -> Grammar:
    """The grammar of ``model``'s JSON: its JSON schema, ``refine``d (for model validators a schema
    can state), then bounded. The default validator is ``model.model_validate_json``."""
    schema = model.model_json_schema()
    if refine is not None:
        schema = refine(schema)
    schema = bounded_schema(schema, bounds or Bounds())
    return Grammar(
        name or model.__name__,
        "json_schema",
        json.dumps(schema),
        artifact,
        validator or model.model_validate_json,
    )


def five_element_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Restate ``ParamDef``'s validator as schema: a parameter is either scalar (no ``index``, a
    ``value``, no ``values``) or indexed (a non-empty ``index`` and ``values``, no ``value``)."""
    out = copy.deepcopy(schema)
    defs = out.get("$defs", {})
    pd = defs.get("ParamDef")
    if pd is None:
        return out
    props = pd["properties"]
    scalar_props = {k: v for k, v in props.items() if k != "values"}
    scalar_props["index"] = {**props["index"], "maxItems": 0}
    scalar_props["value"] = {"type": "number"}
    indexed_props = {k: v for k, v in props.items() if k != "value"}
    indexed_props["index"] = {**props["index"], "minItems": 1}
    values = props["values"]
    variants = [v for v in values.get("anyOf", [values]) if v.get("type") != "null"]
    indexed_props["values"] = {"anyOf": variants} if len(variants) > 1 else variants[0]
    base = {k: v for k, v in pd.items() if k not in ("properties", "required")}
    defs["ParamDef"] = {
        "anyOf": [
            {**base, "properties": scalar_props, "required": ["name", "value"]},
            {**base, "properties": indexed_props, "required": ["name", "index", "values"]},
        ]
    }
    return out


def _five_element_validator(text: str) -> Any:
    from formalizers.offline.milp_files import five_element_from_data

    return five_element_from_data(json.loads(text))


def five_element_grammar(bounds: Bounds | None = None) -> Grammar:
    """The five-element model (``formalizers.milp.model.FiveElementModel``) as JSON."""
    from formalizers.milp.model import FiveElementModel

    return schema_grammar(
        FiveElementModel,
        bounds,
        name="five-element",
        artifact="milp",
        refine=five_element_schema,
        validator=_five_element_validator,
    )


SCHEMA_MODELS: dict[str, str] = {
    "milp": "formalizers.milp.model:FiveElementModel",
    "routing": "formalizers.routing.spec:RoutingSpec",
}
"""Where each JSON artifact's pydantic model lives (``module:Class``); a missing one raises
``ConfigError`` naming it."""


def schema_model(artifact: str) -> type[BaseModel]:
    """The pydantic model registered for ``artifact`` in ``SCHEMA_MODELS``."""
    import importlib

    try:
        module, cls = SCHEMA_MODELS[artifact].split(":")
    except KeyError:
        raise ConfigError(f"no JSON schema is registered for {artifact!r}") from None
    try:
        model: type[BaseModel] = getattr(importlib.import_module(module), cls)
    except (ImportError, AttributeError) as e:
        raise ConfigError(
            f"the {artifact} spec ({module}:{cls}) does not exist yet, so there is no {artifact} "
            f"grammar: {type(e).__name__}: {e}"
        ) from e
    return model


def routing_grammar(bounds: Bounds | None = None) -> Grammar:
    """The routing instance spec as JSON (see ``SCHEMA_MODELS``), validated by the spec module's
    ``parse_spec`` where it has one. The grammar states the spec's shape; its cross-references (a
    client's location id must be a declared location...) are the validator's to check."""
    import importlib

    model = schema_model("routing")
    parse = getattr(importlib.import_module(model.__module__), "parse_spec", None)
    validator = (lambda text: parse(json.loads(text))) if callable(parse) else None
    return schema_grammar(model, bounds, name="routing", artifact="routing", validator=validator)


# -- EBNF helpers ----------------------------------------------------------------------------------


def lit(text: str) -> str:
    """``text`` as a GBNF string literal."""
    esc = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return f'"{esc}"'


def alternatives(options: list[str]) -> str:
    return " | ".join(lit(o) for o in options)


def name_rule(max_len: int, first: str = "[a-z]", rest: str = "[a-z0-9_]") -> str:
    return f"{first} {rest}{{0,{max(max_len - 1, 0)}}}"


# -- PDDL ------------------------------------------------------------------------------------------


def render_objects(objects: dict[str, Types]) -> str:
    """``objects`` as the body of an ``(:objects ...)`` section, grouped by type (untyped objects
    last, without ``- object``)."""
    groups: dict[str, list[str]] = {}
    for name, types in objects.items():
        t = types[0] if types else "object"
        groups.setdefault(t, []).append(name)
    parts = []
    for t, names in sorted(groups.items(), key=lambda kv: (kv[0] == "object", kv[0])):
        parts.append(" ".join(names) + ("" if t == "object" else f" - {t}"))
    return " ".join(parts)


class PddlGrammar:
    """Grammars for problem files of one domain.

    ``problem(objects)``: a whole problem over the given objects (the request's): every ``:init``
    fact and goal uses a declared predicate with its arity, and each argument is an object or
    constant whose type fits that argument's type. ``head()`` and ``tail(objects)`` split the same
    file for when the objects are not known: the model first writes the header and the objects
    (``head``), which are read back (``objects_from_head``) to build the rest (``tail``)."""

    def __init__(self, domain: Domain, bounds: Bounds | None = None) -> None:
        self.domain = domain
        self.bounds = bounds or Bounds()
        self.key = domain.name

    @property
    def name(self) -> str:
        return f"pddl-problem:{self.key}"

    # the file's pieces
    def _header(self, name_rule_ref: str) -> str:
        after = lit(")\n(:domain " + self.domain.name + ")\n(:objects")
        return f'"(define (problem " {name_rule_ref} {after}'

    def _fixed_init(self) -> str:
        facts = "".join(
            f"\n  (= ({f}) 0)" for f, arity in self.domain.functions.items() if not arity
        )
        return facts

    def _metric(self) -> str:
        if "total-cost" in self.domain.functions:
            return "\n(:metric minimize (total-cost))"
        return ""

    def _atom_rules(self, objects: dict[str, Types]) -> tuple[list[str], bool]:
        """Rules ``atom`` and one ``oN`` per argument type; False when no fact can be written."""
        dom = self.domain
        pool = {**dom.constants, **objects}
        slot_rules: dict[tuple[str, ...], str] = {}
        rules: list[str] = []
        options: list[str] = []
        for pred, params in sorted(dom.predicates.items()):
            parts = [lit(pred)]
            ok = True
            for want in params:
                key = tuple(sorted(want))
                if key not in slot_rules:
                    fits = sorted(o for o, have in pool.items() if dom.compatible(have, want))
                    if not fits:
                        slot_rules[key] = ""
                    else:
                        slot_rules[key] = f"o{len(rules)}"
                        rules.append(f"o{len(rules)} ::= {alternatives(fits)}")
                if not slot_rules[key]:
                    ok = False
                    break
                parts.append(f'" " {slot_rules[key]}')
            if ok:
                options.append(" ".join(parts))
        if not options:
            return rules, False
        atom = '"(" (' + " | ".join(options) + ') ")"'
        if ":negative-preconditions" in dom.requirements:
            rules.append('goalatom ::= atom | "(not " atom ")"')
        else:
            rules.append("goalatom ::= atom")
        rules.append(f"atom ::= {atom}")
        return rules, True

    def _body(self, objects: dict[str, Types]) -> tuple[str, list[str]]:
        """The expression from ``(:init`` to the end of the file, and its rules."""
        b = self.bounds
        rules, writable = self._atom_rules(objects)
        init_fixed = lit("\n(:init" + self._fixed_init())
        end = lit(self._metric() + "\n)")
        if not writable:
            return f'{init_fixed} ")\\n(:goal (and))" {end}', rules
        goals = max(b.max_statements // 2, 1)
        expr = (
            f'{init_fixed} ("\\n  " atom){{0,{b.max_statements}}} ")\\n(:goal (and" '
            f'("\\n  " goalatom){{1,{goals}}} "))" {end}'
        )
        return expr, rules

    def _name(self) -> str:
        return f"pname ::= {name_rule(self.bounds.max_name, '[a-z]', '[a-z0-9-]')}"

    def problem(self, objects: dict[str, Types]) -> Grammar:
        """The grammar of a whole problem file over ``objects`` (name -> types)."""
        body, rules = self._body(objects)
        head = self._header("pname") + " " + lit(" " + render_objects(objects) + ")")
        source = "\n".join([f"root ::= {head} {body}", self._name(), *rules])
        return self._grammar(f"pddl-problem:{self.key}", source)

    def head(self) -> Grammar:
        """The grammar of a problem file's beginning: header and ``(:objects ...)``."""
        dom, b = self.domain, self.bounds
        types = sorted(t for t in dom.parents if t != "object")
        groups = min(b.max_items or 12, 12)
        per_group = min(b.max_items or 8, 8)
        if types:
            group = f'(" " oname){{1,{per_group}}} " - " otype'
            extra = [f"otype ::= {alternatives(types)}"]
        else:
            group = '" " oname'
            extra = []
        source = "\n".join(
            [
                f'root ::= {self._header("pname")} ({group}){{1,{groups}}} ")"',
                self._name(),
                f"oname ::= {name_rule(min(b.max_name, 12), '[a-z]', '[a-z0-9]')}",
                *extra,
            ]
        )
        return Grammar(f"pddl-head:{self.key}", "ebnf", source, "pddl-head", self.objects_from_head)

    def objects_from_head(self, text: str) -> dict[str, Types]:
        """The objects declared in a ``head`` sample (a repeated name keeps its first type)."""
        from formalizers.pddl.model import read_problem

        start = text.find("(:objects")
        if start < 0:
            raise ValueError("no (:objects ...) section")
        body = text[start + len("(:objects") :].rstrip().removesuffix(")")
        seen: dict[str, Types] = {}
        # Read each group through the project's parser, so types are checked the same way.
        prob = read_problem(
            f"(define (problem p) (:domain {self.domain.name}) (:objects {_dedupe(body)}) "
            "(:init) (:goal (and)))",
            self.domain,
        )
        seen.update(prob.objects)
        return seen

    def head_text(self, sample: str, objects: dict[str, Types]) -> str:
        """``sample``'s header with its objects written canonically (duplicates dropped)."""
        start = sample.find("(:objects")
        return sample[:start] + "(:objects " + render_objects(objects) + ")"

    def tail(self, objects: dict[str, Types]) -> Grammar:
        """The grammar of the rest of the file after ``head_text``."""
        body, rules = self._body(objects)
        source = "\n".join([f"root ::= {body}", *rules])
        return self._grammar(f"pddl-tail:{self.key}", source, artifact="pddl-tail")

    def _grammar(self, name: str, source: str, artifact: str = "pddl") -> Grammar:
        domain = self.domain

        def validate(text: str) -> Any:
            from formalizers.pddl.model import read_problem

            return read_problem(text, domain)

        return Grammar(name, "ebnf", source, artifact, validate if artifact == "pddl" else None)


def _dedupe(objects_body: str) -> str:
    """An ``(:objects ...)`` body with repeated names removed (the first declaration stays)."""
    tokens = objects_body.split()
    out: list[str] = []
    pending: list[str] = []
    seen: set[str] = set()
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok == "-" and i + 1 < len(tokens):
            if pending:
                out.extend([*pending, "-", tokens[i + 1]])
            pending = []
            i += 2
            continue
        if tok not in seen:
            seen.add(tok)
            pending.append(tok)
        i += 1
    out.extend(pending)
    return " ".join(out)


def read_domain_arg(arg: str) -> Domain:
    """A domain from a PDDL file's path or a shipped domain's name (``blocksworld``)."""
    from formalizers.pddl.library import find
    from formalizers.pddl.model import read_domain

    known = find(arg)
    if known is not None:
        return known.domain
    p = Path(arg)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{arg!r} is neither a known domain nor a readable PDDL file: {e}") from e
    return read_domain(text)


def parse_objects(text: str, domain: Domain) -> dict[str, Types]:
    """Objects written as a PDDL typed list (``b1 b2 - block t1 - truck``), checked against
    ``domain`` by the project's problem reader."""
    from formalizers.pddl.model import read_problem

    prob = read_problem(
        f"(define (problem p) (:domain {domain.name}) (:objects {text}) (:init) (:goal (and)))",
        domain,
    )
    if not prob.objects:
        raise InputError("no objects given")
    return prob.objects


def pddl_any_grammar(bounds: Bounds | None = None) -> Grammar:
    """A domain file and a problem file as balanced s-expressions (for requests with no known
    domain, where the model writes both): well-formed, but only the reader can check symbols."""
    b = bounds or Bounds()
    source = "\n".join(
        [
            'root ::= "(define (domain " name ")" sx3{1,12} "\\n)\\n\\n(define (problem " name ")" '
            'sx3{1,12} "\\n)"',
            'sx3 ::= "\\n  " ("(" word (" " sx2){0,8} ")" | word)',
            'sx2 ::= "(" word (" " sx1){0,8} ")" | word',
            'sx1 ::= "(" word (" " word){0,8} ")" | word',
            f"word ::= [a-z:?=<>+*/-] [a-z0-9_-]{{0,{b.max_name - 1}}} | [0-9]{{1,6}}",
            f"name ::= {name_rule(b.max_name, '[a-z]', '[a-z0-9-]')}",
        ]
    )
    return Grammar("pddl-any", "ebnf", source, "pddl-any", None)


# -- ASP -------------------------------------------------------------------------------------------


def _class_without(c: str) -> str:
    """``[a-zA-Z0-9_]`` without the lowercase letter ``c``."""
    lower = "".join(
        f"{lo}-{hi}" if lo != hi else lo
        for lo, hi in (("a", chr(ord(c) - 1)), (chr(ord(c) + 1), "z"))
        if lo <= hi
    )
    return f"[{lower}A-Z0-9_]"


def _ident_not(keyword: str, rest: str, max_len: int) -> str:
    """A GBNF expression for identifiers (a lowercase letter, then ``rest`` characters) of at most
    ``max_len`` characters, other than the lowercase ``keyword`` (clingo's ``not``)."""
    first = keyword[0]
    first_class = _class_without(first).replace("A-Z0-9_", "")
    alts = [f"{first_class} {rest}{{0,{max(max_len - 1, 0)}}}"]
    for i in range(1, len(keyword)):
        prefix = keyword[:i]
        alts.append(lit(prefix))
        left = max_len - i - 1
        if left >= 0:
            alts.append(f"{lit(prefix)} {_class_without(keyword[i])} {rest}{{0,{left}}}")
    if max_len > len(keyword):
        alts.append(f"{lit(keyword)} {rest}{{1,{max_len - len(keyword)}}}")
    return " | ".join(f"({a})" for a in alts)


def asp_grammar(bounds: Bounds | None = None) -> Grammar:
    """The ASP subset we accept, safe by construction (see the module docstring)."""
    b = bounds or Bounds()
    n = max(min(b.max_name, 16), 2)
    rest = "[a-zA-Z0-9_]"
    rules = [
        f'root ::= stmt ("\\n" stmt){{0,{max(b.max_statements - 1, 0)}}}',
        "stmt ::= fact | show | comment | choice0"
        + "".join(f" | rule{k} | cons{k} | choice{k} | opt{k}" for k in (1, 2, 3)),
        f"ident ::= {_ident_not('not', rest, n)}",
        'int ::= "0" | [1-9] [0-9]{0,3}',
        'cmp ::= "=" | "!=" | "<=" | "<" | ">=" | ">"',
        "const ::= ident | int",
        'fterm ::= ident | int | int ".." int',
        'fact ::= ident ("(" fterm (", " fterm){0,2} ")")? "."',
        'show ::= "#show " ident "/" [0-3] "."',
        f'comment ::= "% " [^\\x00-\\x1f\\x7f]{{0,{min(b.max_string or 60, 60)}}}',
        'lb ::= (int " ")?',
        'ub ::= (" " int)?',
        'lterms0 ::= "L" | "L, " const | const ", L"',
        'celem0 ::= ident "(" lterms0 ") : " ident "(L)"',
        'choice0 ::= lb "{ " celem0 ("; " celem0){0,1} " }" ub "."',
    ]
    for k in (1, 2, 3):
        names = ["X", "Y", "Z"][:k]
        rules += [
            f"var{k} ::= {alternatives(names)}",
            f"term{k} ::= var{k} | const",
            f'hterm{k} ::= term{k} | var{k} " + " int',
            f"bind{k} ::= ident {lit('(' + ', '.join(names) + ')')}",
            f'atom{k} ::= ident ("(" term{k} (", " term{k}){{0,2}} ")")?',
            f'lterms{k} ::= "L" | "L, " term{k} | term{k} ", L"',
            f'count{k} ::= "#count {{ L : " ident "(" lterms{k} ") }} " cmp " " int',
            f'lit{k} ::= atom{k} | "not " atom{k} | var{k} " " cmp " " term{k} | count{k}',
            f'body{k} ::= bind{k} (", " lit{k}){{0,3}}',
            f'head{k} ::= ident ("(" hterm{k} (", " hterm{k}){{0,2}} ")")?',
            f'rule{k} ::= head{k} " :- " body{k} "."',
            f'cons{k} ::= ":- " body{k} "."',
            f'celem{k} ::= ident "(" lterms{k} ") : " ident "(L)"',
            f'choice{k} ::= lb "{{ " celem{k} ("; " celem{k}){{0,1}} " }}" ub " :- " body{k} "."',
            f'opt{k} ::= ("#minimize" | "#maximize") " {{ " (var{k} | int) (", " var{k}){{0,2}} '
            f'" : " body{k} " }}."',
        ]
    return Grammar("asp", "ebnf", "\n".join(rules), "asp", _asp_validator)


def _asp_validator(text: str) -> Any:
    from formalizers.asp.formalizer import extract_program
    from formalizers.asp.program import check_program

    return check_program(extract_program(text))


# -- by name ---------------------------------------------------------------------------------------

ARTIFACTS = ("milp", "routing", "asp", "pddl")


def grammar_for(
    artifact: str, bounds: Bounds | None = None, objects: str = ""
) -> tuple[Grammar | None, PddlGrammar | None]:
    """The grammar for an ``--artifact`` argument: ``milp``, ``routing``, ``asp`` or
    ``pddl:DOMAIN`` (a PDDL file or a shipped domain's name). For PDDL, ``objects`` (a typed list)
    fixes the objects; without them the first value is None and the ``PddlGrammar`` builds the
    grammars of the two phases (objects first)."""
    kind, _, arg = artifact.partition(":")
    if kind == "milp":
        return five_element_grammar(bounds), None
    if kind == "routing":
        return routing_grammar(bounds), None
    if kind == "asp":
        return asp_grammar(bounds), None
    if kind == "pddl":
        if not arg:
            raise InputError("--artifact pddl needs a domain: pddl:DOMAIN_FILE or pddl:blocksworld")
        pg = PddlGrammar(read_domain_arg(arg), bounds)
        if objects.strip():
            return pg.problem(parse_objects(objects, pg.domain)), pg
        return None, pg
    raise InputError(f"unknown artifact {artifact!r}; use milp, routing, asp or pddl:DOMAIN_FILE")
