"""Benchmark items as Ray tasks: ``formalist bench DATASET --executor ray [--address ADDR]``.

The driver (the ``formalist bench`` process) does what it does for a local run: it reads the run
folder, skips finished items, and is the one writer of ``results.jsonl`` (and of
``recording.jsonl``), appending each row as its task returns. Only solving moves: each item is one
Ray task that builds its own agent from the driver's settings and configuration (shipped once
through the object store), solves and scores the item with ``runner.solve_item`` and returns the
row. So rows, scores, resume and the report are those of a local run.

- Time limits: an item's clock starts when its task starts on a worker (not while it waits for
  one), and at ``item_timeout_s`` the task returns the same ``TIMEOUT`` row a local run writes (the
  thread of that item keeps running until the solver's own limit ends it, as it does locally).
- A worker lost mid-item (killed, out of memory, its node gone) makes Ray run the task again
  (``MAX_RETRIES`` times): the driver gets one row per item, whichever attempt gave it. An item
  whose workers are lost more often than that is written as an ``ERROR`` row saying so.
- A driver killed mid-run takes its tasks with it (Ray ends a job's tasks when its driver goes);
  a rerun with the same ``--out``, on Ray or locally, runs the items not in ``results.jsonl``.
- What an item needs (``item_needs``): one CPU (HiGHS, PyVRP, Fast Downward and clingo each run on
  one thread here) and memory by kind (a routing item's grows with the square of its locations).
  A ``local:`` model runs as one ``ModelHost`` actor per GPU, which loads the model once; items
  send their model calls there and need no GPU themselves, so Ray packs solver work on the CPUs
  while the GPUs decode, and items in flight are bounded by ``concurrency`` per model actor.
- Model replies: ``llm`` items record into a file of their own on the worker; the task returns the
  lines with the row and the driver appends them to ``recording.jsonl``. ``replay`` recordings are
  read by the driver and shipped; each item replays from its own copy, so an item's replies do not
  depend on which other items a worker ran.

Workers import ``formalist`` as the driver does: every node of a cluster needs it installed (the
same commit, with its dependencies; e.g. one container image for all nodes). A data folder is not
needed on the workers: items travel with their tasks.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from agent.errors import ConfigError, InputError
from benchmarks.datasets import Item

MAX_RETRIES = 3
"""Times Ray runs an item again after losing its worker (a system failure, not an exception)."""

MIB = 1024**2
BASE_MEMORY = {
    "milp": 512 * MIB,
    "asp": 1024 * MIB,
    "pddl": 2048 * MIB,
    "routing": 512 * MIB,
    "apis": 256 * MIB,
}
"""Memory an item asks for, by kind: the worker's own imports (about 300 MB) plus room for the
solver; Fast Downward's translator and search are the hungriest. Ray schedules by these numbers
(it does not measure them)."""

ROUTING_BYTES_PER_PAIR = 64
"""A routing item's memory per pair of locations: our float distance and duration matrices and
PyVRP's integer copies (8 bytes each, two of each), with room for the verifier's."""

TASK_NAME = "bench:"
"""Prefix of an item's task name (``bench:ID``); Ray shows it as the worker's process title
(``ray::bench:ID``) while the item runs."""


@dataclass(frozen=True, slots=True)
class Needs:
    """What one item asks Ray for: CPUs, GPUs and memory in bytes (logical resources: Ray places
    tasks by them; it does not cap what a task uses)."""

    cpus: float = 1.0
    memory: int = 512 * MIB
    gpus: float = 0.0


def item_needs(item: Item) -> Needs:
    """What ``item`` needs: one CPU, and memory by its kind (``BASE_MEMORY``; a routing item adds
    ``ROUTING_BYTES_PER_PAIR`` per pair of locations, a location per line of its instance text
    bounding their number). No GPU: a ``local:`` model's calls go to a ``ModelHost`` actor."""
    memory = BASE_MEMORY.get(item.kind, 1024 * MIB)
    if item.kind == "routing":
        n = item.text.count("\n") + 1
        memory += ROUTING_BYTES_PER_PAIR * n * n
    return Needs(cpus=1.0, memory=memory)


