"""Issue 16's measurement script (benchmarks.tools_measure) with a scripted model, offline.

The scripted maker below writes a hand-made tool: it tests the measurement's plumbing (classes,
splits, making, using, scoring, tokens, the report), never what a real model can make.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from agent.agent import Agent
from agent.config import Config
from agent.tools_flow import read_examples
from benchmarks import tools_measure as tm
from tool_maker.layers import SandboxUnavailable
from tool_maker.sandbox import Sandbox

TOOL = '''
def workshop_model(profit_a: float, profit_b: float, hours_a: float, hours_b: float,
                   hours: float) -> dict:
    """The five-element model of a two-product plan: maximize profit within the hours."""
    return {
        "variables": [{"name": "a", "lower": 0}, {"name": "b", "lower": 0}],
        "objective": {"sense": "maximize",
                      "expression": f"{profit_a} * a + {profit_b} * b"},
        "constraints": [{"name": "c1_linear",
                         "expression": f"{hours_a} * a + {hours_b} * b <= {hours}"}],
    }
'''
NAMES = ["profit_a", "profit_b", "hours_a", "hours_b", "hours"]


def request(p: tuple[int, int], n: tuple[int, int], h: int) -> str:
    return (
        f"A workshop makes two products. Product A earns {p[0]} dollars and product B {p[1]} "
        f"dollars. A takes {n[0]} hours and B {n[1]} hours; {h} hours are available. "
        "Maximize the profit."
    )


def numbers(text: str) -> list[float]:
    return [float(x) for x in re.findall(r"\d+(?:\.\d+)?", text)]


def model_of(nums: list[float]) -> dict[str, Any]:
    """The bank's model of a workshop request (and the scripted direct formalization)."""
    p0, p1, n0, n1, h = nums
    return {
        "variables": [{"name": "x", "lower": 0}, {"name": "y", "lower": 0}],
        "objective": {"sense": "maximize", "expression": f"{p0} * x + {p1} * y"},
        "constraints": [{"name": "c1_linear", "expression": f"{n0} * x + {n1} * y <= {h}"}],
    }


WORKSHOPS = [
    ((30, 50), (2, 4), 100),
    ((20, 70), (1, 5), 60),
    ((25, 40), (3, 2), 90),
    ((10, 90), (1, 6), 30),
    ((60, 15), (5, 1), 50),
    ((12, 18), (2, 3), 40),
    ((45, 35), (4, 2), 80),
    ((16, 64), (2, 8), 24),
    ((9, 27), (3, 3), 33),
]


def workshop_bank() -> list[dict[str, Any]]:
    """Nine workshop items of class (maximize, {linear}) and three of (minimize, {linear, xby})."""
    items = []
    for i, (p, n, h) in enumerate(WORKSHOPS):
        best = h * max(p[0] / n[0], p[1] / n[1])
        text = request(p, n, h)
        items.append(
            {
                "id": f"w{i}",
                "request": text,
                "optimum": best,
                "label": best,
                "model": model_of(numbers(text)),
            }
        )
    for i in range(3):
        model = {
            "variables": [{"name": "x", "lower": 0}, {"name": "y", "lower": 0}],
            "objective": {"sense": "minimize", "expression": "2 * x + 3 * y"},
            "constraints": [
                {"name": "c1_linear", "expression": f"x + y >= {i + 1}"},
                {"name": "c2_xby", "expression": "x <= 2 * y"},
            ],
        }
        items.append(
            {"id": f"m{i}", "request": f"Diet {i}", "optimum": 0, "label": 0, "model": model}
        )
    return items


