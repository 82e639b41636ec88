"""100 sampled artifacts per grammar, each parsed and validated by the project's own parsers.

A tiny random-weight Qwen2 model writes nonsense, but under the grammars it writes well-formed
nonsense: five-element JSON that ``five_element_from_data`` accepts, routing specs over a request's
locations that ``parse_spec`` accepts, PDDL problems that ``read_problem`` checks against two domains (untyped blocksworld
and typed barman, with the request's objects or with objects the model declares first), and ASP
programs that clingo parses and finds safe. Cut-off samples are reported apart and never returned.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("xgrammar")

from agent.llm.grammar import Grammar, Staged
from agent.llm.local.artifacts import ArtifactSamples, sample_artifacts
from agent.llm.local.engine import Engine
from agent.llm.local.sampling import SamplingParams
from agent.llm.local.testing import TEST_BOUNDS, tiny_engine
from formalizers.asp.grammar import asp_grammar
from formalizers.asp.program import AspProgram
from formalizers.milp.grammar import five_element_grammar
from formalizers.milp.model import FiveElementModel
from formalizers.pddl.grammar import PddlGrammar, parse_objects
from formalizers.pddl.library import find
from formalizers.pddl.model import Problem, read_problem
from formalizers.routing.grammar import ROUTING_BEYOND_GRAMMAR, RoutingContext, routing_grammar
from formalizers.routing.spec import RoutingSpec, parse_spec

N = 100
PARAMS = SamplingParams(n=N, temperature=1.0, seed=11, max_new_tokens=400)
ROUTING_PARAMS = SamplingParams(n=N, temperature=1.0, seed=11, max_new_tokens=1200)
"""A routing spec over six locations may hold a 6 x 6 matrix of numbers a random model writes with
many digits (Qwen writes one token per digit): it needs a larger budget."""

LOCATIONS = ("depot", 1, 2, "C", "d5", 6)
"""A request's location ids: names and numbers, as requests have them."""


# -- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    return tiny_engine(tmp_path_factory.getbasetemp())


def _sample(
    engine: Engine,
    target: Grammar | Staged,
    what: str,
    redraws: int = 0,
    params: SamplingParams = PARAMS,
) -> ArtifactSamples:
    prompt = engine.chat_prompt([{"role": "user", "content": f"Write {what}."}])
    return sample_artifacts(engine, prompt, target, params, redraws)


BEYOND_GRAMMAR = ("appears twice",)
"""Validator findings no context-free grammar can rule out (a set's members must all differ)."""


def _beyond(why: str, reasons: tuple[str, ...]) -> bool:
    """Whether every finding in a validator's message ``why`` is one of ``reasons``."""
    findings = [ln for ln in why.splitlines() if ln.startswith("- ")] or [why]
    return all(any(r in f for r in reasons) for f in findings)


def _check(
    result: ArtifactSamples, redrawn: bool = False, beyond: tuple[str, ...] = BEYOND_GRAMMAR
) -> None:
    """Every sample is accounted for once, cut-offs are not artifacts, and nothing is invalid
    (or, where ``redrawn``, invalid only for reasons beyond any grammar, ``beyond``, and then
    drawn again)."""
    if redrawn:
        assert all(_beyond(why, beyond) for _, why in result.invalid), [
            why for _, why in result.invalid if not _beyond(why, beyond)
        ][:3]
    else:
        assert not result.invalid, result.invalid[:3]
    indices = sorted([a.sample.index for a in result.artifacts] + [s.index for s in result.cut_off])
    assert indices == list(range(N))
    assert all(s.cut_off for s in result.cut_off)
    assert all(not a.sample.cut_off and a.sample.finish == "complete" for a in result.artifacts)
    # With these bounds a sample fits its budget; cut-offs are tested on their own below.
    assert len(result.artifacts) >= N - 2


# -- the grammars ---------------------------------------------------------------------------------


def test_five_element_models(engine: Engine) -> None:
    result = _sample(engine, five_element_grammar(TEST_BOUNDS), "an optimization model", 2)
    _check(result, redrawn=True)
    # A model, or the questions the formalizer's prompt allows when a number is missing.
    models = [a.artifact for a in result.artifacts if isinstance(a.artifact, FiveElementModel)]
    asked = [a.artifact for a in result.artifacts if not isinstance(a.artifact, FiveElementModel)]
    assert models and all(set(q) == {"questions"} and q["questions"] for q in asked)
    # Nonsense, but varied nonsense: the seeds differ.
    assert len({a.sample.text for a in result.artifacts}) > N // 2


