"""Benchmark runs on Ray (``--executor ray``) against a real Ray head started here, on the loopback
address: rows equal a local run's item by item, a worker killed mid-item makes its item run again
(once), a run killed mid-way resumes on Ray or locally with each item exactly once, and an item's
time limit gives the local run's ``TIMEOUT`` row.

One Ray head serves the whole module (its start is most of the module's time). Solomon items need
the shared data folder (skipped without it); the NL4Opt items are the repository's fixture."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

# Ray on this machine only: its head and workers bind the loopback address (set before Ray loads).
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
ray = pytest.importorskip("ray")

from agent.errors import InputError  # noqa: E402
from benchmarks.datasets import DEFAULT_DATA, Item  # noqa: E402
from benchmarks.ray_executor import (  # noqa: E402
    BASE_MEMORY,
    ROUTING_BYTES_PER_PAIR,
    TASK_NAME,
    item_needs,
)
from benchmarks.runner import TIMING_KEYS, RunSettings, read_results, run  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
needs_solomon = pytest.mark.skipif(
    not (DEFAULT_DATA / "vrp_instances" / "solomon_100").is_dir(),
    reason=f"Solomon instances not found under {DEFAULT_DATA}",
)


@pytest.fixture(scope="module")
def ray_head() -> Iterator[str]:
    """A Ray head of two CPUs on 127.0.0.1 for the module; its GCS address. Its token is in the
    environment, so the drivers the tests start as processes join it (whatever their HOME)."""
    import logging
    import secrets

    saved = {k: os.environ.get(k) for k in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN")}
    os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)  # Ray turns RAY_AUTH_MODE to token
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.WARNING,
        object_store_memory=100 * 1024**2,
    )
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="module")
def nl4opt_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data folder whose ``nl4opt/generation_dev.jsonl`` is the repository's NL4Opt dev copy."""
    root = tmp_path_factory.mktemp("data")
    (root / "nl4opt").mkdir()
    shutil.copy(
        REPO / "tests/fixtures/nl4opt/dev_declarations.jsonl", root / "nl4opt/generation_dev.jsonl"
    )
    return root


NL4OPT_ITEMS = 24


@pytest.fixture(scope="module")
def nl4opt_local(nl4opt_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The first ``NL4OPT_ITEMS`` NL4Opt dev items through the oracle, run locally: the
    reference rows by id."""
    out = tmp_path_factory.mktemp("nl4opt-local")
    run(nl4opt_settings(nl4opt_data), out, progress=False)
    return strip(read_results(out / "results.jsonl"))


def nl4opt_settings(data: Path, **kw: Any) -> RunSettings:
    return RunSettings(
        "nl4opt-dev@gold", "oracle", limit=NL4OPT_ITEMS, data_dir=str(data), concurrency=2, **kw
    )


def strip(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Rows by id without their timing fields; an id twice is an error."""
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)), f"an item written twice: {sorted(ids)}"
    return {r["id"]: {k: v for k, v in r.items() if k not in TIMING_KEYS} for r in rows}


QUALITY = frozenset({"objective", "scores", "efficiency", "error_class"})
"""Result fields that depend on how far a time-limited search got."""


