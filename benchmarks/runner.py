"""The batch runner: every item of a dataset through the agent, concurrently, resumable.

Items run as asyncio tasks, at most ``concurrency`` at a time, each under a wall-clock limit; the
agent's work (model calls, solvers) runs in threads. Each finished item is appended to
``DIR/results.jsonl`` as one line and flushed, so an interrupted run loses only the items in flight:
a rerun with the same ``--out`` reads the file (a truncated last line, left by a crash mid-write, is
cut off), skips every finished item, and appends the rest. ``DIR/config.json`` records the run:
dataset and version, mode, model, limits, git commit and package versions. One run at a time may
write to a folder: it holds an exclusive lock on ``DIR/.lock`` while it runs.

Modes: ``llm`` (the configured or given model spec; replies recorded to ``DIR/recording.jsonl``),
``replay`` (a recording, matched call by call on the messages: ``benchmarks.replay``) and ``oracle``
(the gold formal model instead of the model's output, where a dataset has one).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from agent.errors import ConfigError, FormalistError, InputError
from benchmarks import scoring
from benchmarks.datasets import REPO, Dataset, Item, load, reference_objective

MODES = ("llm", "replay", "oracle")
EXECUTORS = ("local", "ray")
RESULTS = "results.jsonl"
CONFIG = "config.json"
RECORDING = "recording.jsonl"
PACKAGES = (
    "formalist",
    "highspy",
    "pyomo",
    "unified-planning",
    "up-fast-downward",
    "up-symk",
    "pyperplan",
    "clingo",
    "pyvrp",
    "ortools",
    "langchain-core",
    "langchain-openai",
)
TIMING_KEYS = ("elapsed_s", "finished_at")
"""Fields of a results line that differ between two runs of the same answers."""


@dataclass(frozen=True, slots=True)
class RunSettings:
    """One run. ``item_timeout_s`` bounds an item's whole wall-clock time (all attempts);
    ``time_limit_s`` is the solver's limit per call."""

    dataset: str
    mode: str = "llm"
    model: str = ""
    limit: int | None = None
    concurrency: int = 4
    item_timeout_s: float = 300.0
    time_limit_s: float = 60.0
    max_attempts: int = 3
    data_dir: str = ""
    config: str = ""
    """The configuration file (``--config``; empty: the usual lookup, ``agent.config``)."""
    planner: str = ""
    """Planning items: the planner (one of the pddl kind's backends in ``agent.kinds``; empty: the
    configuration's)."""
    examples: str = "fixed"
    """Optimization items: the few-shot examples, ``fixed`` (the bundled ones), ``retrieved``
    (the nearest models of the example bank, never the item's own) or ``none``."""
    shots: int = 2
    """How many few-shot examples."""
    numbers: str = "inline"
    """Optimization items: how the model writes the request's single numbers, ``named`` (scalar
    parameters) or ``inline`` (in the expressions; ``formalizers.milp.formalizer.NUMBER_STYLES``)."""
    samples: int = 1
    """Formalizations sampled per item; above 1 the verified answers vote (``agent.voting``)."""
    grounding: str = "report"
    """``report`` the grounding check on each answer, also ``repair`` a model that fails it, or
    first ``amend`` it with the check's own edits (``agent.agent.GROUNDING_MODES``)."""
    sample: int | None = None
    """Run a fixed random sample of this many items (drawn with ``seed``, kept in dataset order)
    instead of all; ``limit`` then cuts the sample."""
    seed: int = 0
    """The seed of ``sample``."""
    executor: str = "local"
    """Where items run: ``local`` (threads of this process) or ``ray`` (one Ray task per item,
    ``benchmarks.ray_executor``); either may resume the other's run."""
    address: str = ""
    """``ray``: the cluster's address (empty: ``RAY_ADDRESS``, else a Ray started for the run)."""

    def __post_init__(self) -> None:
        from agent.voting import MAX_SAMPLES
        from formalizers.milp.formalizer import EXAMPLE_MODES, NUMBER_STYLES

        if self.examples not in EXAMPLE_MODES:
            raise InputError(
                f"--examples must be one of {', '.join(EXAMPLE_MODES)}, not {self.examples!r}"
            )
        if self.numbers not in NUMBER_STYLES:
            raise InputError(
                f"--numbers must be one of {', '.join(NUMBER_STYLES)}, not {self.numbers!r}"
            )
        if not 0 <= self.shots <= 8:
            raise InputError(f"--shots must be from 0 to 8, not {self.shots}")
        if self.sample is not None and self.sample < 1:
            raise InputError(f"--sample must be at least 1, not {self.sample}")
        from agent.agent import GROUNDING_MODES

        if self.grounding not in GROUNDING_MODES:
            raise InputError(
                f"--grounding must be one of {', '.join(GROUNDING_MODES)}, not {self.grounding!r}"
            )
        if not 1 <= self.samples <= MAX_SAMPLES:
            raise InputError(f"--samples must be from 1 to {MAX_SAMPLES}, not {self.samples}")
        if self.mode not in MODES:
            raise InputError(f"--mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        if self.concurrency < 1:
            raise InputError("--concurrency must be at least 1")
        if self.limit is not None and self.limit < 1:
            raise InputError(f"--limit must be at least 1, not {self.limit}")
        if self.max_attempts < 1:
            raise InputError(f"--max-attempts must be at least 1, not {self.max_attempts}")
        for flag, value in (
            ("--item-timeout", self.item_timeout_s),
            ("--time-limit", self.time_limit_s),
        ):
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise InputError(f"{flag} must be a positive number of seconds, not {value!r}")
        from agent.kinds import option_choices

        planners = option_choices()["planner"]
        if self.planner and self.planner not in planners:
            raise InputError(
                f"--planner must be one of {', '.join(planners)}, not {self.planner!r}"
            )
        if self.executor not in EXECUTORS:
            raise InputError(
                f"--executor must be one of {', '.join(EXECUTORS)}, not {self.executor!r}"
            )
        if self.address and self.executor != "ray":
            raise InputError("--address names a Ray cluster: it needs --executor ray")
        if self.mode == "replay" and not self.model:
            raise InputError("--mode replay needs --model FILE (a recording)")


# -- the results file ------------------------------------------------------------------------------
def read_config(path: Path) -> dict[str, Any]:
    """The ``config.json`` of a run folder (``{}`` when there is none); ``InputError`` naming the
    file when it is not readable JSON holding an object (with ``settings`` an object)."""
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror or e}") from e
    except UnicodeDecodeError as e:
        raise InputError(f"{path} is not UTF-8 text: not a run's {CONFIG}") from e
    except ValueError as e:
        raise InputError(f"{path} is not JSON ({e}): not a run's {CONFIG}") from e
    if not isinstance(data, dict) or not isinstance(data.get("settings", {}), dict):
        raise InputError(
            f"{path} is not a run's {CONFIG} (it holds no settings object); repair it, or choose "
            "another --out"
        )
    return data