@dataclass(frozen=True, slots=True)
class WorkerContext:
    """What every task of a run shares (shipped once through the object store)."""

    settings: Any
    """The run's ``RunSettings``."""
    config: Any
    """The driver's agent configuration (``agent.config.Config``): workers never read their own."""
    keyed: dict[str, list[str]] = field(default_factory=dict)
    """``replay``: the recording's replies by messages (``benchmarks.replay.read_keyed``)."""
    ordered: list[str] = field(default_factory=list)
    """``replay``: the recording's replies in order."""


# -- the worker side ---------------------------------------------------------------------------------
_CONTEXTS: dict[str, WorkerContext] = {}
_CONTEXTS_LOCK = threading.Lock()


def _context(ref: Any) -> WorkerContext:
    """The run's context, fetched from the object store once per worker process."""
    import ray

    key = ref.hex()
    with _CONTEXTS_LOCK:
        if key not in _CONTEXTS:
            _CONTEXTS.clear()  # one run's context at a time: a finished run's is dropped
            _CONTEXTS[key] = ray.get(ref)
        return _CONTEXTS[key]


def _agent(ctx: WorkerContext, folder: Path, host: Any) -> Any:
    """The item's agent, as the driver's ``build_agent`` makes it, with ``folder`` as its run
    folder (an ``llm`` model records there) and, for a ``local:`` model, its calls sent to the
    model actor ``host``."""
    from benchmarks.replay import KeyedReplayChatModel
    from benchmarks.runner import build_agent

    settings = ctx.settings
    chat = None
    if settings.mode == "replay":
        chat = KeyedReplayChatModel(keyed=ctx.keyed, ordered=ctx.ordered)
    agent = build_agent(settings, folder, chat_model=chat, config=ctx.config)
    if host is not None and agent.client is not None:
        agent.client.chat_model = HostedChatModel(host=host)
    return agent


def run_item(ctx_ref: list[Any], item: Item, host: Any = None) -> tuple[dict[str, Any], list[str]]:
    """One item on a worker: ``(its results row, the model replies it recorded)``.

    ``ctx_ref`` holds the ``WorkerContext``'s object reference (in a list, so that Ray hands over
    the reference and each worker process fetches the context once). The row is
    ``runner.solve_item``'s, or the ``TIMEOUT`` row when the item's limit passes first; its
    ``elapsed_s`` counts from when the item started, as in a local run."""
    from benchmarks.runner import RECORDING, solve_item, unanswered_row

    ctx = _context(ctx_ref[0])
    settings = ctx.settings
    with tempfile.TemporaryDirectory(prefix="formalist-item-") as tmp:
        agent = _agent(ctx, Path(tmp), host)
        done: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()

        def work() -> None:
            try:
                done.put(solve_item(agent, item, settings.mode, settings))
            except BaseException as e:  # solve_item catches every Exception; this is the rest
                done.put(unanswered_row(item, "ERROR", f"crash: {type(e).__name__}: {e}"))

        t0 = time.perf_counter()
        # A daemon thread: an item past its limit is left to its solver's limit, as locally.
        threading.Thread(target=work, name=f"bench-{item.id}", daemon=True).start()
        try:
            row = done.get(timeout=settings.item_timeout_s)
            row["timed_out"] = False
        except queue.Empty:
            row = unanswered_row(item, "TIMEOUT", f"no answer within {settings.item_timeout_s:g} s")
        row["elapsed_s"] = round(time.perf_counter() - t0, 3)
        recording = Path(tmp, RECORDING)
        replies = recording.read_text(encoding="utf-8").splitlines() if recording.is_file() else []
    return row, replies