def settled(rows: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``strip``ped rows without their ``QUALITY`` fields."""
    return {i: {k: v for k, v in r.items() if k not in QUALITY} for i, r in rows.items()}


def test_an_item_declares_what_it_needs() -> None:
    small = Item("a", "x", "milp", "value", 1.0)
    plan = Item("p", "(define (problem p))", "pddl", "plan")
    route = Item("r", "\n".join(f"{i} 0 0" for i in range(101)), "routing", "route")
    bigger = Item("R", "\n".join(f"{i} 0 0" for i in range(1001)), "routing", "route")
    assert item_needs(small).cpus == 1.0 and item_needs(small).gpus == 0.0
    assert item_needs(small).memory == BASE_MEMORY["milp"]
    assert item_needs(plan).memory > item_needs(small).memory
    # A routing item's matrices grow with the square of its locations (a line each).
    for item, n in ((route, 101), (bigger, 1001)):
        assert item_needs(item).memory == BASE_MEMORY["routing"] + ROUTING_BYTES_PER_PAIR * n * n


def test_executor_settings_are_checked(nl4opt_data: Path) -> None:
    with pytest.raises(InputError, match="--executor must be one of local, ray"):
        nl4opt_settings(nl4opt_data, executor="spark")
    with pytest.raises(InputError, match="--address .* needs --executor ray"):
        nl4opt_settings(nl4opt_data, address="127.0.0.1:6379")


def test_nl4opt_oracle_on_ray_gives_the_local_rows(
    ray_head: str, nl4opt_data: Path, nl4opt_local: dict[str, Any], tmp_path: Path
) -> None:
    out = tmp_path / "ray"
    summary = run(nl4opt_settings(nl4opt_data, executor="ray"), out, progress=False)
    assert summary["executor"] == "ray" and summary["lost"] == 0
    assert summary["finished"] == NL4OPT_ITEMS
    rows = strip(read_results(out / "results.jsonl"))
    assert rows.keys() == nl4opt_local.keys()
    for key, row in nl4opt_local.items():
        assert rows[key] == row, key
    assert sum(r["scores"]["strict"] for r in rows.values()) >= NL4OPT_ITEMS - 2
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["settings"]["executor"] == "ray"


def test_llm_replies_recorded_on_ray_replay_item_for_item(ray_head: str, tmp_path: Path) -> None:
    """Workers record an item's model replies; the driver appends them to recording.jsonl, and a
    replay run on Ray from that file gives the same rows."""
    reply = json.dumps(
        {
            "variables": [{"name": "x", "upper": 4}, {"name": "y", "upper": 3}],
            "objective": {"sense": "max", "expression": "3 * x + 2 * y"},
            "constraints": [{"name": "cap", "expression": "x + y <= 6"}],
        }
    )
    data = tmp_path / "three.jsonl"
    data.write_text(
        "".join(
            json.dumps({"id": f"q{i}", "en_question": f"Maximize 3x + 2y ({i})", "en_answer": 16})
            + "\n"
            for i in range(3)
        )
    )
    script = tmp_path / "script.json"
    script.write_text(json.dumps([reply]))  # each item's model is fresh: it answers once
    first = tmp_path / "llm"
    run(RunSettings(str(data), "llm", f"replay:{script}", executor="ray"), first)
    recording = first / "recording.jsonl"
    lines = [json.loads(line) for line in recording.read_text().splitlines()]
    assert len(lines) == 3 and all(line["reply"] == reply for line in lines)
    again = tmp_path / "replay"
    run(RunSettings(str(data), "replay", str(recording), executor="ray"), again)
    a = strip(read_results(first / "results.jsonl"))
    b = strip(read_results(again / "results.jsonl"))
    assert a == b and all(r["scores"]["strict"] for r in a.values())


def ray_task_pids(prefix: str) -> dict[int, str]:
    """Worker processes running a bench item now: pid -> item id (from Ray's process title)."""
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            title = (proc / "cmdline").read_bytes().split(b"\0")[0].decode()
        except OSError:
            continue
        if title.startswith(f"ray::{prefix}"):
            found[int(proc.name)] = title.removeprefix(f"ray::{prefix}").strip()
    return found


SOLOMON = RunSettings(
    "solomon", "oracle", limit=2, time_limit_s=2.0, item_timeout_s=60.0, concurrency=2
)
"""C101 and C102 with 2 s of PyVRP each: both reach the best known 827.3 well within it."""


@needs_solomon
def test_a_worker_killed_mid_item_runs_it_again_once(ray_head: str, tmp_path: Path) -> None:
    run(SOLOMON, tmp_path / "local", progress=False)
    local = strip(read_results(tmp_path / "local" / "results.jsonl"))
    summary: list[dict[str, Any]] = []
    failed: list[BaseException] = []

    def drive() -> None:
        try:
            summary.append(run(replace(SOLOMON, executor="ray"), tmp_path / "ray", progress=False))
        except BaseException as e:
            failed.append(e)

    driver = threading.Thread(target=drive)
    driver.start()
    killed: dict[int, str] = {}
    deadline = time.monotonic() + 60
    while not killed and time.monotonic() < deadline and driver.is_alive():
        running = ray_task_pids(TASK_NAME)
        if running:
            pid, item = next(iter(running.items()))
            os.kill(pid, signal.SIGKILL)
            killed[pid] = item
        time.sleep(0.02)
    driver.join(timeout=120)
    assert not failed, failed
    assert killed, "no worker was seen running an item"
    (item,) = killed.values()
    assert summary[0]["lost"] == 0 and summary[0]["finished"] == 2
    rows = strip(read_results(tmp_path / "ray" / "results.jsonl"))
    assert item in rows and rows[item]["status"] == "FEASIBLE"
    # PyVRP searches for 2 s: on a loaded machine a run may stop a little short of the best
    # known tour, so the solution's quality is compared with a tolerance, the rest exactly.
    assert settled(rows) == settled(local)
    for i, row in rows.items():
        assert row["scores"]["feasible"], i
        assert row["objective"] == pytest.approx(local[i]["objective"], rel=0.02), i


@needs_solomon
def test_an_item_past_its_limit_gives_the_local_timeout_row(ray_head: str, tmp_path: Path) -> None:
    # The solver's limit well past the item's: under load a solver held to a short limit may
    # give up (an answered TIMEOUT) before the item's clock runs out, a row of another kind.
    s = replace(SOLOMON, item_timeout_s=0.3, time_limit_s=3.0)
    run(s, tmp_path / "local", progress=False)
    run(replace(s, executor="ray"), tmp_path / "ray", progress=False)
    local = read_results(tmp_path / "local" / "results.jsonl")
    rows = read_results(tmp_path / "ray" / "results.jsonl")
    assert strip(rows) == strip(local)
    assert all(r["status"] == "TIMEOUT" and r["error_class"] == "timeout" for r in rows)
    assert all(0.3 <= r["elapsed_s"] < 5 for r in rows)


DRIVER = "import sys; from agent.cli import main; sys.exit(main(sys.argv[1:]))"


def test_a_killed_ray_driver_resumes_locally_each_item_once(
    ray_head: str, nl4opt_data: Path, nl4opt_local: dict[str, Any], tmp_path: Path
) -> None:
    out = tmp_path / "run"
    results = out / "results.jsonl"
    args = ["bench", "nl4opt-dev@gold", "--mode", "oracle", "--limit", str(NL4OPT_ITEMS)]
    args += ["--data-dir", str(nl4opt_data), "--out", str(out)]
    proc = subprocess.Popen(
        [sys.executable, "-c", DRIVER, *args, "--executor", "ray", "--address", ray_head],
        cwd=REPO,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            if results.is_file() and len(results.read_bytes().splitlines()) >= 2:
                break
            time.sleep(0.01)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    finally:
        _, err = proc.communicate(timeout=30)
    before = read_results(results)
    assert 2 <= len(before) < NL4OPT_ITEMS, (len(before), err.decode()[-2000:])
    summary = run(nl4opt_settings(nl4opt_data), out, progress=False)
    assert summary["skipped"] == len(before) and summary["ran"] == NL4OPT_ITEMS - len(before)
    assert strip(read_results(results)) == nl4opt_local


class Stopped(Exception):
    """The driver of a local run dies after a few rows."""


def test_a_stopped_local_run_resumes_on_ray_each_item_once(
    ray_head: str, nl4opt_data: Path, nl4opt_local: dict[str, Any], tmp_path: Path
) -> None:
    out = tmp_path / "run"
    written: list[str] = []

    def stop_after_three(row: dict[str, Any]) -> None:
        written.append(row["id"])
        if len(written) == 3:
            raise Stopped

    with pytest.raises(Stopped):
        run(nl4opt_settings(nl4opt_data), out, progress=False, on_row=stop_after_three)
    before = read_results(out / "results.jsonl")
    assert 3 <= len(before) < NL4OPT_ITEMS
    summary = run(nl4opt_settings(nl4opt_data, executor="ray"), out, progress=False)
    assert summary["skipped"] == len(before) and summary["lost"] == 0
    assert strip(read_results(out / "results.jsonl")) == nl4opt_local


def test_an_address_nothing_answers_at_is_a_clear_error(nl4opt_data: Path, tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    s = nl4opt_settings(nl4opt_data, executor="ray", address=f"127.0.0.1:{port}")
    with pytest.raises(InputError, match=f"no Ray cluster answers at 127.0.0.1:{port}"):
        run(s, tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / "results.jsonl").exists()


@pytest.mark.slow
def test_a_local_model_runs_in_one_actor_and_gives_the_local_rows(
    ray_head: str, tmp_path: Path
) -> None:
    """A ``local:`` model (a tiny random one, on the CPU here) loads once in a ``ModelHost``
    actor; the item's calls go there and its row and recorded replies are the local run's."""
    pytest.importorskip("torch")
    pytest.importorskip("xgrammar")
    from agent.llm.local.testing import tiny_model_dir

    model = tiny_model_dir(tmp_path)
    cfg = tmp_path / "bench.toml"
    cfg.write_text(
        '[local]\ndevice = "cpu"\nthreads = 1\ntorch_threads = 1\nmax_batch = 2\n'
        "max_len = 4096\nmax_new_tokens = 24\n"
    )
    data = tmp_path / "one.jsonl"
    data.write_text(
        json.dumps({"id": "a", "en_question": "Maximize 3x with x at most 4.", "en_answer": 12})
        + "\n"
    )
    s = RunSettings(str(data), "llm", f"local:{model}", config=str(cfg), max_attempts=1)
    run(s, tmp_path / "local", progress=False)
    summary = run(replace(s, executor="ray"), tmp_path / "ray", progress=False)
    assert summary["lost"] == 0
    local = strip(read_results(tmp_path / "local" / "results.jsonl"))
    rows = strip(read_results(tmp_path / "ray" / "results.jsonl"))
    assert rows == local and rows["a"]["attempts"] == 1
    replies = [
        [json.loads(line)["reply"] for line in (tmp_path / d / "recording.jsonl").open()]
        for d in ("local", "ray")
    ]
    assert replies[0] == replies[1] and len(replies[0]) == 1
