"""Benchmark loaders on their real files (``../shared/data``, beside the clone) and the scoring rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.errors import InputError
from benchmarks import datasets, scoring
from benchmarks.datasets import DEFAULT_DATA, load, load_objective_file, parse_label

needs_data = pytest.mark.skipif(
    not DEFAULT_DATA.is_dir(), reason=f"benchmark data not found at {DEFAULT_DATA}"
)

# name, item count, (index, id, expect, answer, kind, a phrase of the text)
REAL = [
    ("mamo-easy@original", 652, (0, "1", "value", 10000.0, "milp", "marketing company")),
    ("mamo-easy@sirl-fixed", 642, (0, "0", "value", 10000.0, "milp", "marketing company")),
    ("mamo-complex@original", 211, (0, None, "value", 57.0, "milp", "")),
    ("mamo-complex@sirl-fixed", 203, (0, None, "value", 57.0, "milp", "")),
    ("industryor@2024", 100, (0, "0", "value", 3050.0, "milp", "Zhang family")),
    ("industryor@sirl-fixed-v2", 100, (0, "1", "value", 219816.0, "milp", "two types of food")),
    ("nlp4lp@original", 269, (0, "0", "value", 684000.0, "milp", "Mrs. Watson")),
    ("complexor@coe", 18, (0, "aircraft_assignment", "value", 700.0, "milp", "Aircraft")),
    ("nl4opt-dev@gold", 99, (0, None, "gold-model", None, "milp", "")),
    ("nl4opt-dev@integer", 99, (0, "-640645082", "value", 880.0, "milp", "coconut seller")),
    ("words2routes@v1", 31, (0, "1-tsp/A-TSP/05_points", "route", 16.64, "routing", "")),
    ("solomon", 56, (0, "C101", "route", 827.3, "routing", "C101")),
    ("cvrp-x", 100, (None, "X-n101-k25", "route", 27591.0, "routing", "X-n101-k25")),
    ("llmp/blocksworld", 20, (0, "blocksworld/p01", "plan", None, "pddl", "")),
    ("llmp/tyreworld", 20, (0, "tyreworld/p01", "plan", None, "pddl", "")),
    ("llmp/*", 140, (0, "barman/p01", "plan", None, "pddl", "")),
]


@needs_data
@pytest.mark.parametrize(("name", "count", "first"), REAL, ids=[r[0] for r in REAL])
def test_loader_reads_the_real_file(name: str, count: int, first: tuple) -> None:
    ds = load(name)
    assert len(ds.items) == count
    assert len({it.id for it in ds.items}) == count, "item ids must be unique (resume relies on it)"
    index, ident, expect, answer, kind, phrase = first
    item = ds.items[index] if index is not None else next(i for i in ds.items if i.id == ident)
    if ident is not None:
        assert item.id == ident
    assert item.expect == expect
    assert item.answer == answer
    assert item.kind == kind
    assert item.text.strip()
    assert phrase in item.text


@needs_data
def test_versions_differ_where_the_sources_say() -> None:
    """SIRL's corrected Mamo EasyLP marks one item "No Best Solution"; IndustryOR 2024 has three
    -99999 answers: both expect an infeasible or unbounded status."""
    easy = load("mamo-easy@sirl-fixed")
    assert sum(it.expect == "infeasible" for it in easy.items) == 1
    ior = load("industryor@2024")
    assert sum(it.expect == "infeasible" for it in ior.items) == 3
    nlp = load("nlp4lp@original")
    assert sum(it.expect == "unlabelled" for it in nlp.items) == 27


@needs_data
def test_planning_items_carry_the_gold_problem_and_the_validated_tyreworld_domain() -> None:
    item = load("llmp/tyreworld").items[0]
    assert item.gold["domain_file"] == "domain_validation.pddl"
    assert "(:goal" in item.gold["problem"] or "(:goal" in item.gold["problem"].lower()


@needs_data
def test_nl4opt_reference_is_the_optimum_of_the_gold_declarations() -> None:
    item = load("nl4opt-dev@gold").items[0]
    expect, value, note = datasets.reference_objective(item)
    assert expect == "value" and value == pytest.approx(888.888888, rel=1e-6) and note == ""


def test_objective_value_files_in_nl4opt_format(tmp_path: Path) -> None:
    """NL4Opt's objective-value files: one {"en_question", "en_answer"} per line."""
    f = tmp_path / "nl4opt_test.jsonl"
    rows = [
        {"en_question": "Maximize 3x with x <= 4.", "en_answer": "12"},
        {"en_question": "An impossible one.", "en_answer": "No Best Solution"},
        {"en_question": "A list answer.", "en_answer": "[18.0]"},
    ]
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    items = load_objective_file(f)
    assert [(i.id, i.expect, i.answer) for i in items] == [
        ("0", "value", 12.0),
        ("1", "infeasible", None),
        ("2", "value", 18.0),
    ]
    assert load(str(f)).items == items