def read_results(path: Path, repair: bool = False) -> list[dict[str, Any]]:
    """The finished items in ``path``. A last line that is not complete JSON (a crash mid-write)
    is ignored, and cut off the file when ``repair``; a bad line elsewhere is an error."""
    if not path.is_file():
        return []
    data = path.read_bytes()
    # Each line is written with its newline in one write: text after the last newline is a line
    # whose write did not finish, even when it happens to parse.
    complete, _, tail = data.rpartition(b"\n")
    if not data.endswith(b"\n") and b"\n" not in data:
        complete, tail = b"", data
    rows: list[dict[str, Any]] = []
    for n, raw in enumerate(complete.split(b"\n"), 1):
        if not raw.strip():
            continue
        try:
            row = json.loads(raw)
        except ValueError as e:
            raise InputError(f"{path}, line {n} is not JSON: {e}") from e
        if not isinstance(row, dict) or "id" not in row:
            raise InputError(f"{path}, line {n} is not a results line")
        rows.append(row)
    if repair and tail:
        with path.open("r+b") as f:
            f.truncate(len(data) - len(tail))
    return rows


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=10
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    commit = out.stdout.strip()
    return commit + ("+dirty" if commit and dirty.stdout.strip() else "")


def package_versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    out["python"] = sys.version.split()[0]
    return out


