"""Retrieved examples: the nearest bank models, never the request's own."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.errors import InputError
from conftest import agent_with, golden_json, scripted
from formalizers.milp.formalizer import MilpFormalizer, examples_for, inline_numbers
from formalizers.milp.retrieval import (
    Bm25,
    load_bank,
    near_identical,
    retrieve,
    terms,
)

BANK = load_bank()
IDS = [e.id for e in BANK]


@pytest.mark.parametrize("k", [1, 3, 8])
def test_no_bank_item_retrieves_itself_even_when_its_id_is_not_given(k: int) -> None:
    for ex in BANK:
        got = retrieve(ex.request, k)
        assert len(got) == k
        assert ex.id not in [g.id for g in got], ex.id
        assert all(not near_identical(g.request, ex.request) for g in got)


@given(
    index=st.integers(0, len(BANK) - 1),
    scale=st.integers(2, 9),
    upper=st.booleans(),
    k=st.integers(1, 6),
)
@settings(max_examples=60, deadline=None)
def test_a_copy_with_other_numbers_case_or_spacing_never_retrieves_its_original(
    index: int, scale: int, upper: bool, k: int
) -> None:
    original = BANK[index]
    text = re.sub(r"\d+", lambda m: str(int(m.group()) * scale), original.request)
    text = "  ".join(text.split())
    if upper:
        text = text.upper()
    assert original.id not in [g.id for g in retrieve(text, k)]


def test_an_excluded_id_is_never_returned_and_k_zero_returns_nothing() -> None:
    request = BANK[0].request.replace("coconut", "banana")
    ranked = [g.id for g in retrieve(request, 5)]
    assert [g.id for g in retrieve(request, 4, exclude=[ranked[0]])] == ranked[1:5]
    assert retrieve(request, 0) == []


@pytest.mark.parametrize(
    ("item", "sibling"),
    [
        ("-1904284746", "1670020945"),  # foldable/regular phones <-> economical/premium phones
        ("1670020945", "-1904284746"),
        ("-106908195", "1319496932"),  # t-shirts/hoodies <-> raincoats/umbrellas, printing hours
        ("1319496932", "-106908195"),
    ],
)
def test_the_nearest_example_of_a_templated_problem_is_its_sibling(item: str, sibling: str) -> None:
    request = next(e.request for e in BANK if e.id == item)
    assert retrieve(request, 1, exclude=[item])[0].id == sibling


def test_a_new_request_retrieves_problems_of_its_kind() -> None:
    request = (
        "A farmer has 300 acres to plant with wheat and barley. Wheat earns $120 per acre and "
        "barley $90 per acre. Each acre of wheat needs 3 days of labour and each acre of barley "
        "2 days; 700 days are available. How many acres of each maximize profit?"
    )
    got = retrieve(request, 3)
    assert any("acre" in g.request for g in got)


def test_bm25_prefers_the_document_with_the_rarer_shared_word() -> None:
    idx = Bm25([["chair", "table"], ["chair", "sofa"], ["chair", "bed"]])
    s = idx.scores(["sofa", "chair"])
    assert s[1] > s[0] == s[2] > 0


def test_terms_drop_numbers_common_words_and_plural_s() -> None:
    assert terms("The 30 chairs and 2 tables cost $500.") == ["chair", "table", "cost"]


def test_near_identical_is_about_the_words_not_the_numbers() -> None:
    a = "A bakery makes 30 cakes and 20 pies with 100 eggs."
    assert near_identical(a, a.replace("30", "45").replace("100", "90"))
    assert not near_identical(a, "A garage repairs 3 cars and 2 vans in 40 hours.")


def test_the_formalizer_shows_retrieved_examples_and_never_the_excluded_one() -> None:
    item = BANK[5]
    client = scripted(golden_json("knapsack.json"))
    f = MilpFormalizer(client, n_examples=3, examples="retrieved", exclude=(item.id,))
    msgs = f.messages(item.request)
    shown = [json.loads(m["content"]) for m in msgs if m["role"] == "assistant"]
    assert len(shown) == 3
    expected = [inline_numbers(e.model) for e in retrieve(item.request, 3, exclude=[item.id])]
    assert shown == expected
    assert inline_numbers(item.model) not in shown and item.model not in shown
    assert "+bank-" in f.version()


def test_examples_none_sends_only_the_request_and_fixed_keeps_the_bundled_ones() -> None:
    request = "Make chairs and tables for the most profit with 100 hours."
    assert examples_for(request, "none") == []
    fixed = examples_for(request, "fixed", 2)
    assert len(fixed) == 2 and all(not e.name.lstrip("-").isdigit() for e in fixed)
    with pytest.raises(ValueError, match="examples must be one of"):
        examples_for(request, "nearest")


def test_a_request_with_no_examples_option_gets_the_nearest_of_the_bank() -> None:
    """The default (``DEFAULT_EXAMPLES``) is ``retrieved``; ``fixed`` still gives the bundled."""
    from agent.types import Request

    item = BANK[5]

    def shown(extra: dict) -> list[dict]:
        client = scripted(golden_json("knapsack.json"))
        agent_with(client).solve(Request(item.request, kind="milp", extra=extra))
        return [json.loads(m["content"]) for m in client.chat_model.calls[0] if m["role"] == "ai"]

    # Shown as the default number style writes them (``inline``).
    nearest = [inline_numbers(e.model) for e in examples_for(item.request, "retrieved", 2)]
    bundled = [inline_numbers(e.model) for e in examples_for(item.request, "fixed", 2)]
    assert nearest != bundled
    assert shown({"grounding": "report"}) == nearest
    assert shown({"grounding": "report", "examples": "fixed"}) == bundled
    assert MilpFormalizer(scripted()).examples == "retrieved"


def test_request_options_reach_the_formalizer_and_bad_ones_are_named() -> None:
    from agent.types import Request

    item = BANK[0]
    client = scripted(golden_json("knapsack.json"))
    agent = agent_with(client)
    # The scripted knapsack is not the item's model: its grounding is reported, not repaired.
    extra = {"examples": "retrieved", "shots": 1, "exclude_ids": [item.id], "grounding": "report"}
    answer = agent.solve(Request(item.request, kind="milp", extra=extra))
    assert answer.verified and len(client.chat_model.calls) == 1
    sent = client.chat_model.calls[0]
    assert len([m for m in sent if m["role"] == "ai"]) == 1
    assert all(item.request not in m["content"] for m in sent[:-1])
    with pytest.raises(InputError, match="examples must be one of"):
        agent_with(scripted("{}")).solve(
            Request(item.request, kind="milp", extra={"examples": "all"})
        )
    with pytest.raises(InputError, match="shots must be"):
        agent_with(scripted("{}")).solve(Request(item.request, kind="milp", extra={"shots": -1}))


def test_every_bank_id_is_unique_and_present() -> None:
    assert len(IDS) == len(set(IDS)) == 94