def test_a_file_without_question_fields_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "bad.jsonl"
    f.write_text('{"text": "x"}\n')
    with pytest.raises(InputError, match="no question field"):
        load_objective_file(f)


def test_unknown_name_and_missing_folder_say_where_the_data_comes_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(InputError, match="unknown dataset"):
        load("no-such-set@v0")
    with pytest.raises(InputError, match="unknown dataset 'no-such-set'"):
        load("no-such-set")
    # A name without its version: the one version there is, or say which there are.
    assert datasets.resolve("solomon") == "solomon"
    with pytest.raises(InputError, match="name one: nl4opt-dev@gold, nl4opt-dev@integer"):
        datasets.resolve("nl4opt-dev")
    with pytest.raises(InputError, match="several versions; name one: mamo-easy@original"):
        load("mamo-easy")
    monkeypatch.setattr(datasets, "DEFAULT_DATA", tmp_path / "absent")
    monkeypatch.delenv("FORMALIST_DATA", raising=False)
    with pytest.raises(InputError, match="public sources"):
        load("mamo-easy@original")
    monkeypatch.setenv("FORMALIST_DATA", str(tmp_path))
    with pytest.raises(InputError, match="does not exist"):
        load("mamo-easy@original")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("10000", ("value", 10000.0)),
        ("'3050.0'", ("value", 3050.0)),
        (-99999, ("infeasible", None)),
        ("-9999", ("infeasible", None)),
        ("No Best Solution", ("infeasible", None)),
        ([700], ("value", 700.0)),
        ("[18.0]", ("value", 18.0)),
        (None, ("unlabelled", None)),
        ("about ten", ("unlabelled", None)),
    ],
)
def test_labels(raw: object, expected: tuple) -> None:
    assert parse_label(raw) == expected


@pytest.mark.parametrize(
    ("pred", "gold", "strict", "lenient"),
    [
        (100.0, 100.0, True, True),
        (100.00001, 100.0, True, True),  # 1e-5 / 101 < 1e-6
        (100.001, 100.0, False, True),
        (104.6, 100.0, False, True),  # rounds to 105: 5% exactly
        (105.6, 100.0, False, False),  # rounds to 106
        (0.4, 0.0, False, True),  # both round to 0
        (0.0, 0.0, True, True),
        (-50.0, 50.0, False, False),
    ],
)
def test_scoring_rules(pred: float, gold: float, strict: bool, lenient: bool) -> None:
    assert scoring.strict(pred, gold) is strict
    assert scoring.lenient(pred, gold) is lenient


def test_no_best_solution_expects_the_status_not_a_number() -> None:
    assert scoring.score("infeasible", None, "INFEASIBLE", None, False) == {
        "strict": True,
        "lenient": True,
    }
    assert scoring.score("infeasible", None, "UNBOUNDED", None, False)["strict"] is True
    assert scoring.score("infeasible", None, "OPTIMAL", 0.0, True)["lenient"] is False
    assert scoring.score("value", 5.0, "INFEASIBLE", None, False)["lenient"] is False


def test_route_scores_follow_words_to_routes() -> None:
    s = scoring.score("route", 16.64, "OPTIMAL", 16.64, True)
    assert s == {"feasible": True, "optimal": True}
    assert scoring.efficiency("route", 16.64, 20.0, True) == 0.83
    assert scoring.score("route", 16.64, "OPTIMAL", 16.64, False)["feasible"] is False


def test_llmp_items_ask_with_their_library_domain_so_the_prompt_has_its_worked_example() -> None:
    from agent.agent import Agent
    from agent.config import Config
    from agent.kinds import KINDS
    from benchmarks.datasets import DEFAULT_DATA, library_domain_of, load
    from benchmarks.runner import llm_request
    from formalizers.pddl.library import find

    blocks = find("blocksworld")
    assert blocks is not None
    # The same domain laid out otherwise (a comment, other spacing) is still the library's.
    relaid = "; the LLM+P copy\n" + blocks.text.replace("\n", "\n\n  ")
    assert library_domain_of(relaid) == "blocksworld"
    assert library_domain_of(blocks.text.replace("(clear ?x)", "(clean ?x)", 1)) == ""
    assert library_domain_of("(define (domain") == ""
    if not DEFAULT_DATA.is_dir():
        pytest.skip(f"benchmark data not found at {DEFAULT_DATA}")
    item = load("llmp/blocksworld").items[0]
    assert item.gold["library_domain"] == "blocksworld" and "(define" in item.gold["domain"]
    req = llm_request(item)
    assert req.extra["domain"] == "blocksworld"
    formalizer = KINDS["pddl"].formalizer(None, Agent(config=Config(cache="")).options(req))  # type: ignore[arg-type]
    prompt = formalizer.messages(item.text)[1]["content"]
    assert "(no description" not in prompt and "(none)" not in prompt
    assert blocks.description.strip()[:60] in prompt and blocks.example_problem.strip() in prompt
