"""Grammars generated for our artifacts: bounded JSON schemas (``agent.llm.grammar``), and each
language's own (``formalizers/<language>/grammar.py``): the five-element model, the routing spec,
PDDL from a domain, the ASP subset.

These need no model: the regexes are checked with Python's ``re``, the grammars compile in both
grammar engines against the real Qwen vocabulary, and known texts are accepted or refused.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("xgrammar")
pytest.importorskip("llguidance")

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.errors import ArtifactError, InputError
from agent.llm import grammar as lg
from agent.llm.local.testing import TEST_BOUNDS
from agent.sample_grammars import grammar_for
from conftest import engine_accepts
from formalizers.asp import grammar as asp
from formalizers.milp import grammar as milp
from formalizers.pddl import grammar as pddl
from formalizers.pddl.library import find
from formalizers.pddl.model import read_problem
from formalizers.routing import grammar as routing


@pytest.fixture(scope="module")
def engines(grammar_engines: dict[str, Any]) -> dict[str, Any]:
    """Both grammar engines over the real Qwen vocabulary (``conftest.grammar_engines``)."""
    return grammar_engines


def accepts(engines: dict[str, Any], grammar: lg.Grammar, text: str) -> dict[str, bool]:
    """Whether each engine accepts ``text`` followed by the stop token, as a whole artifact."""
    return {
        name: engine_accepts(engines, name, grammar, text) for name in ("xgrammar", "llguidance")
    }


# -- regexes ---------------------------------------------------------------------------------------


def _py(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


@pytest.mark.parametrize(
    ("lo", "hi", "text", "ok"),
    [
        (0, 8, "", True),
        (0, 8, "ab cd", True),
        (1, 8, "", False),
        (1, 8, " ab", False),
        (1, 8, "ab ", False),
        (1, 8, "a\u3000", False),
        (1, 8, "東京", True),
        (1, 8, 'a"b', False),
        (1, 8, "a\\b", False),
        (1, 8, "a\x01b", False),
        (1, 3, "abcd", False),
        (3, 5, "ab", False),
        (1, None, "x" * 500, True),
    ],
)
def test_string_pattern(lo: int, hi: int | None, text: str, ok: bool) -> None:
    assert bool(_py(lg.string_pattern(lo, hi)).fullmatch(text)) is ok


@given(st.text(max_size=12))
@settings(max_examples=200, deadline=None)
def test_a_free_string_survives_strip_and_json(text: str) -> None:
    """Whatever a bounded free string matches reads back from JSON unchanged and is already
    stripped (so a pydantic model that strips sees the same length)."""
    if _py(lg.string_pattern(0, 12)).fullmatch(text):
        assert text == text.strip()
        assert json.loads('"' + text + '"') == text


@given(st.text(alphabet='ab ,[]"\\\x01.xyz', max_size=10))
@settings(max_examples=300, deadline=None)
def test_narrowed_patterns_are_sub_languages(text: str) -> None:
    for pattern in [r"^[^,\[\]]+$", r"^[A-Za-z][A-Za-z0-9_]{0,63}$", r"^a.b*$", r"^x{2,}$"]:
        narrow = lg.narrow_pattern(pattern, 4)
        if _py(narrow).fullmatch(text):
            assert _py(pattern).fullmatch(text), (pattern, narrow, text)
            assert '"' not in text and "\\" not in text and "\x01" not in text


def test_narrow_pattern_caps_repetitions() -> None:
    assert lg.narrow_pattern(r"^[A-Za-z][A-Za-z0-9_]{0,63}$", 8) == r"^[A-Za-z][A-Za-z0-9_]{0,8}$"
    assert lg.narrow_pattern(r"^[^,]+$", None) == '^[^,"\\\\\\x00-\\x1f\\x7f]+$'


# -- JSON schemas ----------------------------------------------------------------------------------


def _walk(node: Any) -> list[dict[str, Any]]:
    out = []
    if isinstance(node, dict):
        out.append(node)
        for v in node.values():
            out.extend(_walk(v))
    elif isinstance(node, list):
        for v in node:
            out.extend(_walk(v))
    return out


def test_the_five_element_schema_is_bounded_everywhere() -> None:
    schema = json.loads(milp.five_element_grammar(TEST_BOUNDS).source)
    for node in _walk(schema):
        if node.get("type") == "string" and "enum" not in node:
            assert "pattern" in node, node
        if node.get("type") == "array":
            assert node["maxItems"] <= TEST_BOUNDS.max_items, node
        if node.get("type") == "object" and "properties" not in node:
            assert node.get("additionalProperties") is False and "patternProperties" in node
        assert node != {}, "an open value survived"


def test_the_param_def_validator_is_restated_as_schema() -> None:
    schema = json.loads(milp.five_element_grammar().source)
    scalar, indexed = schema["$defs"]["ParamDef"]["anyOf"]
    assert scalar["required"] == ["name", "value"] and "values" not in scalar["properties"]
    assert indexed["required"] == ["name", "index", "values"]
    assert indexed["properties"]["index"]["minItems"] == 1


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        (
            '{"variables":[{"name":"x"}],"objective":{"sense":"maximize","expression":"3 * x"}}',
            True,
        ),
        ('{"variables":[],"objective":{"sense":"maximize","expression":"x"}}', False),
        ('{"variables":[{"name":"x"}],"objective":{"sense":"max","expression":"x"}}', False),
        (
            '{"parameters":[{"name":"p","value":1,"values":[1]}],"variables":[{"name":"x"}],'
            '"objective":{"sense":"minimize","expression":"x"}}',
            False,
        ),
        (
            '{"parameters":[{"name":"p","index":["I"],"values":{"a":1}}],"variables":'
            '[{"name":"x"}],"objective":{"sense":"minimize","expression":"x"}}',
            True,
        ),
        ('{"variables":[{"name":"x"}],"objective":{"sense":"minimize","expression":" x"}}', False),
    ],
)
def test_five_element_texts(engines: dict[str, Any], text: str, ok: bool) -> None:
    grammar = milp.five_element_grammar(TEST_BOUNDS)
    assert accepts(engines, grammar, text) == {"xgrammar": ok, "llguidance": ok}
    if ok:
        grammar.validate(text)


# -- the routing spec, specialised to a request ------------------------------------------------

BAKERY: dict[str, Any] = {
    "locations": [
        {"id": "bakery", "x": 0, "y": 0},
        {"id": "A", "x": 3, "y": 4},
        {"id": "B", "x": -2, "y": 5},
        {"id": "C", "x": 6, "y": -1},
        {"id": "D", "x": -4, "y": -3},
    ],
    "depots": [{"id": "bakery"}],
    "clients": [
        {"id": "A", "demand": [4]},
        {"id": "B", "demand": [3]},
        {"id": "C", "demand": [5]},
        {"id": "D", "demand": [6]},
    ],
    "vehicle_types": [{"name": "van", "count": 2, "capacity": [10]}],
    "objective": "total_distance",
}
"""The bundled CVRP example's spec (keys in the schema's order, as a sample writes them)."""

BAKERY_IDS = ("bakery", "A", "B", "C", "D")
Change = Callable[[dict[str, Any]], None]


def _matrix(spec: dict[str, Any], rows: int = 5, cols: int = 5) -> None:
    """Distances instead of coordinates."""
    locations = [{"id": loc["id"]} for loc in spec.pop("locations")]
    rest = dict(spec)
    spec.clear()
    spec.update(locations=locations, distance_matrix=[[1.5] * cols for _ in range(rows)], **rest)


def _set(path: str, value: Any) -> Change:
    """A change that sets ``path`` (``clients.0.id``) to ``value``."""

    def change(spec: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = spec
        for p in parents:
            node = node[int(p)] if p.isdigit() else node[p]
        node[int(last) if last.isdigit() else last] = value

    return change


def _drop(path: str) -> Change:
    def change(spec: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = spec
        for p in parents:
            node = node[int(p)] if p.isdigit() else node[p]
        del node[int(last) if last.isdigit() else last]

    return change


@pytest.mark.parametrize(
    ("change", "ok", "spec_ok"),
    [
        (lambda s: None, True, True),
        (_set("clients.0.id", "E"), False, False),  # not one of the request's locations
        (_set("clients.0.id", "bakery"), False, False),  # a client at the depot
        (_set("vehicle_types.0.start_depot", "A"), False, False),  # not a depot
        (_set("depots.0.id", "A"), False, False),  # the request's depot is the bakery
        (_drop("locations.4"), False, False),  # D is used but not declared
        (_set("locations.4.id", "E"), False, False),
        (_set("locations.0.id", "A"), False, False),
        (_set("clients.0.demand", [4, 1]), False, False),  # two load dimensions, and one
        (
            lambda s: (
                [c.update(demand=[*c["demand"], 1]) for c in s["clients"]]
                + [s["vehicle_types"][0].update(capacity=[10, 5])]
            ),
            True,
            True,
        ),  # two everywhere
        (_drop("locations.2.x"), False, False),  # no coordinates and no matrix
        (_matrix, True, True),
        (lambda s: _matrix(s, cols=4), False, False),
        (lambda s: _matrix(s, rows=6), False, False),
        (_set("clients.1.demand", [-3]), False, False),
        (_set("vehicle_types.0.count", 0), False, False),
        (_set("vehicle_types", []), False, False),
        (_drop("depots"), False, False),
        (_set("clients.0.tw_late", 1.5), True, True),
        (_set("clients.0.tw_early", 2), True, True),
    ],
)
def test_routing_texts(engines: dict[str, Any], change: Change, ok: bool, spec_ok: bool) -> None:
    """The routing grammar for the bakery's five locations (its depot named) accepts the example
    and refuses, in both engines, what ``parse_spec`` refuses for reasons a schema can state."""
    from formalizers.routing.spec import parse_spec

    spec = copy.deepcopy(BAKERY)
    change(spec)
    text = json.dumps(spec, separators=(",", ":"))
    grammar = routing.routing_grammar(None, routing.RoutingContext(BAKERY_IDS, depots=("bakery",)))
    assert accepts(engines, grammar, text) == {"xgrammar": ok, "llguidance": ok}
    if spec_ok:
        parse_spec(text)
    else:
        with pytest.raises(ArtifactError):
            parse_spec(text)
    if ok:
        grammar.validate(text)


def test_the_general_routing_grammar_takes_any_ids(engines: dict[str, Any]) -> None:
    spec = copy.deepcopy(BAKERY)
    _set("clients.0.id", "E")(spec)
    text = json.dumps(spec, separators=(",", ":"))
    assert accepts(engines, routing.routing_grammar(), text) == {
        "xgrammar": True,
        "llguidance": True,
    }


def test_recharge_depots_need_an_energy_limit(engines: dict[str, Any]) -> None:
    from formalizers.routing.spec import VehicleType

    if "recharge_depots" not in VehicleType.model_fields:
        pytest.skip("the routing spec has no energy fields")
    grammar = routing.routing_grammar(None, routing.RoutingContext(BAKERY_IDS))
    for vehicle, ok in [
        ({"recharge_depots": ["bakery"]}, False),
        ({"max_distance_between_recharges": 20, "recharge_depots": ["bakery"]}, True),
        ({"max_distance_between_recharges": 0}, False),
        ({"max_distance_between_recharges": 20}, True),
        ({"recharge_depots": None}, True),
    ]:
        spec = copy.deepcopy(BAKERY)
        spec["vehicle_types"] = [vehicle]
        text = json.dumps(spec, separators=(",", ":"))
        assert accepts(engines, grammar, text) == {"xgrammar": ok, "llguidance": ok}, vehicle


def _enums(node: Any) -> list[list[Any]]:
    return [n["enum"] for n in _walk(node) if "enum" in n]


def test_the_schema_walk_finds_fields_it_was_not_told_of() -> None:
    """Ids, matrices and depot references are found by their shape and names, so a field added
    to the spec is specialised too."""
    from formalizers.routing.spec import RoutingSpec

    schema = RoutingSpec.model_json_schema()
    id_type = [{"type": "integer"}, {"type": "string"}]
    vt = schema["$defs"]["VehicleType"]["properties"]
    vt["parking_depots"] = {"type": "array", "items": {"anyOf": id_type}}
    schema["$defs"]["Shipment"]["properties"]["via"] = {"anyOf": [*id_type, {"type": "null"}]}
    matrix = {"type": "array", "items": {"type": "array", "items": {"type": "number"}}}
    schema["properties"]["energy_matrix"] = {"anyOf": [matrix, {"type": "null"}]}
    ids = ("depot", 1, 2)
    out = routing.routing_schema(
        lg.bounded_schema(schema, TEST_BOUNDS),
        routing.RoutingContext(ids, depots=("depot",)),
        TEST_BOUNDS,
    )
    nodes = _walk(out)
    kinds = [sorted(str(a.get("type")) for a in n.get("anyOf", [])) for n in nodes]
    assert ["integer", "string"] not in kinds and ["integer", "null", "string"] not in kinds
    for k, branch in enumerate(out["anyOf"]):
        parking = _walk(out["$defs"][f"VehicleType__{k}"])
        assert [["depot"]] in [
            _enums(n["parking_depots"]) for n in parking if "parking_depots" in n
        ]
        via = out["$defs"][f"Shipment__{k}"]["properties"]["via"]
        assert _enums(via) == [list(ids)]
        energy = branch["properties"]["energy_matrix"]["anyOf"][0]
        assert energy["minItems"] == energy["maxItems"] == 3
        assert energy["items"]["minItems"] == energy["items"]["maxItems"] == 3
        assert [
            x["properties"]["id"] for x in branch["properties"]["locations"]["prefixItems"]
        ] == [{"const": i} for i in ids]


def test_routing_contexts_and_location_ids(tmp_path: Path) -> None:
    assert routing.parse_location_ids("1, 2,depot") == (1, 2, "depot")
    assert routing.parse_location_ids('["a", 3]') == ("a", 3)
    f = tmp_path / "request.json"
    f.write_text(json.dumps({"locations": [{"id": "x", "x": 0, "y": 1}, {"id": 7}]}))
    assert routing.parse_location_ids(str(f)) == ("x", 7)
    assert routing.location_ids(BAKERY) == BAKERY_IDS
    ctx = routing.routing_context("0,1,2", "0", groups="")
    assert ctx == routing.RoutingContext((0, 1, 2), (0,), None, ())
    assert ctx.ids("client") == (1, 2) and ctx.ids("depot") == (0,)
    assert routing.routing_context("") is None
    for bad in [
        lambda: routing.RoutingContext(()),
        lambda: routing.RoutingContext((1, 1)),
        lambda: routing.RoutingContext((1, 2), depots=(3,)),
        lambda: routing.RoutingContext((1, 2), depots=(1,), clients=(1,)),
        lambda: routing.RoutingContext((1, True)),
        lambda: routing.location_ids({"stops": []}),
    ]:
        with pytest.raises(InputError):
            bad()
    grammar = grammar_for("routing:1,2,3")
    assert grammar.name == "routing:3-locations"


# -- PDDL ------------------------------------------------------------------------------------------

BARMAN = find("barman")
assert BARMAN is not None


def test_a_pddl_problem_grammar_offers_only_type_correct_arguments() -> None:
    pg = pddl.PddlGrammar(BARMAN.domain, TEST_BOUNDS)
    objects = pddl.parse_objects("s1 - shaker h1 h2 - hand c1 - cocktail l0 l1 - level", pg.domain)
    source = pg.problem(objects).source
    rules = dict(line.split(" ::= ", 1) for line in source.splitlines())
    slots = {rule: set(re.findall(r'"([^"]+)"', body)) for rule, body in rules.items()}
    # (holding ?h - hand ?c - container): hands first, then containers (shakers and shots).
    holding = re.search(r'"holding" " " (o\d+) " " (o\d+)', rules["atom"])
    assert holding is not None
    assert slots[holding.group(1)] == {"h1", "h2"}
    assert slots[holding.group(2)] == {"s1"}
    # No predicate takes a cocktail and a level together, and undeclared names never appear.
    assert "c2" not in source and "shot1" not in source


def test_a_pddl_problem_is_accepted_and_read(engines: dict[str, Any]) -> None:
    pg = pddl.PddlGrammar(BARMAN.domain, TEST_BOUNDS)
    objects = pddl.parse_objects("s1 - shaker h1 - hand l0 - level", pg.domain)
    text = (
        "(define (problem p1)\n(:domain barman)\n(:objects h1 - hand l0 - level s1 - shaker)\n"
        "(:init\n  (shaker-level s1 l0)\n  (handempty h1))\n(:goal (and\n  (ontable s1)))\n)"
    )
    grammar = pg.problem(objects)
    assert accepts(engines, grammar, text) == {"xgrammar": True, "llguidance": True}
    assert read_problem(text, pg.domain).objects["s1"] == ("shaker",)
    wrong = text.replace("(handempty h1)", "(handempty s1)")
    assert accepts(engines, grammar, wrong) == {"xgrammar": False, "llguidance": False}


def test_the_objects_phase_reads_back_through_the_project_parser() -> None:
    pg = pddl.PddlGrammar(BARMAN.domain, TEST_BOUNDS)
    head = "(define (problem p)\n(:domain barman)\n(:objects a b - shaker a c - hand)"
    objects = pg.objects_from_head(head)
    assert objects == {"a": ("shaker",), "b": ("shaker",), "c": ("hand",)}
    # Written back canonically: grouped by type, each name once.
    assert pg.head_text(head, objects).endswith("(:objects c - hand a b - shaker)")


def test_bad_objects_and_unknown_domains_are_refused(tmp_path: Path) -> None:
    pg = pddl.PddlGrammar(BARMAN.domain, TEST_BOUNDS)
    with pytest.raises(ArtifactError):
        pddl.parse_objects("x - spaceship", pg.domain)
    with pytest.raises(InputError):
        pddl.read_domain_arg(str(tmp_path / "nope.pddl"))
    with pytest.raises(InputError):
        grammar_for("pddl")


def test_the_pddl_grammar_is_staged_and_rebuilds_under_bounds() -> None:
    """What the engine runs a staged grammar by: the first phase, then the canonical prefix and
    the grammar of the rest; under other bounds, the same domain's grammars."""
    pg = pddl.PddlGrammar(BARMAN.domain)
    assert isinstance(pg, lg.Staged) and pg.format == "staged"
    head = "(define (problem p)\n(:domain barman)\n(:objects a b - shaker a c - hand)"
    prefix, rest = pg.then(head)
    assert prefix.endswith("(:objects c - hand a b - shaker)")
    assert rest.source == pg.tail(pg.objects_from_head(head)).source
    small = lg.under_bounds(pg, TEST_BOUNDS)
    assert isinstance(small, pddl.PddlGrammar) and small.bounds == TEST_BOUNDS
    assert small.id != pg.id and small.first().source != pg.first().source
    objects = pddl.parse_objects("s1 - shaker h1 - hand l0 - level", BARMAN.domain)
    problem = lg.under_bounds(pg.problem(objects), TEST_BOUNDS)
    assert problem.id == pddl.PddlGrammar(BARMAN.domain, TEST_BOUNDS).problem(objects).id


