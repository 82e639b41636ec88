"""LATM with scripted models: the six tasks of the paper, each with a small generator of worked
examples, a reference tool (what the scripted strong model "writes"), and the calls a model would
read from each question.

For each task: the maker makes a tool from 3 worked examples, the sandbox verifies it on 3
held-out questions, the cache stores it, and a second question of the same kind is answered with
the cached tool through the dispatcher and the user model, without a call to the maker (counted).
Also: a tool that fails its tests twice and is fixed from the feedback, the dispatcher's
pre-filter, and versioning in the cache.
"""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conftest import scripted
from tool_maker.cache import ToolCache, ToolRejected
from tool_maker.dispatcher import Dispatcher, rank
from tool_maker.layers import SandboxUnavailable
from tool_maker.maker import TaskSpec, ToolMaker, ToolNotMade, parse_reply
from tool_maker.sandbox import Sandbox, SandboxLimits, SandboxPolicy
from tool_maker.tool import Example, Tool, ToolCall, same_answer
from tool_maker.toolbox import NoToolFits, Toolbox


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    sb = Sandbox(SandboxPolicy(limits=SandboxLimits(wall_s=5.0, cpu_s=2)))
    try:
        sb.check_ready()
    except SandboxUnavailable as e:
        pytest.skip(f"the sandbox cannot run on this machine: {e}")
    return sb


@dataclass(frozen=True)
class Instance:
    """One generated question: its text, the arguments a model would read from it, its answer."""

    question: str
    args: list[Any]
    answer: Any


@dataclass(frozen=True)
class LatmTask:
    name: str
    description: str
    function: str
    code: str  # the reference tool, as the scripted strong model writes it
    generate: Callable[[random.Random], Instance]

    def instances(self, n: int, seed: int = 7) -> list[Instance]:
        rng = random.Random(f"{self.name}-{seed}")
        return [self.generate(rng) for _ in range(n)]


# -- 1. logical deduction ----------------------------------------------------------------------

ORDINALS = ["first", "second", "third", "fourth", "fifth"]
BOOKS = ["red", "blue", "green", "white", "black", "orange", "purple"]


def _orders(objects: list[str], clues: list[list[Any]]) -> list[tuple[str, ...]]:
    out = []
    for perm in itertools.permutations(objects):
        pos = {o: i + 1 for i, o in enumerate(perm)}
        if all(
            (pos[c[1]] < pos[c[2]])
            if c[0] == "left_of"
            else pos[c[1]] == (c[2] if c[2] > 0 else len(perm) + 1 + c[2])
            for c in clues
        ):
            out.append(perm)
    return out


def gen_logical_deduction(rng: random.Random) -> Instance:
    n = rng.choice([3, 4, 5])
    objects = rng.sample(BOOKS, n)
    truth = objects[:]
    rng.shuffle(truth)
    pos = {o: i + 1 for i, o in enumerate(truth)}
    clues: list[list[Any]] = []
    texts: list[str] = []
    while len(_orders(objects, clues)) > 1:
        if rng.random() < 0.6:
            a, b = rng.sample(objects, 2)
            if pos[a] > pos[b]:
                a, b = b, a
            clue, text = ["left_of", a, b], f"The {a} book is to the left of the {b} book."
        else:
            a = rng.choice(objects)
            if rng.random() < 0.5:
                clue, text = (
                    ["at", a, pos[a]],
                    f"The {a} book is the {ORDINALS[pos[a] - 1]} from the left.",
                )
            else:
                k = n + 1 - pos[a]
                clue, text = ["at", a, -k], f"The {a} book is the {ORDINALS[k - 1]} from the right."
        if clue not in clues:
            clues.append(clue)
            texts.append(text)
    k = rng.randint(1, n)
    listing = ", ".join(f"a {o} book" for o in objects)
    question = (
        f"On a shelf, there are {n} books: {listing}. {' '.join(texts)} "
        f"Which book is the {ORDINALS[k - 1]} from the left?"
    )
    return Instance(question, [objects, clues, k], truth[k - 1])


LOGICAL_DEDUCTION = '''
from itertools import permutations


def order_objects(objects: list, clues: list, position: int) -> str:
    """The object at 1-based ``position`` from the left in the only order that satisfies every clue.

    A clue is ["left_of", a, b] (a is somewhere left of b) or ["at", a, k] (a is k-th from the
    left; a negative k counts from the right).
    """
    n = len(objects)
    for perm in permutations(objects):
        pos = {o: i + 1 for i, o in enumerate(perm)}
        ok = True
        for kind, a, b in clues:
            if kind == "left_of" and not pos[a] < pos[b]:
                ok = False
            elif kind == "at" and pos[a] != (b if b > 0 else n + 1 + b):
                ok = False
        if ok:
            return perm[position - 1]
    raise ValueError("no order satisfies the clues")
'''