def test_routing_specs_over_the_requests_locations(engine: Engine) -> None:
    """The routing spec's grammar, generated from its JSON schema and specialised to a request's
    six locations (its depot named, no groups): all 100 samples parse with ``parse_spec``. A draw
    is rejected only for a reason no grammar states (``ROUTING_BEYOND_GRAMMAR``: clients that
    repeat, a time window that ends before it starts, a visit order naming an undeclared client)
    and is then drawn again."""
    ctx = RoutingContext(LOCATIONS, depots=("depot",), groups=())
    grammar = routing_grammar(TEST_BOUNDS, ctx)
    result = _sample(engine, grammar, "a routing instance", redraws=8, params=ROUTING_PARAMS)
    _check(result, redrawn=True, beyond=tuple(ROUTING_BEYOND_GRAMMAR))
    assert not result.cut_off and len(result.artifacts) == N
    for a in result.artifacts:
        spec = a.artifact
        assert isinstance(spec, RoutingSpec)
        assert [loc.id for loc in spec.locations] == list(LOCATIONS)
        assert [d.id for d in spec.depots] == ["depot"]
        assert {c.id for c in spec.clients} <= set(LOCATIONS[1:]) and not spec.groups
        assert parse_spec(a.sample.text) == spec  # the text alone reads back the same
        for m in (spec.distance_matrix, spec.duration_matrix):
            assert m is None or [len(row) for row in m] == [len(LOCATIONS)] * len(LOCATIONS)


def test_routing_specs_over_the_locations_alone(engine: Engine) -> None:
    """With only the location ids known, any location may be a depot or a client, and samples
    are rejected for more reasons, but each beyond the grammar (a vehicle's depot must be one the
    sample declared...): every id the sample writes is one of the request's."""
    grammar = routing_grammar(TEST_BOUNDS, RoutingContext(LOCATIONS))
    params = SamplingParams(n=30, temperature=1.0, seed=3, max_new_tokens=1200)
    result = _sample(engine, grammar, "a routing instance", params=params)
    assert len(result.cut_off) <= 1 and result.artifacts
    for s, why in result.invalid:
        assert _beyond(why, tuple(ROUTING_BEYOND_GRAMMAR)), why
        data = json.loads(s.text)
        assert [loc["id"] for loc in data["locations"]] == list(LOCATIONS)


def test_the_general_routing_grammar_gets_the_shape_right(engine: Engine) -> None:
    """Without a request's locations, samples of the routing spec's grammar are complete JSON
    whose every field fits the spec: what ``parse_spec`` rejects is only its model-level
    cross-checks (location ``spec``), which only the specialised grammar states."""
    result = _sample(engine, routing_grammar(TEST_BOUNDS), "a routing instance")
    assert len(result.cut_off) <= 2
    for s, why in result.invalid:
        json.loads(s.text)
        lines = [ln for ln in why.splitlines() if ln.startswith("- ")]
        assert lines and all(ln.startswith("- spec:") for ln in lines), why
    assert all(isinstance(a.artifact, RoutingSpec) for a in result.artifacts)


def test_pddl_problems_over_the_requests_objects(engine: Engine) -> None:
    blocks = find("blocksworld")
    assert blocks is not None
    pg = PddlGrammar(blocks.domain, TEST_BOUNDS)
    result = _sample(engine, pg.problem(parse_objects("b1 b2 b3 b4", pg.domain)), "a problem")
    _check(result)
    for a in result.artifacts:
        assert isinstance(a.artifact, Problem)
        assert set(a.artifact.objects) == {"b1", "b2", "b3", "b4"}


def test_pddl_problems_with_objects_the_model_declares(engine: Engine) -> None:
    """Typed barman: the model declares objects of the domain's types first; the facts and goals
    are then drawn over exactly those objects, with type-correct arguments."""
    barman = find("barman")
    assert barman is not None
    pg = PddlGrammar(barman.domain, TEST_BOUNDS)
    result = _sample(engine, pg, "a barman problem")
    _check(result)
    for a in result.artifacts:
        again = read_problem(a.sample.text, pg.domain)  # the text alone reads back the same
        assert again.objects == a.artifact.objects
        assert set(t for ts in again.objects.values() for t in ts) <= set(pg.domain.parents)


def test_asp_programs(engine: Engine) -> None:
    result = _sample(engine, asp_grammar(TEST_BOUNDS), "a logic program")
    _check(result)
    assert all(isinstance(a.artifact, AspProgram) for a in result.artifacts)
    rules = sum(":-" in a.sample.text for a in result.artifacts)
    assert rules > N // 4  # rules and constraints, not only facts: their safety is what is at stake


def test_cut_off_samples_are_reported_not_returned(engine: Engine) -> None:
    prompt = engine.chat_prompt([{"role": "user", "content": "Write a model."}])
    result = sample_artifacts(
        engine,
        prompt,
        five_element_grammar(TEST_BOUNDS),
        SamplingParams(n=4, temperature=1.0, max_new_tokens=6),
    )
    assert not result.artifacts and len(result.cut_off) == 4
    entries = result.to_json(as_json=True)
    assert all(e["cut_off"] is True and e["finish"] == "length" for e in entries)