def test_an_engine_puts_any_grammar_under_its_bounds() -> None:
    """A grammar generated with bounds is built again under the engine's; a plain JSON schema is
    bounded generically; EBNF without a builder stands as given."""
    assert (
        lg.under_bounds(milp.five_element_grammar(), TEST_BOUNDS).id
        == milp.five_element_grammar(TEST_BOUNDS).id
    )
    ctx = routing.RoutingContext(("depot", 1, 2), depots=("depot",))
    assert (
        lg.under_bounds(routing.routing_grammar(None, ctx), TEST_BOUNDS).id
        == routing.routing_grammar(TEST_BOUNDS, ctx).id
    )
    assert lg.under_bounds(asp.asp_grammar(), TEST_BOUNDS).id == asp.asp_grammar(TEST_BOUNDS).id
    assert lg.under_bounds(pddl.pddl_any_grammar(), TEST_BOUNDS).source != (
        pddl.pddl_any_grammar().source
    )
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    plain = lg.under_bounds(lg.Grammar.json_schema(schema, "a"), TEST_BOUNDS)
    assert isinstance(plain, lg.Grammar) and plain.schema is not None
    pattern = plain.schema["properties"]["a"]["pattern"]
    assert pattern == lg.string_pattern(0, TEST_BOUNDS.max_string)
    assert plain.validate('{"a": "x"}') == {"a": "x"}
    ebnf = lg.Grammar("x", "ebnf", 'root ::= "x"', "x")
    assert lg.under_bounds(ebnf, TEST_BOUNDS) is ebnf