# -- 2. tracking shuffled objects --------------------------------------------------------------

PEOPLE = ["Alice", "Bob", "Claire", "Dave", "Eve"]
BALLS = ["red", "blue", "green", "yellow", "pink"]


def gen_tracking(rng: random.Random) -> Instance:
    n = rng.choice([3, 5])
    people, balls = PEOPLE[:n], rng.sample(BALLS, n)
    holding = dict(zip(people, balls, strict=True))
    swaps = [rng.sample(people, 2) for _ in range(n)]
    start = ", ".join(f"{p} has a {b} ball" for p, b in holding.items())
    steps = []
    now = dict(holding)
    for i, (a, b) in enumerate(swaps):
        now[a], now[b] = now[b], now[a]
        steps.append(f"{'First' if i == 0 else 'Then'}, {a} and {b} swap balls.")
    who = rng.choice(people)
    question = (
        f"{', '.join(people[:-1])} and {people[-1]} are playing a game. At the start, {start}. "
        f"As the game goes on, pairs of players trade balls. {' '.join(steps)} "
        f"At the end of the game, which ball does {who} have?"
    )
    return Instance(question, [holding, swaps, who], now[who])


TRACKING = '''
def track_swaps(start: dict, swaps: list, person: str) -> str:
    """What ``person`` holds after the pairs in ``swaps`` trade, in order, from ``start``
    (person -> item)."""
    holding = dict(start)
    for a, b in swaps:
        holding[a], holding[b] = holding[b], holding[a]
    return holding[person]
'''

# -- 3. Dyck languages ------------------------------------------------------------------------

PAIRS = {"(": ")", "[": "]", "{": "}", "<": ">"}


def gen_dyck(rng: random.Random) -> Instance:
    tokens: list[str] = []
    stack: list[str] = []
    for _ in range(rng.randint(6, 14)):
        if stack and rng.random() < 0.4:
            tokens.append(PAIRS[stack.pop()])
        else:
            o = rng.choice(list(PAIRS))
            tokens.append(o)
            stack.append(o)
    if not stack:
        o = rng.choice(list(PAIRS))
        tokens.append(o)
        stack.append(o)
    seq = " ".join(tokens)
    answer = " ".join(PAIRS[o] for o in reversed(stack))
    question = (
        "Complete the rest of the sequence, making sure that the parentheses are closed properly. "
        f"Input: {seq}"
    )
    return Instance(question, [seq], answer)


DYCK = '''
def close_brackets(sequence: str) -> str:
    """The closing brackets, space-separated, that complete ``sequence`` (tokens separated by
    spaces) into a properly nested one."""
    pairs = {"(": ")", "[": "]", "{": "}", "<": ">"}
    stack = []
    for tok in sequence.split():
        if tok in pairs:
            stack.append(tok)
        elif stack and pairs[stack[-1]] == tok:
            stack.pop()
        else:
            raise ValueError("unbalanced at " + tok)
    return " ".join(pairs[t] for t in reversed(stack))
'''

# -- 4. word sorting ---------------------------------------------------------------------------

WORDS = (
    "syntax planner solver matrix vector gradient lattice domain predicate action effect "
    "precondition heuristic frontier horizon kernel bracket ladder harbor velvet quartz ember "
    "meadow tundra canyon glacier prairie orbit comet nebula"
).split()


def gen_word_sorting(rng: random.Random) -> Instance:
    words = rng.sample(WORDS, rng.randint(5, 12))
    question = f"Sort the following words alphabetically: List: {' '.join(words)}"
    return Instance(question, [words], " ".join(sorted(words)))


WORD_SORTING = '''
def sort_words(words: list) -> str:
    """The words in alphabetical order, joined by single spaces."""
    return " ".join(sorted(words))
'''

# -- 5. Chinese remainder theorem --------------------------------------------------------------


def gen_crt(rng: random.Random) -> Instance:
    moduli = rng.choice([[3, 5, 7], [4, 5, 9], [5, 7, 11], [3, 4, 5, 7], [7, 9, 10]])
    total = 1
    for m in moduli:
        total *= m
    n = rng.randrange(1, total)
    rems = [n % m for m in moduli]
    said = "; ".join(
        f"counted in groups of {m}, {r} are left over" for m, r in zip(moduli, rems, strict=True)
    )
    question = f"There is a basket of fewer than {total} eggs. When they are {said}. How many eggs are in the basket?"
    return Instance(question, [rems, moduli], n)


