"""Grammar values: what a caller asks a model's reply to be, as library-neutral text.

A ``Grammar`` is a JSON schema or EBNF (the GBNF dialect xgrammar reads and llguidance converts to
Lark), with the name of the artifact it produces and, optionally, the project's own parser for a
complete sample. The model layer only carries grammars: each formal language builds its own
(``formalizers/<language>/grammar.py``) and passes it with each call (``Chat.complete(messages,
output=grammar)``); the local engine samples under it, a served model receives a JSON schema as
structured output.

Also here, the machinery any language's grammar is generated with, none of it about a language:

- ``Bounds``: size limits a generated grammar puts on what it allows (a sample cannot run on);
  ``bounded_schema`` bounds any JSON schema (every free string, array and open value gets a size
  limit; the schema's own patterns are narrowed to what is safe to sample), ``schema_grammar``
  makes a pydantic model's grammar;
- EBNF helpers (``lit``, ``alternatives``, ``name_rule``);
- ``Staged``: a grammar drawn in two phases (PDDL's objects, then facts and goals over them),
  by a protocol the engine runs without knowing the language;
- ``under_bounds``: how an engine applies its own ``Bounds`` to the grammar it is given: a grammar
  generated with bounds carries its builder (``Grammar.with_bounds``, ``Staged.with_bounds``) and
  is built again; any other JSON schema is bounded generically; other EBNF is taken as it is.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from pydantic import BaseModel


@dataclass(frozen=True, slots=True)
class Grammar:
    """A grammar for one kind of artifact.

    ``format`` is ``json_schema`` (``source`` is the schema's JSON text) or ``ebnf`` (GBNF, root rule
    ``root``); ``artifact`` the kind of artifact (``milp``, ``routing``, ``pddl``, ``asp``, ``json``...);
    ``validator`` the project's parser for a complete sample's text (raises ``ArtifactError`` or
    ``ValueError`` when the text is not a valid artifact)."""

    name: str
    format: str
    source: str
    artifact: str
    validator: Callable[[str], Any] | None = field(default=None, compare=False, repr=False)
    with_bounds: Callable[[Bounds], Grammar] | None = field(default=None, compare=False, repr=False)
    """This grammar built again under other size limits (a grammar generated with ``Bounds``
    carries its builder). None: a JSON schema is bounded generically (``bounded_schema``), EBNF
    is taken as it is (``under_bounds``)."""

    @classmethod
    def json_schema(cls, schema: dict[str, Any], name: str) -> Grammar:
        """The grammar of JSON matching ``schema`` (artifact ``json``; a complete sample is read
        with ``json.loads``). ``name`` names it to a server (OpenAI's ``json_schema.name``)."""
        if not isinstance(schema, dict):
            raise TypeError(f"a JSON schema must be an object, not {type(schema).__name__}")
        return cls(name, "json_schema", json.dumps(schema), "json", json.loads)

    @property
    def id(self) -> str:
        """A short hash of the grammar's text: equal ids, equal languages."""
        return hashlib.sha256(f"{self.format}\n{self.source}".encode()).hexdigest()[:12]

    @property
    def schema(self) -> dict[str, Any] | None:
        """The JSON schema of a ``json_schema`` grammar (None for EBNF)."""
        if self.format != "json_schema":
            return None
        out: dict[str, Any] = json.loads(self.source)
        return out

    def validate(self, text: str) -> Any:
        """The artifact parsed from ``text`` by the project's parser (``text`` if none is set)."""
        return self.validator(text) if self.validator is not None else text


# -- size limits -----------------------------------------------------------------------------------


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


def stated_limit(*limits: int | None) -> int | None:
    """The smallest of the given limits that a grammar can state (None: no stated limit: none
    given, or the smallest above ``REPEAT_LIMIT``)."""
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


_UNIT = re.compile(
    r"(\\[^bBAZzGdDwWsS0-9]|\\[dDwWsS]|\[\^?\]?(?:\\.|[^\]\\])*\]|\.|[^\\()|^$*+?{}\[\]])"
    r"(\*|\+|\?|\{\d+(?:,\d*)?\})?"
)
"""One unit of a simple pattern: a character, an escape, a class or ``.``, and its quantifier."""


def length_bounded_pattern(pattern: str, min_len: int, max_len: int | None) -> str | None:
    """``pattern`` rewritten so that it also states ``minLength``/``maxLength`` (which xgrammar
    ignores when a pattern is given): for a pattern that is a sequence of single characters,
    escapes and classes, each with its quantifier (``^[a-z][a-z0-9_]*$``, ``^[^,]+$``), the
    repetitions are given counts whose sums lie within the lengths. Whatever the result matches,
    ``pattern`` matches too, at a length within the bounds (the longest allowed may be shorter
    than ``max_len`` when several units repeat: each takes what the earlier ones left). None for
    a pattern of another shape (groups, alternatives, lazy repetition) or bounds it cannot meet."""
    body = pattern
    if body.startswith("^"):
        body = body[1:]
    if body.endswith("$") and not body.endswith("\\$"):
        body = body[:-1]
    units: list[tuple[str, int, int | None]] = []
    i = 0
    while i < len(body):
        m = _UNIT.match(body, i)
        if m is None or (m.end() < len(body) and body[m.end()] == "?" and m.group(2)):
            return None
        atom, quant = m.group(1), m.group(2) or ""
        if quant in ("", "?", "*", "+"):
            lo, hi = {"": (1, 1), "?": (0, 1), "*": (0, None), "+": (1, None)}[quant]
        else:
            a, comma, b = quant[1:-1].partition(",")
            lo = int(a)
            hi = lo if not comma else (int(b) if b else None)
        units.append((atom, lo, hi))
        i = m.end()
    fixed = sum(lo for _, lo, _ in units)
    room = None if max_len is None else max_len - fixed
    if room is not None and room < 0:
        return None
    counts: list[tuple[int, int | None]] = []
    for _, lo, hi in units:  # each unit may grow by what the earlier ones left of the room
        grow = None if hi is None else hi - lo
        if room is not None:
            grow = room if grow is None else min(grow, room)
            room -= grow
        counts.append((lo, None if grow is None else lo + grow))
    short = min_len - fixed
    for k, (lo, hi) in enumerate(counts):  # raise the counts, first units first, to min_len
        if short <= 0:
            break
        add = short if hi is None else min(short, hi - lo)
        counts[k] = (lo + add, hi)
        short -= add
    if short > 0:
        return None
    out = []
    for (atom, _, _), (lo, hi) in zip(units, counts, strict=True):
        if (lo, hi) == (1, 1):
            out.append(atom)
        elif hi is None:
            out.append(f"{atom}{{{lo},}}")
        else:
            out.append(f"{atom}{{{lo}}}" if lo == hi else f"{atom}{{{lo},{hi}}}")
    return "^" + "".join(out) + "$"


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
        {"type": "string", "pattern": string_pattern(0, stated_limit(bounds.max_string))},
        {"type": "boolean"},
        {"type": "null"},
    ]
    defs: dict[str, Any] = {"_any0": {"anyOf": scalar}}
    items = stated_limit(bounds.max_items)
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
        "patternProperties": {string_pattern(1, stated_limit(bounds.max_name)): values},
        "additionalProperties": False,
    }
    items = stated_limit(bounds.max_items)
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
        pattern = out["pattern"]
        lo, hi = int(out.get("minLength", 0)), out.get("maxLength")
        if lo or hi is not None:
            # xgrammar ignores lengths beside a pattern: the pattern states them instead (within
            # REPEAT_LIMIT characters, as counts longer than that are not written).
            cap = None if hi is None else min(int(hi), max(REPEAT_LIMIT, lo))
            bounded = length_bounded_pattern(pattern, lo, cap)
            if bounded is not None:
                pattern = bounded
                out.pop("minLength", None)
                out.pop("maxLength", None)
        out["pattern"] = narrow_pattern(pattern, stated_limit(bounds.max_string))
    elif types == "string" and not any(k in out for k in ("enum", "const", "format")):
        lo = int(out.pop("minLength", 0))
        hi = stated_limit(out.pop("maxLength", None), bounds.max_string)
        out["pattern"] = string_pattern(lo, None if hi is None else max(hi, lo))
    elif types == "array":
        hi = stated_limit(out.pop("maxItems", None), bounds.max_items)
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
            hi = stated_limit(out.pop("maxProperties", None), bounds.max_items)
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
    can state), then bounded. The default validator is ``model.model_validate_json``; the grammar
    rebuilds itself under other bounds (``Grammar.with_bounds``)."""
    schema = model.model_json_schema()
    if refine is not None:
        schema = refine(schema)
    b = bounds or Bounds()
    schema = bounded_schema(schema, b)

    def rebuild(other: Bounds) -> Grammar:
        return schema_grammar(
            model, other, name=name, artifact=artifact, refine=refine, validator=validator
        )

    return Grammar(
        name or model.__name__,
        "json_schema",
        json.dumps(schema),
        artifact,
        validator or model.model_validate_json,
        rebuild,
    )


# -- EBNF helpers ----------------------------------------------------------------------------------


def lit(text: str) -> str:
    """``text`` as a GBNF string literal."""
    esc = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return f'"{esc}"'


def alternatives(options: list[str]) -> str:
    return " | ".join(lit(o) for o in options)


def name_rule(max_len: int, first: str = "[a-z]", rest: str = "[a-z0-9_]") -> str:
    return f"{first} {rest}{{0,{max(max_len - 1, 0)}}}"


# -- staged grammars -------------------------------------------------------------------------------


@runtime_checkable
class Staged(Protocol):
    """A grammar drawn in two phases, for an artifact whose second part depends on what its first
    part declared (a PDDL problem: its header and objects, then facts and goals over exactly those
    objects). ``format`` is ``staged``.

    The engine samples under ``first()``; ``then(text)`` reads that complete sample back and
    returns the text that stands for it (written canonically: the prompt is continued by it) and
    the grammar of the rest; the whole text (that prefix and the rest) is checked by
    ``validate``. ``with_bounds`` builds the same staged grammar under other size limits. The
    engine needs nothing else, and knows no formal language."""

    @property
    def name(self) -> str: ...

    @property
    def format(self) -> str: ...

    @property
    def id(self) -> str: ...

    def first(self) -> Grammar: ...

    def then(self, first_text: str) -> tuple[str, Grammar]: ...

    def validate(self, text: str) -> Any: ...

    def with_bounds(self, bounds: Bounds) -> Staged: ...


def under_bounds(output: Grammar | Staged, bounds: Bounds) -> Grammar | Staged:
    """``output`` under the size limits ``bounds`` (a local engine's, which keep samples short):
    a staged grammar, and a grammar that carries its builder (``Grammar.with_bounds``), are built
    again; a JSON schema without one is bounded generically (``bounded_schema``); EBNF without one
    is returned as it is (its own limits stand)."""
    if not isinstance(output, Grammar):
        return output.with_bounds(bounds)
    if output.with_bounds is not None:
        return output.with_bounds(bounds)
    if output.format != "json_schema":
        return output
    schema = bounded_schema(json.loads(output.source), bounds)
    return Grammar(
        output.name, "json_schema", json.dumps(schema), output.artifact, output.validator
    )