# -- ASP -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("node(1..3).\nedge(1, 2).", True),
        ("1 { color(X, L) : col(L) } 1 :- node(X).", True),
        (":- edge(X, Y), color(X, Z), not ok(Y).", False),  # Z is not bound by edge(X, Y)
        (":- pair(X, Y), color(X, L).", False),  # L is only local to choices and aggregates
        ("p(X) :- q(X), #count { L : r(X, L) } > 2.", True),
        ("#minimize { X, Y : cost(X, Y), used(X) }.", True),
        ("not(1).", False),
        ("nota(1).\n#show nota/1.\n% colours", True),
        ("p(X) :- q(Y).", False),
    ],
)
def test_asp_texts(engines: dict[str, Any], text: str, ok: bool) -> None:
    grammar = asp.asp_grammar(TEST_BOUNDS)
    assert accepts(engines, grammar, text) == {"xgrammar": ok, "llguidance": ok}
    if ok:
        grammar.validate(text)


def test_every_generated_grammar_compiles_in_both_engines(engines: dict[str, Any]) -> None:
    blocks = find("blocksworld")
    assert blocks is not None
    grammars = [
        milp.five_element_grammar(),
        asp.asp_grammar(),
        pddl.PddlGrammar(blocks.domain).head(),
        pddl.PddlGrammar(BARMAN.domain).problem({"s1": ("shaker",), "h": ("hand",)}),
        pddl.PddlGrammar(BARMAN.domain).tail({"s1": ("shaker",)}),
        pddl.pddl_any_grammar(),
        routing.routing_grammar(),
        routing.routing_grammar(None, routing.RoutingContext(tuple(range(150)), depots=(0,))),
        routing.routing_grammar(
            TEST_BOUNDS, routing.RoutingContext((1, 2), clients=(), groups=("a", "b"))
        ),
    ]
    for grammar in grammars:
        for name in ("xgrammar", "llguidance"):
            assert engines[name].compile(grammar) is not None, (grammar.name, name)


