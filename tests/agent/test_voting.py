"""Voting over sampled formalizations, with scripted models whose reply depends on the seed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import PrivateAttr

from agent.errors import InputError
from agent.llm.client import ChatClient
from agent.types import Request
from agent.voting import SampleOutcome, tally
from conftest import agent_with
from formalizers.milp.grammar import five_element_grammar_for
from solvers.base import Status

REQUEST = "Pack the most valuable boxes into a bag of at most C kg."


def model(capacity: float, name: str = "bag") -> dict[str, Any]:
    """A continuous knapsack whose optimum is ``capacity`` (one item worth 1 per kg)."""
    return {
        "name": name,
        "variables": [{"name": "kg", "upper": 1000}],
        "objective": {"sense": "maximize", "expression": "kg"},
        "constraints": [{"name": "bag", "expression": f"kg <= {capacity}"}],
    }


INFEASIBLE = {
    "variables": [{"name": "kg"}],
    "objective": {"sense": "maximize", "expression": "kg"},
    "constraints": [{"name": "a", "expression": "kg >= 5"}, {"name": "b", "expression": "kg <= 2"}],
}


class BySeed(BaseChatModel):
    """Replies by the call's ``seed`` (``replies[seed]``); ``default`` for calls with no seed (the
    repair loop's greedy calls). Records every call's keywords, the grammar it asked for
    (``output``) apart in ``_outputs``."""

    replies: dict[int, str]
    default: list[str] = []
    _seen: list[dict[str, Any]] = PrivateAttr(default_factory=list)
    _outputs: list[Any] = PrivateAttr(default_factory=list)
    _greedy: int = PrivateAttr(default=0)

    @property
    def _llm_type(self) -> str:
        return "test-by-seed"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        self._outputs.append(kwargs.pop("output", None))
        self._seen.append(dict(kwargs))
        if "seed" in kwargs:
            text = self.replies[kwargs["seed"]]
        else:
            text = self.default[self._greedy]
            self._greedy += 1
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])


def client_for(*replies: Any, default: tuple[Any, ...] = ()) -> tuple[ChatClient, BySeed]:
    def text(r: Any) -> str:
        return r if isinstance(r, str) else json.dumps(r)

    chat = BySeed(
        replies={i: text(r) for i, r in enumerate(replies)}, default=[text(d) for d in default]
    )
    return ChatClient("test:by-seed", chat), chat


def solve(client: ChatClient, k: int) -> Any:
    return agent_with(client).solve(Request(REQUEST, kind="milp", extra={"samples": k}))


def test_the_verified_majority_wins_and_disagreement_is_reported() -> None:
    client, chat = client_for(model(12), "not json", model(7), model(12), model(12.0000000001))
    answer = solve(client, 5)
    assert answer.status is Status.OPTIMAL and answer.verified
    assert answer.objective == pytest.approx(12)
    vote = answer.vote
    assert vote is not None
    assert (vote["k"], vote["verified"], vote["confidence"]) == (5, 4, 0.6)
    assert vote["disagree"] and not vote["tie"]
    assert [(g["objective"], g["votes"]) for g in vote["groups"]] == [(12, 3), (7, 1)]
    assert [s["outcome"] for s in vote["samples"]] == ["ok", "parse", "ok", "ok", "ok"]
    assert vote["answer_sample"] == 1
    assert "3 of 5 sampled formalizations agree" in answer.explanation
    assert "disagree" in answer.explanation and "7 (1)" in answer.explanation
    # One conversation, k seeds, the first sample greedy and the others at the sampling
    # temperature; no repair call was needed.
    assert [s["seed"] for s in chat._seen] == [0, 1, 2, 3, 4]
    assert [s["temperature"] for s in chat._seen] == [0.0] + [0.7] * 4
    # Every sample is asked under the five-element grammar.
    assert [o.id for o in chat._outputs] == [five_element_grammar_for(REQUEST).id] * 5
    assert answer.attempts == 5 and answer.to_json()["vote"] == vote


def test_unverified_and_unsolved_samples_do_not_vote(monkeypatch: pytest.MonkeyPatch) -> None:
    import solvers.verify
    from solvers.base import Verification

    real = solvers.verify.verify_linear

    def distrust_the_wrong_bag(lm: Any, result: Any) -> Verification:
        v = real(lm, result)
        if result.objective == pytest.approx(99):
            return Verification(False, v.checked, 1.0, v.objective, message="breaks 'bag'")
        return v

    # The milp kind imports the verifier when it first verifies: patch it where it lives.
    monkeypatch.setattr(solvers.verify, "verify_linear", distrust_the_wrong_bag)
    client, _ = client_for(model(99), model(99), model(99), INFEASIBLE, model(15))
    answer = solve(client, 5)
    assert answer.objective == pytest.approx(15) and answer.verified
    assert answer.vote is not None
    assert answer.vote["verified"] == 1 and answer.vote["confidence"] == 0.2
    assert not answer.vote["disagree"]
    assert [s["outcome"] for s in answer.vote["samples"]] == [
        "verification",
        "verification",
        "verification",
        "infeasible",
        "ok",
    ]


def test_unanimous_samples_report_full_confidence() -> None:
    client, _ = client_for(*(model(3) for _ in range(4)))
    answer = solve(client, 4)
    assert answer.vote is not None
    assert answer.vote["confidence"] == 1.0 and not answer.vote["disagree"]
    assert "disagree" not in answer.explanation


def test_no_verified_sample_falls_back_to_the_repair_loop() -> None:
    client, chat = client_for("oops", "{}", default=("still not json", model(8)))
    # The bag's 8 kg is not the request's (it says C): reported, not sent back for repair.
    answer = agent_with(client).solve(
        Request(REQUEST, kind="milp", extra={"samples": 2, "grounding": "report"})
    )
    assert answer.objective == pytest.approx(8) and answer.verified
    assert answer.vote is not None and answer.vote["verified"] == 0
    assert answer.explanation.startswith("None of 2 sampled formalizations")
    assert [a.outcome for a in answer.trace] == ["parse", "ok"]
    assert len(chat._seen) == 4


def test_a_tie_is_said_and_the_first_sample_wins() -> None:
    client, _ = client_for(model(5), model(6), model(6), model(5))
    answer = solve(client, 4)
    assert answer.objective == pytest.approx(5)
    assert answer.vote is not None and answer.vote["tie"]
    assert "tied" in answer.explanation


def test_one_sample_is_the_ordinary_repair_loop() -> None:
    client, chat = client_for(default=(model(4),))
    answer = agent_with(client).solve(Request(REQUEST, kind="milp", extra={"grounding": "report"}))
    assert answer.objective == pytest.approx(4) and answer.vote is None
    assert chat._seen == [{}]


@pytest.mark.parametrize("bad", [0, -1, 65, "8", 2.5, True])
def test_a_bad_samples_option_is_refused_by_name(bad: Any) -> None:
    client, _ = client_for(model(1))
    with pytest.raises(InputError, match="samples must be a whole number"):
        agent_with(client).solve(Request(REQUEST, kind="milp", extra={"samples": bad}))


def test_tally_groups_within_tolerance_and_orders_by_votes() -> None:
    def o(i: int, obj: float | None, ok: bool = True) -> SampleOutcome:
        return SampleOutcome(i, "OPTIMAL", obj, ok, "ok")

    ballot = tally([o(0, 1.0), o(1, 2.0), o(2, 2.0 + 1e-9), o(3, 1.0, ok=False), o(4, None)])
    assert [(g.objective, g.members) for g in ballot.groups] == [(2.0, (1, 2)), (1.0, (0,))]
    assert ballot.confidence == pytest.approx(2 / 5) and ballot.disagree and not ballot.tie
    empty = tally([o(0, 3.0, ok=False)])
    assert empty.winner is None and empty.confidence == 0.0
    assert empty.summary().startswith("None of 1")


def test_near_values_vote_together_and_the_most_common_value_answers() -> None:
    """One formulation solved with whole and with fractional counts lands within NEAR_TOL: its
    samples vote together, and the answer is their most common value, from its first sample."""

    def o(i: int, obj: float) -> SampleOutcome:
        return SampleOutcome(i, "OPTIMAL", obj, True, "ok", True)

    ballot = tally([o(0, 13100), o(1, 16428.57), o(2, 16400), o(3, 13100), o(4, 16400)])
    win = ballot.winner
    assert win is not None and (win.objective, win.members, win.answer) == (16400, (1, 2, 4), 2)
    assert win.near == (16428.57,) and not ballot.tie
    assert [g.objective for g in ballot.groups] == [16400, 13100]
    assert "16428.6 within 0.5% of it counted with it" in ballot.summary()
    as_json = ballot.to_json()
    assert as_json["answer_sample"] == 3
    assert as_json["groups"][0] == {"objective": 16400, "votes": 3, "near": [16428.57]}
    # Further apart than NEAR_TOL (1%): two answers, and the tie goes to the one reached first.
    apart = tally([o(0, 5000), o(1, 4950), o(2, 4950), o(3, 5000)])
    assert [(g.objective, g.members) for g in apart.groups] == [(5000, (0, 3)), (4950, (1, 2))]
    assert apart.tie and apart.winner is not None and apart.winner.near == ()
    # No chains: each value joins an answer only within NEAR_TOL of the answer's own value.
    chain = tally([o(0, 100.0), o(1, 100.0), o(2, 100.4), o(3, 100.8)])
    assert [(g.objective, g.votes) for g in chain.groups] == [(100.0, 3), (100.8, 1)]


def test_the_bench_runner_votes_scores_each_sample_and_keeps_its_settings(
    tmp_path: Path,
) -> None:
    from benchmarks.replay import KeyedReplayChatModel
    from benchmarks.runner import RunSettings, build_agent, read_results, run

    data = tmp_path / "two.jsonl"
    data.write_text(
        "".join(
            json.dumps(
                {"id": i, "en_question": f"Fill a bag of {c} kg or 11 or 6.", "en_answer": c}
            )
            + "\n"
            for i, c in (("p", 12), ("q", 5))
        )
    )
    # Item p: 2 of 3 samples right; item q: one right sample, outvoted by two wrong ones.
    replies = [
        json.dumps(m) for m in (model(12), model(11), model(12), model(5), model(6), model(6))
    ]
    s = RunSettings(str(data), "llm", "replay", concurrency=1, samples=3, examples="retrieved")
    out = tmp_path / "run"
    chat = KeyedReplayChatModel(keyed={}, ordered=replies)
    run(s, out, agent=build_agent(s, out, chat_model=chat), progress=False)
    rows = {r["id"]: r for r in read_results(out / "results.jsonl")}
    assert rows["p"]["scores"]["strict"] and rows["p"]["vote"]["confidence"] == 0.6667
    assert [x["strict"] for x in rows["p"]["sample_scores"]] == [True, False, True]
    assert not rows["q"]["scores"]["strict"] and rows["q"]["objective"] == pytest.approx(6)
    assert [x["strict"] for x in rows["q"]["sample_scores"]] == [True, False, False]
    from benchmarks.report import report

    voting = report(out)["voting"]
    # Each item's first sample is the greedy one: both right (p: 12, q: 5), the others at the
    # temperature one right of four.
    assert voting["rules"]["strict"] == {
        "vote": 0.5,
        "pass@1": 0.5,
        "pass@k": 1.0,
        "pass@1_greedy": 1.0,
        "pass@1_sampled": 0.25,
    }
    assert voting["disagree"] == 2
    # The scripted models bound their variable by 1000, a number no question states.
    assert rows["p"]["grounded"] is False
    grounding = report(out)["grounding"]
    assert grounding["checked"] == 2 and grounding["right"]["not_grounded"] == 1
    md = (out / "report.md").read_text()
    assert (
        "pass@1 (one sample)" in md and "| strict | 50.0% | 50.0% | 100.0% | 100.0% | 25.0% |" in md
    )
    assert "2 item(s) finished\n" in md
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["settings"]["samples"] == 3 and cfg["settings"]["examples"] == "retrieved"
    with pytest.raises(InputError, match="samples=3"):
        run(
            RunSettings(str(data), "llm", "replay", samples=1, examples="retrieved"),
            out,
            agent=build_agent(s, out, chat_model=chat),
        )


def test_a_voted_wrong_answer_is_classed_by_its_own_sample_not_the_last_one(
    tmp_path: Path,
) -> None:
    """The last sample failing to parse does not make a verified, wrong vote a parse error."""
    from benchmarks.replay import KeyedReplayChatModel
    from benchmarks.runner import RunSettings, build_agent, read_results, run

    data = tmp_path / "one.jsonl"
    data.write_text(json.dumps({"id": "r", "en_question": "Fill 5 or 6 kg.", "en_answer": 5}))
    replies = ["not json", json.dumps(model(6)), json.dumps(model(6)), "not json"]
    s = RunSettings(str(data), "llm", "replay", concurrency=1, samples=4, examples="retrieved")
    out = tmp_path / "run"
    chat = KeyedReplayChatModel(keyed={}, ordered=replies)
    run(s, out, agent=build_agent(s, out, chat_model=chat), progress=False)
    (row,) = read_results(out / "results.jsonl")
    assert row["vote"]["answer_sample"] == 2 and row["objective"] == pytest.approx(6)
    assert (row["outcome"], row["error_class"]) == ("ok", "wrong answer")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("examples", "all", "--examples"), ("shots", 9, "--shots"), ("samples", 0, "--samples")],
)
def test_bad_bench_settings_are_refused(field: str, value: Any, message: str) -> None:
    from benchmarks.runner import RunSettings

    with pytest.raises(InputError, match=message):
        RunSettings("x", "llm", "replay", **{field: value})


class OneCall(BaseChatModel):
    """Draws all ``n`` samples of a call at once (as the local engine does); counts calls (their
    keywords but the grammar, ``output``, kept in ``_outputs``)."""

    samples_in_one_call: bool = True
    _calls: list[dict[str, Any]] = PrivateAttr(default_factory=list)
    _outputs: list[Any] = PrivateAttr(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "test-one-call"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        self._outputs.append(kwargs.pop("output", None))
        self._calls.append(dict(kwargs))
        texts = [json.dumps(model(10 + (i % 2))) for i in range(kwargs["n"])]
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=t)) for t in texts])


def test_a_model_that_samples_in_one_call_is_asked_once_and_each_reply_cached(
    tmp_path: Path,
) -> None:
    from agent.llm.cache import ResponseCache

    chat = OneCall()
    client = ChatClient("test:one-call", chat, ResponseCache(str(tmp_path / "c.sqlite")))
    answer = solve(client, 5)
    assert chat._calls == [{"n": 5, "temperature": 0.7, "seed": 0, "greedy": 1}]
    assert [o.name for o in chat._outputs] == ["five-element"]
    assert answer.objective == pytest.approx(10) and answer.vote is not None
    assert answer.vote["confidence"] == 0.6
    # The same request again: every sample from the cache, no call.
    again = solve(client, 5)
    assert len(chat._calls) == 1 and client.cache_hits == 5
    assert again.vote == answer.vote


def test_the_local_engine_draws_k_samples_from_one_prefill(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("xgrammar")
    from agent.llm.local.chat_model import LocalChatModel
    from agent.llm.local.testing import ENGINE_OPTIONS, TEST_BOUNDS, tiny_model_dir

    chat = LocalChatModel(
        model_path=str(tiny_model_dir(tmp_path)),
        bounds=TEST_BOUNDS,
        engine_options=ENGINE_OPTIONS,
        max_new_tokens=300,
    )
    client = ChatClient("local:tiny", chat)
    from formalizers.milp.formalizer import MilpFormalizer

    drawn = MilpFormalizer(client).formalize_samples(REQUEST, 3, temperature=1.0, greedy=1)
    assert len(drawn) == 3 and client.calls == 1
    # Each reply follows the five-element grammar (a random model: the content is nonsense).
    texts = [d.text if hasattr(d, "text") else d.reply for d in drawn]
    assert len(set(texts)) > 1 and all(t.lstrip().startswith("{") for t in texts)
    # The first is the greedy reply: the one a single call at temperature 0 gives.
    greedy = ChatClient("local:tiny", chat).complete_n(
        MilpFormalizer(client).messages(REQUEST), 1, 0.0, output=five_element_grammar_for(REQUEST)
    )[0]
    assert texts[0] == greedy.text


def test_grounded_samples_outvote_ungrounded_ones() -> None:
    """Two samples say 7, a number the request never states; the one that says 12 is grounded."""
    client, _ = client_for(model(7), model(7), model(12))
    answer = agent_with(client).solve(
        Request("Fill a bag that holds 12 kg.", kind="milp", extra={"samples": 3})
    )
    assert answer.objective == pytest.approx(12)
    assert answer.vote is not None and answer.vote["grounded_only"]
    assert [s["grounded"] for s in answer.vote["samples"]] == [False, False, True]
    assert answer.grounding is not None and answer.grounding["ok"]
    assert "1 verified and grounded" in answer.explanation


def test_a_fixed_sample_of_items_is_the_same_every_time_and_in_dataset_order() -> None:
    from benchmarks.datasets import Item
    from benchmarks.runner import RunSettings, sample_items

    items = [Item(f"i{n:03d}", "text", "milp", "value", float(n)) for n in range(652)]
    a = sample_items(items, 100, 0)
    assert a == sample_items(items, 100, 0) and len(a) == 100
    assert [it.id for it in a] == sorted(it.id for it in a)
    assert a != sample_items(items, 100, 1)
    assert sample_items(items, 1000, 0) == items and sample_items(items, None, 5) == items
    with pytest.raises(InputError, match="--sample"):
        RunSettings("x", "llm", "replay", sample=0)


def test_formalist_solve_samples_and_prints_the_vote(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from agent.cli import main

    script = tmp_path / "replies.json"
    script.write_text(json.dumps([json.dumps(model(12)), json.dumps(model(12)), "oops"]))
    request = "Fill a bag that holds 12 kg; nothing weighs more than 1000 kg."
    args = ["solve", request, "--kind", "milp", "--samples", "3", "--examples", "retrieved"]
    code = main([*args, "--grounding", "repair", "--model", f"replay:{script}", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["objective"] == pytest.approx(12)
    assert out["vote"]["k"] == 3 and out["vote"]["confidence"] == pytest.approx(0.6667)
    assert out["grounding"]["ok"] is True