CRT = '''
from math import gcd


def chinese_remainder(remainders: list, moduli: list) -> int:
    """The smallest non-negative n with n % moduli[i] == remainders[i] for every i (moduli
    pairwise coprime)."""
    n, step = 0, 1
    for r, m in zip(remainders, moduli):
        if gcd(step, m) != 1:
            raise ValueError("the moduli must be pairwise coprime")
        while n % m != r % m:
            n += step
        step *= m
    return n
'''

# -- 6. meeting scheduling ---------------------------------------------------------------------


def _hm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def gen_meeting(rng: random.Random) -> Instance:
    people = rng.sample(["Ann", "Ben", "Cho", "Dev"], rng.choice([2, 3]))
    duration = rng.choice([30, 60])
    busy: dict[str, list[list[str]]] = {}
    for p in people:
        slots = sorted(rng.sample(range(9 * 60, 17 * 60, 30), rng.randint(2, 5)))
        busy[p] = [[_hm(s), _hm(s + 30 * rng.randint(1, 2))] for s in slots]
    free_at = None
    for start in range(9 * 60, 17 * 60 - duration + 1, 15):
        end = start + duration
        if all(
            end <= int(a[:2]) * 60 + int(a[3:]) or start >= int(b[:2]) * 60 + int(b[3:])
            for p in people
            for a, b in busy[p]
        ):
            free_at = start
            break
    answer = f"{_hm(free_at)}-{_hm(free_at + duration)}" if free_at is not None else "none"
    said = " ".join(f"{p} is busy {', '.join(f'{a}-{b}' for a, b in busy[p])}." for p in people)
    question = (
        f"{', '.join(people)} want to meet for {duration} minutes between 09:00 and 17:00, "
        f"starting on a quarter hour. {said} What is the earliest slot that suits everyone?"
    )
    return Instance(question, [list(busy.values()), duration, "09:00", "17:00"], answer)


MEETING = '''
def earliest_meeting(busy: list, duration: int, day_start: str, day_end: str) -> str:
    """The earliest "HH:MM-HH:MM" slot of ``duration`` minutes, starting on a quarter hour between
    ``day_start`` and ``day_end``, that overlaps no one's busy intervals (one list of
    ["HH:MM", "HH:MM"] pairs per person); "none" if there is none."""

    def minutes(t):
        h, m = t.split(":")
        return int(h) * 60 + int(m)

    def hm(x):
        return "%02d:%02d" % (x // 60, x % 60)

    first, last = minutes(day_start), minutes(day_end)
    for start in range(first, last - duration + 1, 15):
        end = start + duration
        if all(end <= minutes(a) or start >= minutes(b) for person in busy for a, b in person):
            return hm(start) + "-" + hm(end)
    return "none"
'''

TASKS = [
    LatmTask(
        "logical deduction",
        "Order objects on a shelf from clues and say which is at a position.",
        "order_objects",
        LOGICAL_DEDUCTION,
        gen_logical_deduction,
    ),
    LatmTask(
        "tracking shuffled objects",
        "Players swap balls in turn; say which ball a player ends with.",
        "track_swaps",
        TRACKING,
        gen_tracking,
    ),
    LatmTask(
        "dyck languages",
        "Close the open brackets of a sequence in the right order.",
        "close_brackets",
        DYCK,
        gen_dyck,
    ),
    LatmTask(
        "word sorting",
        "Sort a list of words alphabetically.",
        "sort_words",
        WORD_SORTING,
        gen_word_sorting,
    ),
    LatmTask(
        "chinese remainder theorem",
        "Find a count of eggs from the remainders when grouped.",
        "chinese_remainder",
        CRT,
        gen_crt,
    ),
    LatmTask(
        "schedule meeting",
        "Find the earliest meeting slot that fits everyone's busy calendar.",
        "earliest_meeting",
        MEETING,
        gen_meeting,
    ),
]


def maker_reply(code: str, function: str, calls: list[Instance]) -> str:
    meta = {"function": function, "calls": [{"args": c.args} for c in calls]}
    return (
        f"Here is the tool.\n\n```python\n{code.strip()}\n```\n\n```json\n{json.dumps(meta)}\n```\n"
    )


def call_reply(inst: Instance) -> str:
    return json.dumps({"args": inst.args, "kwargs": {}})