# -- local: models as actors -------------------------------------------------------------------------
class ModelHost:
    """A ``local:`` model loaded once, in an actor holding one GPU; items send it their calls."""

    def __init__(self, spec: str, config: Any) -> None:
        from agent.llm.spec import build_chat_model, parse_spec

        self.chat = build_chat_model(
            parse_spec(spec),
            config.base_url,
            config.temperature,
            config.request_timeout,
            config.local,
        )
        self.chat.engine()  # loaded before any item's clock starts

    def ready(self) -> bool:
        return True

    def generate(
        self, messages: list[tuple[str, str]], stop: list[str] | None, kwargs: dict[str, Any]
    ) -> list[tuple[str, dict[str, Any]]]:
        """The model's ``(text, metadata)`` replies to ``messages`` (``(role, content)`` pairs)."""
        from langchain_core.messages import HumanMessage, SystemMessage

        kinds = {"system": SystemMessage, "ai": AIMessage}
        lc = [kinds.get(role, HumanMessage)(content=content) for role, content in messages]
        result = self.chat._generate(lc, stop=stop, **kwargs)
        return [
            (str(g.message.content), dict(g.message.response_metadata)) for g in result.generations
        ]


class HostedChatModel(BaseChatModel):
    """A chat model whose calls go to a ``ModelHost`` actor (``host``): what a ``local:`` model
    is on the workers."""

    host: Any
    samples_in_one_call: bool = True
    """``n`` samples of one call share the prompt's prefill, as ``LocalChatModel``'s do."""

    @property
    def _llm_type(self) -> str:
        return "formalist-ray-hosted"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        import ray

        pairs = [(m.type, str(m.content)) for m in messages]
        replies = ray.get(self.host.generate.remote(pairs, stop, kwargs))
        return ChatResult(
            generations=[
                ChatGeneration(message=AIMessage(content=text, response_metadata=meta))
                for text, meta in replies
            ]
        )


# -- the driver side ---------------------------------------------------------------------------------
def connect(address: str) -> bool:
    """Join the Ray cluster at ``address`` (empty: ``RAY_ADDRESS``, else a Ray started here for
    this run), unless this process already has; True when this call connected (the caller
    disconnects at the end). ``ConfigError`` without Ray, ``InputError`` when the cluster cannot be
    reached."""
    try:
        import ray
    except ImportError as e:
        raise ConfigError(f"--executor ray needs Ray: pip install 'formalist[ray]' ({e})") from e
    target = address or os.environ.get("RAY_ADDRESS", "")
    if target:
        _check_reachable(target)
    if ray.is_initialized():
        joined = ray.get_runtime_context().gcs_address
        if address and address not in (joined, "auto"):
            raise InputError(
                f"this process is connected to the Ray cluster at {joined}, not {address}"
            )
        return False
    kw: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING}
    try:
        if target:
            ray.init(address=target, **kw)
        else:
            ray.init(include_dashboard=False, **kw)
    except (ConnectionError, RuntimeError, ValueError) as e:
        where = f"at {target}" if target else "on this machine"
        raise InputError(f"cannot start or reach a Ray cluster {where}: {e}") from e
    return True


CONNECT_TIMEOUT_S = 10.0


def _check_reachable(address: str) -> None:
    """``InputError`` when nothing answers at ``address`` (``HOST:PORT``) within
    ``CONNECT_TIMEOUT_S``: Ray itself would keep retrying for minutes. Other forms (``auto``,
    ``ray://...``) are left to Ray."""
    import socket

    host, sep, port = address.rpartition(":")
    if not sep or "/" in address or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), CONNECT_TIMEOUT_S).close()
    except OSError as e:
        raise InputError(
            f"no Ray cluster answers at {address} ({e.strerror or e}): start one with "
            "`ray start --head` and pass the address it prints"
        ) from e


def _largest_node_memory() -> float:
    import ray

    sizes = [n["Resources"].get("memory", 0.0) for n in ray.nodes() if n.get("Alive")]
    return max(sizes, default=0.0)