# -- lengths beside a pattern ----------------------------------------------------------------------

LENGTH_CASES = [
    (r"^[^,\[\]]+$", 1, 12),
    (r"^[A-Za-z][A-Za-z0-9_]{0,63}$", 3, 6),
    (r"^[a-z][a-z0-9_]*$", 0, 5),
    (r"^ab?c*d+$", 4, 7),
    (r"^x{2,}$", 3, None),
]


@given(st.text(alphabet="abcdxyzA_0,[", max_size=14))
@settings(max_examples=400, deadline=None)
def test_a_length_bounded_pattern_is_a_sub_language_within_the_lengths(text: str) -> None:
    for pattern, lo, hi in LENGTH_CASES:
        bounded = lg.length_bounded_pattern(pattern, lo, hi)
        assert bounded is not None, pattern
        if re.fullmatch(bounded, text):
            assert re.fullmatch(pattern, text), (pattern, bounded, text)
            assert lo <= len(text) and (hi is None or len(text) <= hi), (bounded, text)


def test_length_bounded_patterns_state_the_counts_or_say_they_cannot() -> None:
    assert lg.length_bounded_pattern(r"^[^,\[\]]+$", 1, 100) == r"^[^,\[\]]{1,100}$"
    assert lg.length_bounded_pattern(r"^[a-z][a-z0-9_]{0,62}$", 0, 20) == r"^[a-z][a-z0-9_]{0,19}$"
    assert lg.length_bounded_pattern(r"^[A-Z][a-z]*$", 3, None) == r"^[A-Z][a-z]{2,}$"
    for pattern in (r"^(ab)+$", r"^a|b$", r"^a+?$"):
        assert lg.length_bounded_pattern(pattern, 1, 5) is None, pattern
    assert lg.length_bounded_pattern(r"^abc$", 5, 9) is None  # three characters, never five
    assert lg.length_bounded_pattern(r"^abcdef$", 0, 3) is None