def task_spec(task: LatmTask, insts: list[Instance]) -> TaskSpec:
    return TaskSpec(
        task.name,
        task.description,
        tuple(Example(i.question, i.answer) for i in insts[:3]),
        tuple(Example(i.question, i.answer) for i in insts[3:6]),
    )


@pytest.mark.parametrize("task", TASKS, ids=[t.name for t in TASKS])
def test_generators_are_self_consistent(task: LatmTask) -> None:
    """The reference tool, run here as plain Python on trusted test code, gives every answer."""
    ns: dict[str, Any] = {}
    exec(compile(task.code, task.name, "exec"), ns)  # noqa: S102 - our own reference code
    for inst in task.instances(20):
        assert same_answer(ns[task.function](*inst.args), inst.answer), inst.question


@pytest.mark.parametrize("task", TASKS, ids=[t.name for t in TASKS])
def test_latm_make_verify_cache_reuse(task: LatmTask, sandbox: Sandbox, tmp_path: Path) -> None:
    insts = task.instances(8)
    shown_and_tests, first, second = insts[:6], insts[6], insts[7]
    maker = scripted(maker_reply(task.code, task.function, shown_and_tests))
    user = scripted(call_reply(first), call_reply(second))
    dispatcher = scripted(f"The right tool is {task.function}.")
    cache = ToolCache(tmp_path / "tools.sqlite")
    box = Toolbox(cache, sandbox, maker, user, dispatcher=dispatcher)

    made = box.solve(first.question, task_spec(task, insts))
    assert made.made and made.answer.ok, made.answer.result.describe()
    assert same_answer(made.answer.value, first.answer)
    tool = made.tool
    assert tool.name == task.function and tool.version == 1
    assert (
        tool.evidence["held_out_tests_passed"] == 3 and tool.evidence["worked_examples_passed"] == 3
    )
    assert "seccomp" in tool.evidence["sandbox_layers"]
    assert [t.question for t in tool.tests] == [i.question for i in insts[3:6]]
    assert maker.calls == 1 and dispatcher.calls == 0  # an empty cache has no candidates
    # Held-out answers never reach the maker.
    prompt = json.dumps(maker.chat_model.calls[0])
    for held_out in insts[3:6]:
        assert held_out.question[:60] in prompt
    assert cache.get(task.function) == tool

    # A second request of the same kind, with no examples: the dispatcher finds the cached tool.
    again = box.solve(second.question)
    assert not again.made and again.tool.name == task.function
    assert again.answer.ok and same_answer(again.answer.value, second.answer)
    assert maker.calls == 1, "the maker was called for a request its cached tool answers"
    assert dispatcher.calls == 1 and user.calls == 2


def test_dispatcher_prefilter_keeps_the_prompt_small(sandbox: Sandbox) -> None:
    tools = []
    for task in TASKS:
        insts = task.instances(8)
        calls = tuple(ToolCall(i.question, i.args, {}, i.answer) for i in insts[:3])
        tools.append(
            Tool(
                task.function,
                task.function,
                task.name,
                task.description,
                f"{task.function}(...)",
                task.code,
                calls,
                (),
                "scripted",
            )
        )
    for task in TASKS:
        question = task.instances(9)[8].question
        ranked = rank(question, tools)
        assert ranked[0].tool.function == task.function, [
            (c.tool.name, round(c.score, 3)) for c in ranked
        ]
        d = Dispatcher(None, top_k=2)
        cands = d.candidates(question, tools)
        assert len(cands) <= 2 and cands[0].tool.function == task.function
        assert task.function in d.prompt(question, cands)
    assert Dispatcher(None).candidates("What is the capital of France?", tools) == []


def test_dispatcher_unknown_means_a_new_tool(sandbox: Sandbox, tmp_path: Path) -> None:
    words, crt = TASKS[3], TASKS[4]
    cache = ToolCache(tmp_path / "tools.sqlite")
    w = words.instances(8)
    box = Toolbox(
        cache,
        sandbox,
        scripted(maker_reply(words.code, words.function, w[:6])),
        scripted(call_reply(w[6])),
    )
    box.solve(w[6].question, task_spec(words, w))
    c = crt.instances(8)
    maker = scripted(maker_reply(crt.code, crt.function, c[:6]))
    dispatcher = scripted("unknown")
    box = Toolbox(cache, sandbox, maker, scripted(call_reply(c[6])), dispatcher=dispatcher)
    # "sort" and "groups of" share nothing: the pre-filter alone may already rule the tool out.
    solved = box.solve(c[6].question + " Sort it out.", task_spec(crt, c))
    assert solved.made and solved.answer.value == c[6].answer and maker.calls == 1
    assert sorted(t.name for t in cache.latest()) == ["chinese_remainder", "sort_words"]
    with pytest.raises(NoToolFits):
        Toolbox(cache, sandbox, None, scripted("{}"), dispatcher=scripted("unknown")).solve(
            "Sort these words: b a"
        )