def _hosts(settings: Any, config: Any) -> list[Any]:
    """One ``ModelHost`` per GPU of the cluster (one on a CPU when it has none) for a ``local:``
    model, loaded before any item starts; none for any other model."""
    import ray

    spec = settings.model or config.model
    if settings.mode != "llm" or not spec.startswith("local:"):
        return []
    gpus = int(ray.cluster_resources().get("GPU", 0))
    actor = ray.remote(ModelHost).options(
        num_gpus=1 if gpus else 0,
        num_cpus=1,
        max_concurrency=16,  # calls wait in the actor (the engine takes one at a time)
        max_restarts=MAX_RETRIES,
        max_task_retries=MAX_RETRIES,
    )
    hosts: list[Any] = [actor.remote(spec, config) for _ in range(max(1, gpus))]
    ray.get([h.ready.remote() for h in hosts])
    return hosts


LOST_ERRORS = (
    "WorkerCrashedError",
    "NodeDiedError",
    "ObjectLostError",
    "OutOfMemoryError",
    "ActorDiedError",
    "ActorUnavailableError",
    "LocalRayletDiedError",
)


async def run_items(
    settings: Any,
    items: list[Item],
    config: Any,
    out: Path,
    record: Callable[[dict[str, Any]], Awaitable[None]],
) -> dict[str, Any]:
    """Run ``items`` as Ray tasks, handing each row to ``record`` (the driver's writer) as its
    task returns; the replies an ``llm`` item recorded go to ``out/recording.jsonl`` first.
    Returns what the run summary adds: ``{"executor": "ray", "lost": N}`` (N items whose workers
    were lost more than ``MAX_RETRIES`` times, written as ``ERROR`` rows)."""
    import ray

    from benchmarks.replay import read_keyed
    from benchmarks.runner import RECORDING, unanswered_row

    owned = connect(settings.address)
    refs: dict[str, Any] = {}
    hosts: list[Any] = []
    lost = 0
    try:
        keyed: dict[str, list[str]] = {}
        ordered: list[str] = []
        if settings.mode == "replay":
            keyed, ordered = read_keyed(settings.model)
        ctx_ref = ray.put(WorkerContext(settings, config, keyed, ordered))
        hosts = _hosts(settings, config)
        task = ray.remote(run_item)
        largest = _largest_node_memory()
        # Items in flight: as many as the cluster's CPUs take, except that a local: model's are
        # bounded per model actor (more would only wait for the GPU, their clocks running).
        window = settings.concurrency * len(hosts) if hosts else len(items) or 1
        sem = asyncio.Semaphore(window)
        recording = out / RECORDING
        write_lock = asyncio.Lock()

        def append_replies(lines: list[str]) -> None:
            with recording.open("a", encoding="utf-8") as f:
                f.write("".join(line + "\n" for line in lines))
                f.flush()
                os.fsync(f.fileno())

        async def one(i: int, item: Item) -> None:
            nonlocal lost
            async with sem:
                needs = item_needs(item)
                memory = int(min(needs.memory, largest)) if largest else needs.memory
                host = hosts[i % len(hosts)] if hosts else None
                ref = task.options(
                    name=f"{TASK_NAME}{item.id}",
                    num_cpus=needs.cpus,
                    num_gpus=needs.gpus,
                    memory=memory,
                    max_retries=MAX_RETRIES,
                    retry_exceptions=False,
                ).remote([ctx_ref], item, host)
                refs[item.id] = ref
                try:
                    row, replies = await ref
                except ray.exceptions.RayError as e:
                    cause = type(e).__name__
                    if cause in LOST_ERRORS:
                        lost += 1
                        why = (
                            f"crash: the Ray worker running it was lost {MAX_RETRIES + 1} times "
                            f"({cause})"
                        )
                    else:
                        why = f"crash: {cause}: {str(e).splitlines()[0] if str(e) else ''}"
                    row, replies = unanswered_row(item, "ERROR", why), []
                finally:
                    refs.pop(item.id, None)
            if replies:
                async with write_lock:
                    await asyncio.to_thread(append_replies, replies)
            await record(row)

        await asyncio.gather(*(one(i, it) for i, it in enumerate(items)))
    finally:
        for ref in list(refs.values()):  # stopped early: end its tasks, whatever cluster it is
            ray.cancel(ref, force=True)
        for h in hosts:
            ray.kill(h)
        if owned:
            ray.shutdown()
    return {"executor": "ray", "lost": lost}