def test_no_schema_leaves_lengths_beside_a_pattern_for_xgrammar_to_ignore() -> None:
    """xgrammar ignores minLength/maxLength beside a pattern (and warns at every load): the
    generated schemas state them in the pattern, and a set member longer than the grammar's
    limit cannot be sampled (one of 201 characters was, and the schema then refused it)."""
    for grammar in (milp.five_element_grammar(), milp.five_element_grammar(TEST_BOUNDS)):
        for node in _walk(json.loads(grammar.source)):
            if "pattern" in node:
                assert "minLength" not in node and "maxLength" not in node, node
    schema = json.loads(milp.five_element_grammar().source)
    members = [n["pattern"] for n in _walk(schema) if "[^,\\[\\]" in str(n.get("pattern", ""))]
    assert members and all("{1,100}" in p for p in members), members


def test_a_set_member_too_long_is_outside_the_grammar(engines: dict[str, Any]) -> None:
    grammar = milp.five_element_grammar()

    def model(member: str) -> str:
        return (
            '{"sets":[{"name":"S","members":["' + member + '"]}],"variables":[{"name":"x"}],'
            '"objective":{"sense":"maximize","expression":"x"}}'
        )

    both = ("xgrammar", "llguidance")
    assert accepts(engines, grammar, model("m" * 100)) == dict.fromkeys(both, True)
    assert accepts(engines, grammar, model("m" * 201)) == dict.fromkeys(both, False)
