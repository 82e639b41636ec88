"""Repair that does not repeat itself: a reply identical to an earlier one after feedback is caught,
not solved again, and the next attempt is drawn differently."""

from __future__ import annotations

import copy
import json
from typing import Any

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import PrivateAttr

from agent.agent import artifact_key
from agent.llm.client import ChatClient
from agent.types import Request
from conftest import agent_with, golden_json
from solvers.base import Status

KNAPSACK = golden_json("knapsack.json")
REQUEST = "Pack the most valuable boxes into a 15 kg bag."


class InOrder(BaseChatModel):
    """Replies in order; records each call's keywords (seed, temperature), the grammar it asked
    for (``output``) apart in ``_outputs``."""

    replies: list[str]
    _kwargs: list[dict[str, Any]] = PrivateAttr(default_factory=list)
    _outputs: list[Any] = PrivateAttr(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "test-in-order"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        text = self.replies[len(self._kwargs)]
        self._outputs.append(kwargs.pop("output", None))
        self._kwargs.append(dict(kwargs))
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])


def client(*replies: Any) -> tuple[ChatClient, InOrder]:
    chat = InOrder(replies=[r if isinstance(r, str) else json.dumps(r) for r in replies])
    return ChatClient("test:in-order", chat), chat


def broken() -> dict[str, Any]:
    data = copy.deepcopy(KNAPSACK)
    data["constraints"][0]["expression"] = "sum(weight[b] * take[b] for b in BOXES) <= bag_limit"
    return data


def test_a_repeated_reply_is_caught_and_the_next_one_is_drawn_differently() -> None:
    # The second reply is the first again, spaced differently: the same artifact.
    again = json.dumps(broken(), indent=4)
    c, chat = client(broken(), again, KNAPSACK)
    answer = agent_with(c, max_attempts=3).solve(Request(REQUEST, kind="milp"))
    assert answer.status is Status.OPTIMAL and answer.objective == 15.0
    first, second, third = answer.trace
    assert (first.outcome, second.outcome, third.outcome) == ("symbol", "symbol", "ok")
    assert second.repeats == 1 and first.repeats is None and third.repeats is None
    assert "the same as attempt 1's" in second.feedback
    assert "'bag_limit' is not declared" in second.feedback
    assert "validate" not in second.timings  # known outcome: not validated again
    # Greedy until the repeat; then a new seed at a sampling temperature.
    assert chat._kwargs[0] == {} and chat._kwargs[1] == {}
    assert chat._kwargs[2]["temperature"] == 0.8 and "seed" in chat._kwargs[2]
    assert len({o.id for o in chat._outputs}) == 1  # the same grammar, sampled or not
    assert second.to_json()["repeats"] == 1


def test_an_infeasible_model_sent_three_times_is_still_the_infeasible_answer() -> None:
    infeasible = golden_json("infeasible.json")
    c, chat = client(infeasible, infeasible, infeasible)
    answer = agent_with(c, max_attempts=3).solve(Request("Ten posts to fill.", kind="milp"))
    assert answer.status is Status.INFEASIBLE and not answer.error
    assert [a.repeats for a in answer.trace] == [None, 1, 1]
    assert [a.outcome for a in answer.trace] == ["infeasible"] * 3
    assert len(chat._kwargs) == 3 and chat._kwargs[2]["seed"] != chat._kwargs[1].get("seed")


def test_the_same_unreadable_reply_twice_is_a_repeat_too() -> None:
    c, _ = client("I would make 5 chairs.", "I would make 5 chairs. ", KNAPSACK)
    answer = agent_with(c, max_attempts=3).solve(Request(REQUEST, kind="milp"))
    assert [a.outcome for a in answer.trace] == ["parse", "parse", "ok"]
    assert answer.trace[1].repeats == 1


def test_artifact_key_ignores_spacing_and_key_order() -> None:
    assert artifact_key({"a": 1, "b": [1, 2]}) == artifact_key({"b": [1, 2], "a": 1})
    assert artifact_key("(define  (problem p)\n)") == artifact_key("(define (problem p) )")
    assert artifact_key({"a": 1}) != artifact_key({"a": 2})