def run_config(settings: RunSettings, ds: Dataset, agent_config: Any) -> dict[str, Any]:
    from agent.kinds import KINDS

    return {
        "dataset": ds.name,
        "dataset_file": ds.path,
        "items": len(ds.items),
        "settings": asdict(settings),
        "model": "" if settings.mode == "oracle" else (settings.model or agent_config.model),
        "agent": {
            "max_attempts": agent_config.max_attempts,
            "time_limit": agent_config.time_limit,
            "backend": agent_config.backend,
            "planner": agent_config.planner,
            "local": agent_config.local,
        },
        "kinds": sorted(KINDS),
        "git_commit": git_commit(),
        "packages": package_versions(),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


# -- one item ---------------------------------------------------------------------------------------
class Unsupported(Exception):
    """The pipeline cannot take this item in this mode (the message says why)."""


def oracle_request(item: Item) -> Any:
    """The request that solves ``item``'s gold formal model."""
    from agent.kinds import KINDS
    from agent.types import Request

    if item.kind == "pddl":
        return Request(item.gold["problem"], "problem.pddl", "pddl", extra=_planning_extra(item))
    if "model" in item.gold:  # a five-element model as JSON data (nl4opt-dev@integer)
        return Request(json.dumps(item.gold["model"]), "gold.json", "milp")
    if "nl4opt" in item.gold:
        from benchmarks.nl4opt import Item as NlItem
        from benchmarks.nl4opt import convert

        model = convert(NlItem(item.id, item.text, item.gold["nl4opt"]))
        return Request(model.model_dump_json(exclude_none=True), "gold.json", "milp")
    if item.kind == "routing":
        if "routing" not in KINDS:
            raise Unsupported(
                "the routing kind is not registered in agent.kinds: routing items cannot be solved"
            )
        if "file" in item.gold:  # Solomon / VRPLIB: the instance file is the formal model
            return Request(item.text, item.gold["file"], "routing")
        from benchmarks.words2routes import NotConvertible, to_spec_text

        try:
            spec, _ = to_spec_text(item.id, item.text)
        except NotConvertible as e:
            raise Unsupported(str(e)) from e
        return Request(spec, "spec.json", "routing")
    if "gt_model" in item.gold:
        from benchmarks.complexor import FIXTURES, reference_model_file

        ref = reference_model_file(item.id)
        if ref is None:
            raise Unsupported(
                f"no hand-written five-element model for ComplexOR item {item.id!r} "
                f"(expected {FIXTURES / (item.id + '.json')}); its gt_model is LaTeX-like text"
            )
        return Request(ref.read_text(encoding="utf-8"), "gold.json", "milp")
    raise Unsupported("this dataset has no gold formal model")


def _planning_extra(item: Item) -> dict[str, Any]:
    # A library domain by its key: the prompt then carries its description and worked example.
    return {"domain": item.gold.get("library_domain") or item.gold["domain"]}


def llm_request(item: Item, settings: RunSettings | None = None) -> Any:
    """The request that asks the model to formalize ``item``: with ``settings``, its examples
    (never the item's own: its id is excluded from the bank) and its number of samples."""
    from agent.kinds import KINDS
    from agent.types import Request

    if item.kind not in KINDS:
        raise Unsupported(f"the {item.kind} kind is not registered in agent.kinds")
    extra = _planning_extra(item) if item.kind == "pddl" else {}
    if settings is not None:
        if item.kind == "milp":
            extra.update(
                examples=settings.examples,
                shots=settings.shots,
                exclude_ids=[item.id],
                numbers=settings.numbers,
            )
        if settings.samples > 1:
            extra["samples"] = settings.samples
        extra["grounding"] = settings.grounding
    return Request(item.text, "", item.kind, extra=extra)


def plan_valid_for_gold(item: Item, plan: list[str] | None) -> bool:
    """Whether ``plan`` reaches the goal of the gold problem (by simulation against the gold
    domain and problem; the model's own problem file may differ from the gold one)."""
    if plan is None:
        return False
    from formalizers.pddl.model import read_domain, read_problem
    from formalizers.pddl.simulate import check_plan

    try:
        dom = read_domain(item.gold["domain"])
        prob = read_problem(item.gold["problem"], dom)
        return check_plan(dom, prob, plan).ok
    except FormalistError:
        return False


def solve_item(
    agent: Any, item: Item, mode: str, settings: RunSettings | None = None
) -> dict[str, Any]:
    """Solve and score one item (blocking: runs in a worker thread)."""
    row: dict[str, Any] = {"id": item.id, "kind": item.kind}
    expect, gold, note = reference_objective(item)
    row["expect"], row["gold"] = expect, gold
    if note:
        row["label_note"] = note
    try:
        request = oracle_request(item) if mode == "oracle" else llm_request(item, settings)
        answer = agent.solve(request)
    except Unsupported as e:
        row.update(status="UNSUPPORTED", error=str(e), attempts=0, verified=False)
        row["objective"] = None
    except FormalistError as e:
        row.update(status="ERROR", error=f"{type(e).__name__}: {e}", attempts=0, verified=False)
        row["objective"] = None
    except Exception as e:  # a defect of ours on one item must not end the batch
        row.update(
            status="ERROR", error=f"crash: {type(e).__name__}: {e}", attempts=0, verified=False
        )
        row["objective"] = None
    else:
        from agent.agent import AMENDED_BY

        # The outcome that classifies a failed item is its model's: an amend tried after it and
        # refused (its own outcome "grounding") would read as a solver error.
        last = next(
            (a for a in reversed(answer.trace) if a.model_id != AMENDED_BY or a.outcome == "ok"),
            None,
        )
        outcome = last.outcome if last else ""
        if answer.vote is not None and answer.vote.get("answer_sample"):
            # A voted answer's outcome is its sample's, not the last sample drawn.
            outcome = answer.vote["samples"][answer.vote["answer_sample"] - 1]["outcome"]
        row.update(
            status=answer.status.value,
            objective=answer.objective,
            verified=answer.verified,
            attempts=answer.attempts,
            outcome=outcome,
            error=answer.error,
        )
        if answer.vote is not None:
            row["vote"] = answer.vote
        if getattr(answer, "tool", ""):
            row["tool"] = answer.tool  # the cached tool that built the artifact (agent.tools_flow)
        if answer.grounding is not None:
            row["grounded"] = answer.grounding["ok"]
        if answer.plan is not None:
            row["plan_length"] = len(answer.plan)
        if item.expect == "plan":
            row["plan_valid"] = (
                answer.verified if mode == "oracle" else plan_valid_for_gold(item, answer.plan)
            )
    finish(row)
    return row


def unanswered_row(item: Item, status: str, error: str) -> dict[str, Any]:
    """The scored row of an item that gave no answer: ``TIMEOUT`` (its limit passed) or
    ``ERROR`` (``error`` says why)."""
    row = {
        "id": item.id,
        "kind": item.kind,
        "expect": item.expect if item.expect != "gold-model" else "value",
        "gold": item.answer,
        "status": status,
        "objective": None,
        "verified": False,
        "attempts": None,
        "error": error,
        "timed_out": status == "TIMEOUT",
    }
    finish(row)
    return row


def finish(row: dict[str, Any]) -> None:
    """Add the scores and the error class to a results line."""
    row["scores"] = scoring.score(
        row["expect"],
        row.get("gold"),
        row.get("status", ""),
        row.get("objective"),
        bool(row.get("verified")),
        bool(row.get("plan_valid")),
    )
    if row["expect"] == "route":
        row["efficiency"] = scoring.efficiency(
            row["expect"], row.get("gold"), row.get("objective"), bool(row["scores"]["feasible"])
        )
    row["error_class"] = scoring.error_class(row)
    if row.get("vote"):
        # Each sample scored alone: their mean is pass@1 at the sampling temperature, and any
        # right one is pass@k, beside the vote's own score (``scores``).
        row["sample_scores"] = [
            scoring.score(
                row["expect"],
                row.get("gold"),
                s.get("status", ""),
                s.get("objective"),
                bool(s.get("verified")),
            )
            for s in row["vote"].get("samples", [])
        ]


# -- the run ----------------------------------------------------------------------------------------
class Progress:
    """done/total, running accuracy and time left on one terminal line (stderr); silent when
    stderr is not a terminal."""

    def __init__(self, total: int, done: int, enabled: bool | None = None) -> None:
        self.total, self.done, self.start_done = total, done, done
        self.correct = 0
        self.scored = 0
        self.t0 = time.monotonic()
        self.enabled = sys.stderr.isatty() if enabled is None else enabled

    def update(self, row: dict[str, Any]) -> None:
        self.done += 1
        first = next(iter(row["scores"].values()), None)
        if first is not None:
            self.scored += 1
            self.correct += bool(first)
        if not self.enabled:
            return
        rate = (time.monotonic() - self.t0) / max(1, self.done - self.start_done)
        left = rate * (self.total - self.done)
        acc = f"{100 * self.correct / self.scored:.1f}%" if self.scored else "-"
        width = 30
        filled = int(width * self.done / max(1, self.total))
        print(
            f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total}  "
            f"accuracy {acc}  left {left:.0f}s ",
            end="",
            file=sys.stderr,
            flush=True,
        )

    def close(self) -> None:
        if self.enabled:
            print(file=sys.stderr)


