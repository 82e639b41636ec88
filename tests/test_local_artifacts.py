"""100 sampled artifacts per grammar, each parsed and validated by the project's own parsers.

A tiny random-weight Qwen2 model writes nonsense, but under the grammars it writes well-formed
nonsense: five-element JSON that ``five_element_from_data`` accepts, routing JSON that its pydantic
model accepts, PDDL problems that ``read_problem`` checks against two domains (untyped blocksworld
and typed barman, with the request's objects or with objects the model declares first), and ASP
programs that clingo parses and finds safe. Cut-off samples are reported apart and never returned.
"""

from __future__ import annotations

import json
from typing import Annotated, Literal

import pytest

pytest.importorskip("torch")
pytest.importorskip("xgrammar")

from pydantic import BaseModel, ConfigDict, Field

from agent.llm.local.artifacts import ArtifactSamples, sample_artifacts
from agent.llm.local.engine import Engine
from agent.llm.local.grammar import (
    Grammar,
    PddlGrammar,
    asp_grammar,
    five_element_grammar,
    parse_objects,
    schema_grammar,
)
from agent.llm.local.sampling import SamplingParams
from agent.llm.local.testing import TEST_BOUNDS, tiny_engine
from formalizers.asp.program import AspProgram
from formalizers.milp.model import FiveElementModel
from formalizers.pddl.library import find
from formalizers.pddl.model import Problem, read_problem

N = 100
PARAMS = SamplingParams(n=N, temperature=1.0, seed=11, max_new_tokens=400)

# -- a stand-in for the routing spec ----------------------------------------------------------------
# The routing spec (formalizers.routing.spec) checks cross-references in a model validator (a depot's
# id must be a declared location, a matrix has one row per location...), which no grammar can state;
# so random samples of it are shaped right but rejected (see the test below). This routing-like
# model, with field rules only, stands in for it to show that 100 samples of a pydantic model's
# grammar all validate.

Name = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,31}$")]


class _StandIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StandInLocation(_StandIn):
    name: Name
    x: float
    y: float
    demand: int = Field(default=0, ge=0)
    window: tuple[float, float] | None = None


class StandInFleet(_StandIn):
    vehicles: int = Field(ge=1)
    capacity: int = Field(ge=1)
    depot: Name


class RoutingSpecStandIn(_StandIn):
    """STAND-IN: a routing-like model with field rules only (see above)."""

    name: str = ""
    locations: list[StandInLocation] = Field(min_length=1)
    fleet: StandInFleet
    objective: Literal["distance", "duration", "vehicles"] = "distance"


# -- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    return tiny_engine(tmp_path_factory.getbasetemp())


def _sample(
    engine: Engine, target: Grammar | PddlGrammar, what: str, redraws: int = 0
) -> ArtifactSamples:
    prompt = engine.chat_prompt([{"role": "user", "content": f"Write {what}."}])
    return sample_artifacts(engine, prompt, target, PARAMS, redraws)


BEYOND_GRAMMAR = ("appears twice",)
"""Validator findings no context-free grammar can rule out (a set's members must all differ)."""


def _check(result: ArtifactSamples, redrawn: bool = False) -> None:
    """Every sample is accounted for once, cut-offs are not artifacts, and nothing is invalid
    (or, where ``redrawn``, invalid only for a reason beyond any grammar, and then drawn again)."""
    if redrawn:
        assert all(any(r in why for r in BEYOND_GRAMMAR) for _, why in result.invalid)
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
    assert all(isinstance(a.artifact, FiveElementModel) for a in result.artifacts)
    # Nonsense, but varied nonsense: the seeds differ.
    assert len({a.sample.text for a in result.artifacts}) > N // 2


def test_routing_json_from_a_pydantic_model(engine: Engine) -> None:
    grammar = schema_grammar(RoutingSpecStandIn, TEST_BOUNDS, artifact="routing")
    result = _sample(engine, grammar, "a routing instance")
    _check(result)
    assert all(isinstance(a.artifact, RoutingSpecStandIn) for a in result.artifacts)


def test_the_routing_spec_grammar_gets_the_shape_right(engine: Engine) -> None:
    """Samples of the real routing spec's grammar are complete JSON whose every field fits the
    spec: what ``parse_spec`` rejects is only its model-level cross-checks (location ``spec``)."""
    spec = pytest.importorskip("formalizers.routing.spec")
    from agent.llm.local.grammar import routing_grammar

    result = _sample(engine, routing_grammar(TEST_BOUNDS), "a routing instance")
    assert len(result.cut_off) <= 2
    for s, why in result.invalid:
        json.loads(s.text)
        lines = [ln for ln in why.splitlines() if ln.startswith("- ")]
        assert lines and all(ln.startswith("- spec:") for ln in lines), why
    assert all(isinstance(a.artifact, spec.RoutingSpec) for a in result.artifacts)


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
