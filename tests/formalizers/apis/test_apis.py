"""Incomplete requests over APIs: the travel-booking example, questions, and continuing with answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.agent import Agent
from agent.cli import main
from agent.config import Config
from agent.types import Request
from conftest import agent_with, scripted
from formalizers.apis.derive import derive
from formalizers.apis.model import ApiCatalog, ApiRequest, read_catalog
from solvers.base import Status

TRAVEL = Path(__file__).resolve().parents[3] / "examples" / "travel"


def agent() -> Agent:
    return Agent(config=Config(cache=""))


def test_complete_request_plans_straight_through() -> None:
    answer = agent().solve_file(TRAVEL / "complete.yaml")
    assert answer.status is Status.OPTIMAL and answer.verified
    assert answer.questions == []
    calls = [step.split("(")[0] for step in answer.plan or []]
    assert sorted(calls) == [
        "book_flight",
        "book_hotel",
        "convert_currency",
        "search_flights",
        "search_hotels",
    ]
    assert calls.index("search_flights") < calls.index("book_flight")
    assert calls.index("search_hotels") < calls.index("book_hotel")


def test_incomplete_request_asks_exactly_for_what_is_missing_then_continues() -> None:
    a = agent()
    first = a.solve_file(TRAVEL / "incomplete.yaml")
    assert first.status is Status.NEEDS_INFO and first.verified
    assert first.questions == ["How many nights will you stay?", "What is your passport number?"]
    assert first.diagnosis is not None
    assert sorted(m["name"] for m in first.diagnosis.members) == ["nights", "passport_number"]
    assert first.objective is None
    done = a.continue_with(first, {"nights": "5", "passport_number": "P1234567"})
    assert done.status is Status.OPTIMAL and done.verified and not done.questions
    assert not any(step.startswith("get-info") for step in done.plan or [])


def test_only_the_missing_answers_change_the_outcome() -> None:
    a = agent()
    first = a.solve_file(TRAVEL / "incomplete.yaml")
    half = a.continue_with(first, {"nights": "5"})
    assert half.status is Status.NEEDS_INFO
    assert half.questions == ["What is your passport number?"]


def test_words_become_facts_through_the_model_with_a_repair() -> None:
    catalog = (TRAVEL / "catalog.yaml").read_text()
    request = (TRAVEL / "request.txt").read_text()
    bad = '```asp\ngiven(origin, "Boston").\ngiven(hotel_name, "Ritz").\nwant(flight_booking).\n```'
    good = (
        "```asp\n"
        'given(origin, "Boston").\ngiven(destination, "Lisbon").\ngiven(departure_date, "2026-12-18").\n'
        'given(traveller_name, "Ana Silva").\ngiven(home_currency, "EUR").\n'
        "want(flight_booking).\nwant(hotel_booking).\nwant(fare_home_currency).\n```"
    )
    client = scripted(bad, good)
    answer = agent_with(client).solve(Request(request, kind="apis", extra={"apis": catalog}))
    assert (
        answer.trace[0].outcome == "symbol"
        and "'hotel_name' is not a parameter" in answer.trace[0].feedback
    )
    assert answer.status is Status.NEEDS_INFO
    assert answer.questions == ["How many nights will you stay?", "What is your passport number?"]
    # the prompt lists the APIs with their inputs and outputs
    assert (
        "book_flight: flight_id, traveller_name, passport_number -> flight_booking"
        in client.chat_model.calls[0][1]["content"]
    )


def test_cli_given_answers(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "solve",
            str(TRAVEL / "incomplete.yaml"),
            "--json",
            "--no-cache",
            "--given",
            "nights=5",
            "--given",
            "passport_number=P1",
        ]
    )
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["status"] == "OPTIMAL" and data["verified"]
    code = main(["solve", str(TRAVEL / "incomplete.yaml"), "--given", "oops"])
    assert code == 2


def test_catalog_errors_are_reported() -> None:
    from agent.errors import ArtifactError

    with pytest.raises(ArtifactError, match="used twice"):
        read_catalog("apis:\n - {name: a, outputs: [x]}\n - {name: a, outputs: [y]}\n")
    with pytest.raises(ArtifactError):
        read_catalog("apis: []\n")


def test_a_cycle_with_nothing_given_has_no_plan() -> None:
    """x is made from y and y from x: nothing grounds the cycle, and neither can be asked for."""
    cat = ApiCatalog.model_validate(
        {
            "apis": [
                {"name": "a", "inputs": ["x"], "outputs": ["y"]},
                {"name": "b", "inputs": ["y"], "outputs": ["x"]},
            ]
        }
    )
    req = ApiRequest(catalog=cat, want=["y"])
    assert not derive(req).satisfiable
    answer = agent().solve(Request(json.dumps(req.to_json()), "r.json", "apis"))
    assert answer.status is Status.INFEASIBLE


def test_cheaper_chain_is_preferred_over_asking() -> None:
    cat = ApiCatalog.model_validate(
        {
            "apis": [
                {"name": "lookup_city", "inputs": ["postcode"], "outputs": ["city"], "cost": 3},
                {"name": "weather", "inputs": ["city"], "outputs": ["forecast"]},
            ]
        }
    )
    req = ApiRequest(catalog=cat, given={"postcode": "1000-001"}, want=["forecast"])
    d = derive(req)
    assert d.missing == () and d.calls == ("lookup_city", "weather") and d.cost == 4
    answer = agent().solve(Request(json.dumps(req.to_json()), "r.json", "apis"))
    assert answer.status is Status.OPTIMAL and answer.plan == ["lookup_city()", "weather()"]


def test_answers_by_name_are_the_kinds_to_take() -> None:
    from agent.errors import InputError
    from agent.kinds import KINDS
    from agent.types import Answer

    assert [n for n, k in KINDS.items() if k.takes_answers] == ["apis"]
    first = agent().solve_file(TRAVEL / "incomplete.yaml")
    req = KINDS["apis"].continue_request(first.artifact, {"nights": "5"})
    assert req is not None and req.kind == "apis" and req.extra == {"given": {"nights": "5"}}
    asked = Answer(Status.NEEDS_INFO, "milp", questions=["How heavy is the bag allowed to be?"])
    with pytest.raises(InputError, match=r"takes answers by name \(apis\)"):
        agent().continue_with(asked, {"weight": "15"})
    with pytest.raises(InputError):
        agent().continue_with(Answer(Status.OPTIMAL, "apis"), {"nights": "5"})