class Scripted(BaseChatModel):
    """Answers by what is asked: the maker gets the tool and one call per question, the fit
    question yes, the argument filler and the direct formalizer the request's numbers; for a
    request in ``bad_arguments`` the filler answers with no arguments (the tool then fails)."""

    bad_arguments: list[str] = []

    @property
    def _llm_type(self) -> str:
        return "scripted-by-content"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        system, last = str(messages[0].content), str(messages[-1].content)
        if "You write tools" in system:
            questions = re.findall(r"^Q\d+: (.*)$", last, re.MULTILINE)
            calls = [{"args": numbers(q), "kwargs": {}} for q in questions]
            meta = {"function": "workshop_model", "calls": calls}
            reply = f"```python\n{TOOL}\n```\n\n```json\n{json.dumps(meta)}\n```"
        elif "Does this tool fit" in last:
            reply = '"yes"'
        elif "fill in the arguments" in system:
            bad = any(r in last for r in self.bad_arguments)
            reply = "{}" if bad else json.dumps(dict(zip(NAMES, numbers(last), strict=True)))
        else:
            text = last.split("Request:", 1)[-1].split("Reply with", 1)[0]
            reply = json.dumps(model_of(numbers(text)))
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=reply))])


def test_class_rule_orders_by_size_then_key_and_keeps_min_size() -> None:
    def item(i: int, sense: str, *names: str) -> dict[str, Any]:
        cons = [{"name": n, "expression": "x <= 1"} for n in names]
        return {"id": str(i), "model": {"objective": {"sense": sense}, "constraints": cons}}

    items = [
        item(1, "maximize", "c1_linear", "c2_xy"),
        item(2, "maximize", "c1_xy", "c2_linear", "c3_linear"),  # same set, counts ignored
        item(3, "minimize", "c1_ratio"),
        item(4, "minimize", "c1_ratio", "c2_ratio"),
        item(5, "max", "c1_sum"),  # "max" is maximize
        item(6, "minimize", "lowerbound"),  # a name without cN_ is its own type
    ]
    groups = tm.group(items)
    assert [(k, len(m)) for k, m in groups] == [
        (("maximize", ("linear", "xy")), 2),
        (("minimize", ("ratio",)), 2),  # tie with the one above: the key decides
        (("maximize", ("sum",)), 1),
        (("minimize", ("lowerbound",)), 1),
    ]
    assert tm.pick(groups, 5, 2) == [("maximize", ("linear", "xy")), ("minimize", ("ratio",))]
    assert tm.pick(groups, 1, 2) == [("maximize", ("linear", "xy"))]
    assert tm.pick(groups, 3, 3) == []
    assert tm.class_slug(("maximize", ("linear", "xy"))) == "max_linear_xy"


def test_the_real_bank_classes() -> None:
    groups = tm.group(tm.load_bank_items())
    assert sum(len(m) for _, m in groups) == 94
    assert tm.pick(groups, 2, 9) == [("maximize", ("linear",)), ("minimize", ("linear",))]


def test_split_is_seeded_and_never_puts_a_training_item_in_the_test_set() -> None:
    items = workshop_bank()[:9]
    for seed in range(20):
        train, test = tm.split(items, seed, 6)
        assert len(train) == 6 and len(test) == 3
        assert not {t["id"] for t in train} & {t["id"] for t in test}
        assert {t["id"] for t in train + test} == {t["id"] for t in items}
        assert tm.split(list(reversed(items)), seed, 6) == (train, test)  # file order is moot
    assert tm.split(items, 0, 6) != tm.split(items, 1, 6)


def test_the_examples_folder_reads_back_in_the_split_order(tmp_path: Path) -> None:
    train = tm.split(workshop_bank()[:9], 3, 4)[0]
    tm.write_examples(tmp_path / "cls", train)
    kind, examples = read_examples(tmp_path / "cls", Agent(config=Config(cache="")))
    assert kind == "milp"
    assert [e.request for e in examples] == [t["request"] for t in train]
    assert [e.objective for e in examples] == pytest.approx([t["optimum"] for t in train])