WORDS_BUGGY = '''
def sort_words(words: list) -> str:
    """The words in alphabetical order, joined by single spaces."""
    return " ".join(sorted(words, reverse=True))
'''
WORDS_CRASHING = '''
def sort_words(words: list) -> str:
    """The words in alphabetical order, joined by single spaces."""
    return " ".join(words.sort())
'''


def test_a_tool_that_fails_twice_is_fixed_from_the_feedback(sandbox: Sandbox) -> None:
    task = TASKS[3]
    insts = task.instances(6)
    maker = scripted(
        maker_reply(WORDS_BUGGY, "sort_words", insts),
        maker_reply(WORDS_CRASHING, "sort_words", insts),
        maker_reply(task.code, "sort_words", insts),
    )
    m = ToolMaker(maker, sandbox, max_attempts=3)
    tool = m.make(task_spec(task, insts))
    assert maker.calls == 3 and tool.evidence["attempts"] == 3
    calls = maker.chat_model.calls
    # The second attempt was told what the first returned and what was expected.
    second = calls[1][-1]["content"]
    assert (
        "returned" in second
        and json.dumps(insts[0].answer) in second
        and "Q1 (worked example)" in second
    )
    assert "Q4 (held-out question)" in second
    # The third was told the second raised, where, and why.
    third = calls[2][-1]["content"]
    assert "raised TypeError at line 3: can only join an iterable" in third
    assert [a.feedback != "" for a in m.attempts] == [True, True, False]
    assert tool.code.strip() == task.code.strip()


def test_the_maker_gives_up_after_its_attempts(sandbox: Sandbox) -> None:
    task = TASKS[3]
    insts = task.instances(6)
    maker = scripted(
        "I think the answer is to sort them.",
        maker_reply("import os\n" + task.code, "sort_words", insts),
    )
    m = ToolMaker(maker, sandbox, max_attempts=2)
    with pytest.raises(ToolNotMade) as e:
        m.make(task_spec(task, insts))
    assert "importing `os` is not allowed" in e.value.feedback()
    assert "no ```python block" in maker.chat_model.calls[1][-1]["content"]


def test_parse_reply_needs_both_blocks() -> None:
    code, meta = parse_reply(
        '```python\ndef f(x):\n    return x\n```\n```json\n{"calls": [[1]]}\n```'
    )
    assert "def f" in code and meta["calls"] == [[1]]


def test_a_new_version_must_pass_the_old_tests(sandbox: Sandbox, tmp_path: Path) -> None:
    task = TASKS[3]
    insts = task.instances(6)
    tool = ToolMaker(scripted(maker_reply(task.code, "sort_words", insts)), sandbox).make(
        task_spec(task, insts)
    )
    cache = ToolCache(tmp_path / "t.sqlite")
    assert cache.put(tool).version == 1
    broken = Tool.from_json({**tool.to_json(), "code": WORDS_BUGGY})
    with pytest.raises(ToolRejected, match="fails 6 test"):
        cache.put(broken, sandbox)
    better = Tool.from_json(
        {**tool.to_json(), "code": tool.code + "\n\ndef _unused():\n    return 0\n"}
    )
    assert cache.put(better, sandbox).version == 2
    assert cache.versions("sort_words") == [1, 2]
    assert cache.get("sort_words", 1) is not None and cache.get("sort_words").version == 2  # type: ignore[union-attr]
    # Stored as text: the record is JSON, readable without running anything.
    import sqlite3

    row = (
        sqlite3.connect(tmp_path / "t.sqlite")
        .execute("SELECT typeof(record), record FROM tools")
        .fetchone()
    )
    assert row[0] == "text" and json.loads(row[1])["name"] == "sort_words"
    assert cache.remove("sort_words") == 2 and cache.latest() == []


def test_a_task_without_held_out_questions_is_refused(sandbox: Sandbox) -> None:
    from agent.errors import InputError

    task = TASKS[3]
    insts = task.instances(3)
    spec = TaskSpec(
        task.name, task.description, tuple(Example(i.question, i.answer) for i in insts)
    )
    maker = scripted("never sent")
    with pytest.raises(InputError, match="held-out"):
        ToolMaker(maker, sandbox).make(spec)
    assert maker.calls == 0