def build_agent(
    settings: RunSettings, out: Path, chat_model: Any = None, config: Any = None
) -> Any:
    """The agent of a run: the model by spec (llm: replies recorded to ``out/recording.jsonl``),
    the recording matched on messages (replay), or none (oracle). ``config``: the agent
    configuration to start from (default: ``settings.config`` or the usual lookup; a Ray worker
    gets the driver's)."""
    from agent.agent import Agent
    from agent.config import load_config
    from agent.llm.client import ChatClient

    cfg = (config or load_config(settings.config or None)).with_overrides(
        max_attempts=settings.max_attempts, time_limit=settings.time_limit_s
    )
    if settings.planner:
        cfg = cfg.with_overrides(planner=settings.planner)
    if settings.mode == "oracle":
        return Agent(config=cfg.with_overrides(model="", cache=""))
    if settings.mode == "replay" or chat_model is not None:
        from benchmarks.replay import KeyedReplayChatModel

        chat = chat_model or KeyedReplayChatModel.from_file(settings.model)
        name = settings.model or "replay"
        client = ChatClient(f"replay:{name}", chat, None, None, {"temperature": 0.0})
        return Agent(client, config=cfg.with_overrides(cache=""))
    model = settings.model or cfg.model
    if not model:
        from agent.config import HOW_TO_CONFIGURE

        raise ConfigError(HOW_TO_CONFIGURE)
    if model.startswith("local:") and "time_budget_s" not in cfg.local:
        # A reply may not outlast its item: the engine serves one call at a time, and a call
        # left running after its item timed out would hold up the items after it.
        cfg = cfg.with_overrides(local={**cfg.local, "time_budget_s": settings.item_timeout_s})
    agent = Agent(model, config=cfg.with_overrides(record=str(out / RECORDING)))
    _ = agent.client  # built here, once, not by racing worker threads
    return agent