def test_direct_replies_go_to_the_item_whose_request_is_asked_last(tmp_path: Path) -> None:
    a, b = workshop_bank()[:2]
    rec = tmp_path / "recording.jsonl"
    shown_b = [
        {"role": "user", "content": "Request:\n" + b["request"]},
        {"role": "assistant", "content": "{}"},
    ]
    entries = [
        {
            "messages": [*shown_b, {"role": "user", "content": "Request:\n" + a["request"]}],
            "reply": "one",
        },
        {"messages": [{"role": "user", "content": "Request:\n" + b["request"]}], "reply": "two"},
        {"messages": [{"role": "user", "content": "Something else"}], "reply": "three"},
    ]
    rec.write_text("".join(json.dumps(e) + "\n" for e in entries), encoding="utf-8")
    assert tm.direct_replies(rec, [a, b]) == {"w0": ["one"], "w1": ["two"]}
    row = tm.direct_row(
        a,
        {"id": "w0", "status": "OPTIMAL", "objective": a["label"], "verified": True},
        ["one"],
        len,
    )
    assert row["scores"] == {"strict": True, "lenient": True} and row["tokens"] == 3
    assert row["source"] == "--direct"


def test_end_to_end_with_a_scripted_maker_and_user(tmp_path: Path) -> None:
    try:
        Sandbox().check_ready()
    except SandboxUnavailable as e:
        pytest.skip(f"the sandbox cannot run on this machine: {e}")
    bank = tmp_path / "bank.json"
    bank.write_text(json.dumps({"items": workshop_bank()}), encoding="utf-8")
    out = tmp_path / "run"
    flags = f"--out {out} --bank {bank} --min-size 5 --train 4 --limit-test 3 --max-attempts 1"
    opts = tm.parser().parse_args(flags.split())
    train, test = tm.split(workshop_bank()[:9], 0, 4)
    broken = test[1]  # its arguments come back empty: the tool fails, the item falls back
    text = tm.measure(opts, chat_model=Scripted(bad_arguments=[broken["request"]]))
    made = json.loads((out / "make.json").read_text(encoding="utf-8"))
    assert list(made) == ["max_linear"]  # the diet class has 3 items, under --min-size 5
    assert made["max_linear"]["report"]["tool"] == "workshop_model@v1"
    assert made["max_linear"]["tokens"] > 0 and made["max_linear"]["calls"] == 1
    assert made["max_linear"]["train"] == [t["id"] for t in train]
    assert made["max_linear"]["test"] == [t["id"] for t in test[:3]]
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [(r["path"], r["id"]) for r in rows] == [
        (path, t["id"]) for t in test[:3] for path in ("tool", "direct")
    ]
    for r in rows:  # the direct formalizer and the tool are both right here
        assert r["scores"] == {"strict": True, "lenient": True}
        assert r["tokens"] > 0 and r["seconds"] > 0 and r["class"] == "max_linear"
    by_tool = [r for r in rows if r["path"] == "tool" and r["id"] != broken["id"]]
    assert [(r["tool"], r["calls"]) for r in by_tool] == [("workshop_model@v1", 2)] * 2
    assert all(r["tools"]["chosen"] == "workshop_model@v1" for r in by_tool)
    fell = next(r for r in rows if r["path"] == "tool" and r["id"] == broken["id"])
    assert fell["tool"] == "" and fell["calls"] == 3  # yes/no, arguments, then direct
    assert "formalized directly" in fell["tools"]["fallback"]
    direct = [r for r in rows if r["path"] == "direct"]
    assert [(r.get("tool", ""), r["calls"]) for r in direct] == [("", 1)] * 3
    assert {r["source"] for r in direct} == {"here"}  # no --direct run: solved directly here
    assert fell["tokens"] > direct[1]["tokens"]  # the fallback paid for the direct reply too
    assert "Tools made and verified: 1; rejected: 0." in text
    assert "| max_linear | 9 | yes |" in text and "| min_linear_xby | 3 |  |" in text
    assert "| all | tool | 3 | 3 | 100.0 | 100.0 | " in text and "| 2 | 3/3 |" in text
    assert (
        "not built by a tool: 1 (a chosen tool failed and the item fell back to direct: 1" in text
    )
    assert f"- max_linear {broken['id']}: workshop_model@v1 failed" in text
    assert (out / "report.md").read_text(encoding="utf-8") == text