def test_an_invalid_sample_is_reported_and_redrawn(engine: Engine) -> None:
    """A rule no grammar states (here: an even number of characters) rejects samples; they are
    reported with the reason, and redrawn with the next seed of their index."""

    def even(text: str) -> str:
        if len(text) % 2:
            raise ValueError("an odd length")
        return text

    base = asp_grammar(TEST_BOUNDS)
    picky = Grammar("picky", base.format, base.source, "asp", even)
    prompt = engine.chat_prompt([{"role": "user", "content": "Write a program."}])
    params = SamplingParams(n=8, temperature=1.0, seed=5, max_new_tokens=200)
    once = sample_artifacts(engine, prompt, picky, params)
    again = sample_artifacts(engine, prompt, picky, params, redraws=4)
    assert once.invalid and all("odd length" in why for _, why in once.invalid)
    assert len(again.artifacts) > len(once.artifacts)
    assert all(len(a.artifact) % 2 == 0 for a in again.artifacts)
    # The first draws are the same samples: a redraw only replaces what was rejected.
    first = {a.sample.index: a.sample.text for a in once.artifacts}
    assert all(
        first[i] == t
        for i, t in ((a.sample.index, a.sample.text) for a in again.artifacts)
        if i in first
    )
    redrawn = {a.sample.index for a in again.artifacts} - {a.sample.index for a in once.artifacts}
    assert redrawn <= {s.index for s, _ in once.invalid}


class Repeat:
    """A staged grammar of no formal language: a letter (``a``, ``b`` or ``c``), then that letter
    repeated. The engine runs it by the ``Staged`` protocol alone."""

    name = "repeat"
    format = "staged"
    id = "repeat"

    def first(self) -> Grammar:
        return Grammar("letter", "ebnf", 'root ::= "a" | "b" | "c"', "letter")

    def then(self, first_text: str) -> tuple[str, Grammar]:
        letter = first_text.strip()
        return f"{letter}:", Grammar("more", "ebnf", f'root ::= "{letter}"{{1,5}}', "more")

    def validate(self, text: str) -> str:
        head, _, rest = text.partition(":")
        if not rest or set(rest) != {head}:
            raise ValueError(f"not one letter repeated: {text!r}")
        return text

    def with_bounds(self, bounds: Any) -> Repeat:
        return self


def test_any_staged_grammar_is_drawn_in_its_two_phases(engine: Engine) -> None:
    target = Repeat()
    assert isinstance(target, Staged)
    prompt = engine.chat_prompt([{"role": "user", "content": "Write letters."}])
    params = SamplingParams(n=8, temperature=1.0, seed=3, max_new_tokens=40)
    result = sample_artifacts(engine, prompt, target, params)
    assert not result.invalid and len(result.artifacts) == 8
    for a in result.artifacts:
        assert a.artifact == a.sample.text and a.sample.text[:2] in ("a:", "b:", "c:")
        # The sample's tokens begin with the prefix the first phase was written back as.
        prefix = tuple(engine.encode(a.sample.text[:2]))
        assert a.sample.token_ids[: len(prefix)] == prefix


def test_the_second_grammar_engine_gives_valid_artifacts_too(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """llguidance behind the same interface: its samples validate the same way."""
    pytest.importorskip("llguidance")
    engine = tiny_engine(tmp_path_factory.getbasetemp(), grammar_engine_name="llguidance")
    barman = find("barman")
    assert barman is not None
    pg = PddlGrammar(barman.domain, TEST_BOUNDS)
    objects = parse_objects("s1 - shaker h1 h2 - hand l0 l1 - level c1 - cocktail", pg.domain)
    params = SamplingParams(n=20, temperature=1.0, seed=2, max_new_tokens=400)
    prompt = engine.chat_prompt([{"role": "user", "content": "Write it."}])
    for target in (
        five_element_grammar(TEST_BOUNDS),
        pg.problem(objects),
        asp_grammar(TEST_BOUNDS),
    ):
        result = sample_artifacts(engine, prompt, target, params)
        assert not result.invalid and len(result.artifacts) >= 19, target.name
    ctx = RoutingContext(LOCATIONS, depots=("depot",), groups=())
    routing = sample_artifacts(
        engine,
        prompt,
        routing_grammar(TEST_BOUNDS, ctx),
        SamplingParams(n=20, temperature=1.0, seed=2, max_new_tokens=1200),
        redraws=8,
    )
    assert all(_beyond(why, tuple(ROUTING_BEYOND_GRAMMAR)) for _, why in routing.invalid)
    # llguidance lets a number have any number of decimals: a random model's matrix may run out of
    # tokens (reported as cut off, never returned).
    done = sorted([a.sample.index for a in routing.artifacts] + [s.index for s in routing.cut_off])
    assert done == list(range(20)) and len(routing.artifacts) >= 18