LOCK = ".lock"
"""The lock file of a run folder: one run at a time may write to it."""


def _lock_folder(out: Path) -> Any:
    """Hold an exclusive lock on ``out/.lock`` (returns the open file: the lock lasts until it is
    closed); ``InputError`` when another run holds it."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        return None
    try:
        f = (out / LOCK).open("a")
    except OSError as e:
        raise InputError(f"cannot write in {out}: {e.strerror or e}") from e
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        f.close()
        raise InputError(
            f"another `formalist bench` run is writing to {out}: wait for it to end, or choose "
            "another --out"
        ) from e
    return f


async def run_async(
    settings: RunSettings,
    out: str | Path,
    agent: Any = None,
    progress: bool | None = None,
    on_row: Callable[[dict[str, Any]], None] | None = None,
    start_wait_s: float | None = None,
) -> dict[str, Any]:
    """Run (or resume) ``settings`` into folder ``out``; return a summary. ``agent`` replaces the
    one ``build_agent`` makes (tests and the throughput script pass their own).

    One run at a time holds a folder (``out/.lock``); a second one is an ``InputError``. An item's
    time limit counts from when a worker thread starts it, not while it waits for one (threads of
    items that timed out keep running until the solver's own limit ends them). An item that got
    no thread within ``start_wait_s`` (default: twice the item limit, at least a minute) is not
    run and not written: a resume runs it.
    """
    out = Path(out)
    ds = load(settings.dataset, settings.data_dir or None)
    items = sample_items(ds.items, settings.sample, settings.seed)
    items = items[: settings.limit] if settings.limit is not None else items
    try:
        if out.exists() and not out.is_dir():
            raise InputError(f"--out {out} is a file, not a folder")
        created = [d for d in (out, *out.parents) if not d.exists()]  # deepest first
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"cannot make the run folder {out}: {e.strerror or e}") from e
    lock = _lock_folder(out)
    try:
        return await _run_locked(settings, out, ds, items, agent, progress, on_row, start_wait_s)
    except BaseException:
        if created:
            _remove_if_unused(created)
        raise
    finally:
        if lock is not None:
            lock.close()


def sample_items(items: list[Item], n: int | None, seed: int) -> list[Item]:
    """``n`` of ``items`` drawn at random with ``seed`` (the same ones on every machine and
    Python version: ``random.Random(seed).sample``), in their dataset order; all when ``n`` is
    None or not below their number."""
    if n is None or n >= len(items):
        return list(items)
    import random

    chosen = set(random.Random(seed).sample(range(len(items)), n))
    return [it for i, it in enumerate(items) if i in chosen]


def _remove_if_unused(created: list[Path]) -> None:
    """Remove the run folder (and the folders above it) this run made, when nothing but its lock
    file is in it: a run that failed before it began leaves no empty folder behind."""
    out = created[0]
    try:
        if {p.name for p in out.iterdir()} <= {LOCK}:
            (out / LOCK).unlink(missing_ok=True)
            for d in created:
                d.rmdir()  # only while empty: anything put there since stays
    except OSError:
        pass


async def _run_locked(
    settings: RunSettings,
    out: Path,
    ds: Dataset,
    items: list[Item],
    agent: Any,
    progress: bool | None,
    on_row: Callable[[dict[str, Any]], None] | None,
    start_wait_s: float | None,
) -> dict[str, Any]:
    results = out / RESULTS
    cfg_path = out / CONFIG
    previous = read_config(cfg_path)
    if previous:
        was = previous.get("settings", {})
        defaults = {"planner": "", "examples": "fixed", "shots": 2, "samples": 1}
        defaults.update(grounding="report", sample=None, seed=0, numbers="named")
        keys = ("dataset", "mode", "model", "planner", "examples", "shots", "numbers")
        for key in (*keys, "samples", "grounding", "sample", "seed"):
            before = was.get(key, defaults.get(key))
            if before != getattr(settings, key):
                raise InputError(
                    f"{out} holds a run with {key}={before!r}, not {getattr(settings, key)!r}: "
                    "resume it with the same settings or choose another --out"
                )
    if agent is not None and settings.executor == "ray":
        raise ValueError("with --executor ray each worker builds its agent from the settings")
    done_rows = read_results(results, repair=True)
    done = {r["id"] for r in done_rows}
    todo = [it for it in items if it.id not in done]
    agent = agent or build_agent(settings, out)
    if not previous or not done_rows:
        cfg = run_config(settings, ds, agent.config)
    else:
        cfg = previous
        resumed = cfg.get("resumed_at")
        cfg["resumed_at"] = [*(resumed if isinstance(resumed, list) else []), _now()]
    cfg_path.write_text(json.dumps(cfg, indent=2) + "\n", encoding="utf-8")

    bar = Progress(len(items), len(items) - len(todo), progress)
    write_lock = threading.Lock()
    sem = asyncio.Semaphore(settings.concurrency)
    loop = asyncio.get_running_loop()
    # Threads of items that timed out keep running until the solver's own limit ends them: room
    # for them beside the ``concurrency`` working ones.
    pool = ThreadPoolExecutor(max_workers=settings.concurrency * 2, thread_name_prefix="bench")
    wait_for_thread = (
        start_wait_s if start_wait_s is not None else max(60.0, 2 * settings.item_timeout_s)
    )
    not_started: list[str] = []

    def append(row: dict[str, Any]) -> None:
        line = json.dumps(row, default=str, allow_nan=False, ensure_ascii=False)
        with write_lock, results.open("a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())

    def work(item: Item, started: asyncio.Event, began: list[float]) -> dict[str, Any]:
        began.append(time.perf_counter())
        loop.call_soon_threadsafe(started.set)
        return solve_item(agent, item, settings.mode, settings)

    async def one(item: Item) -> None:
        async with sem:
            started = asyncio.Event()
            began: list[float] = []
            fut = loop.run_in_executor(pool, work, item, started, began)
            try:
                # The item's clock starts when a thread takes it, not while it waits for one.
                await asyncio.wait_for(started.wait(), wait_for_thread)
            except TimeoutError:
                if not began:
                    # Never run: not written, so a resume runs it. (Should a thread take it this
                    # very moment, its answer is dropped the same way.)
                    fut.cancel()
                    not_started.append(item.id)
                    return
            t0 = began[0] if began else time.perf_counter()
            left = settings.item_timeout_s - (time.perf_counter() - t0)
            try:
                row = await asyncio.wait_for(fut, max(0.0, left))
                row["timed_out"] = False
            except TimeoutError:
                row = unanswered_row(
                    item, "TIMEOUT", f"no answer within {settings.item_timeout_s:g} s"
                )
            row["elapsed_s"] = round(time.perf_counter() - t0, 3)
            await record(row)

    async def record(row: dict[str, Any]) -> None:
        # The one writer of the results file, whichever executor ran the item.
        row["finished_at"] = _now()
        await loop.run_in_executor(None, append, row)
        bar.update(row)
        if on_row is not None:
            on_row(row)

    t0 = time.perf_counter()
    extra: dict[str, Any] = {}
    try:
        if settings.executor == "ray":
            from benchmarks.ray_executor import run_items

            extra = await run_items(settings, todo, agent.config, out, record)
        else:
            await asyncio.gather(*(one(it) for it in todo))
    finally:
        bar.close()
        pool.shutdown(wait=False, cancel_futures=True)
    rows = read_results(results)
    summary = {
        "dataset": ds.name,
        "items": len(items),
        "ran": len(todo) - len(not_started),
        "skipped": len(items) - len(todo),
        "finished": len(rows),
        "wall_s": round(time.perf_counter() - t0, 3),
        **extra,
    }
    if not_started:
        summary["not_started"] = len(not_started)
        print(
            f"formalist bench: {len(not_started)} item(s) got no worker within "
            f"{wait_for_thread:g} s (threads of timed-out items still running) and were not run; "
            "run again with the same --out to run them",
            file=sys.stderr,
        )
    return summary


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def run(settings: RunSettings, out: str | Path, **kw: Any) -> dict[str, Any]:
    """``run_async`` from synchronous code."""
    return asyncio.run(run_async(settings, out, **kw))
