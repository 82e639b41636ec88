"""Throughput of ``formalist bench --executor ray`` against the local executor, and what a cluster
of N machines would give for the full VRP sets.

Measured on this machine, in one process (the local run is the baseline): the NL4Opt dev items
(the repository's copy, 99) through the oracle mode, once with the local executor (threads,
``--concurrency`` = the CPUs) and once on a Ray started here with as many CPUs. For each: items/s
and the overhead per item, the slot-seconds not spent inside items, ``(wall x slots - sum of the
items' elapsed_s) / items``; Ray's overhead per item is the difference. Beside them: Ray's own
floor (an empty task's round trip, submitted in bulk), the driver's cost per results line (JSON,
append, fsync: the one writer) and the Ray start-up (paid once per run, outside the items/s).

Then, by simulation, the full VRP sets (Solomon 56 + X 100 items, ``--methods`` runs each, every
item using its whole ``--time-limit``, the worst case of PyVRP's deadline) on N machines of
``--cores`` CPUs: a discrete-event model with one slot per CPU (fewer when the items' declared
memory does not fit), the measured per-item overhead on each item, the driver submitting tasks at
the measured rate and writing each row at the measured cost, one at a time. It prints wall time,
speed-up and which limit binds.

    PYTHONPATH=. .venv/bin/python benchmarks/ray_throughput.py [--cpus 2] [--cores 16] [--time-limit 60]
"""

from __future__ import annotations

import argparse
import heapq
import json
import logging
import math
import os
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from benchmarks.datasets import DEFAULT_DATA, Item, load
from benchmarks.ray_executor import item_needs
from benchmarks.runner import RunSettings, read_results, run

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "fixtures" / "nl4opt" / "dev_declarations.jsonl"


def measure(settings: RunSettings, out: Path, slots: int) -> dict[str, float]:
    summary = run(settings, out, progress=False)
    rows = read_results(out / "results.jsonl")
    busy = sum(r["elapsed_s"] for r in rows)
    wall = summary["wall_s"]
    return {
        "items": len(rows),
        "wall_s": round(wall, 3),
        "items_per_s": round(len(rows) / wall, 2),
        "in_items_s": round(busy, 3),
        "overhead_ms_per_item": round(1000 * (wall * slots - busy) / len(rows), 2),
        "correct": sum(bool(r["scores"].get("strict")) for r in rows),
    }


def noop_round_trip(n: int) -> float:
    """Seconds per empty Ray task, ``n`` submitted at once and awaited together."""
    import ray

    @ray.remote(num_cpus=1)
    def noop() -> None:
        return None

    ray.get([noop.remote() for _ in range(8)])  # workers up
    t0 = time.perf_counter()
    ray.get([noop.remote() for _ in range(n)])
    return (time.perf_counter() - t0) / n


def append_cost(n: int, row: dict[str, Any]) -> float:
    """Seconds per results line the driver writes (as ``runner``'s writer does: one JSON line,
    appended, flushed and fsynced)."""
    line = json.dumps(row, default=str, allow_nan=False, ensure_ascii=False)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "results.jsonl")
        t0 = time.perf_counter()
        for _ in range(n):
            with path.open("a", encoding="utf-8") as f:
                f.write(line + "\n")
                f.flush()
                os.fsync(f.fileno())
        return (time.perf_counter() - t0) / n


def simulate(
    durations: list[float], slots: int, overhead_s: float, submit_s: float, write_s: float
) -> tuple[float, str]:
    """``(makespan, binding limit)`` of ``durations`` on ``slots`` slots: the driver submits a task
    every ``submit_s`` at best, each item holds its slot for its duration plus ``overhead_s``,
    and the driver writes rows one at a time, ``write_s`` each. The limit named is the lower
    bound on the makespan that comes nearest it: the slots (items over slots, in waves), the
    longest item (one wave), task submission or the driver's writes."""
    free = [0.0] * slots
    heapq.heapify(free)
    submitted = 0.0
    finishes = []
    for d in durations:
        slot = heapq.heappop(free)
        submitted += submit_s
        end = max(slot, submitted) + d + overhead_s
        heapq.heappush(free, end)
        finishes.append(end)
    writer = 0.0
    for end in sorted(finishes):
        writer = max(writer, end) + write_s
    n = len(durations)
    waves = math.ceil(n / slots)
    bounds = {
        f"slots ({waves} waves)" if waves > 1 else "items (one wave: a slot each)": sum(
            d + overhead_s for d in durations
        )
        / slots
        if waves > 1
        else max(durations) + overhead_s,
        "task submission": n * submit_s,
        "driver writes": n * write_s,
    }
    limit = max(bounds, key=lambda k: bounds[k])
    return writer, limit


def vrp_items() -> list[Item]:
    """The full VRP sets of ``formalist bench``: Solomon and X (from the data folder)."""
    return [it for name in ("solomon", "cvrp-x") for it in load(name).items]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--cpus", type=int, default=os.cpu_count() or 2, help="slots on this machine")
    ap.add_argument("--cores", type=int, default=16, help="CPUs per cluster machine")
    ap.add_argument("--memory-gib", type=float, default=64.0, help="memory per cluster machine")
    ap.add_argument("--time-limit", type=float, default=60.0, help="seconds per VRP item")
    ap.add_argument("--methods", type=int, default=3, help="runs of each VRP item")
    args = ap.parse_args(argv)
    # Ray on this machine only: the head and workers bind the loopback address.
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    import ray

    tmp = Path(tempfile.mkdtemp(prefix="ray-throughput-"))
    try:
        (tmp / "data" / "nl4opt").mkdir(parents=True)
        shutil.copy(FIXTURE, tmp / "data" / "nl4opt" / "generation_dev.jsonl")
        base = RunSettings(
            "nl4opt-dev@gold", "oracle", data_dir=str(tmp / "data"), concurrency=args.cpus
        )
        local = measure(base, tmp / "local", args.cpus)
        t0 = time.perf_counter()
        ray.init(
            num_cpus=args.cpus,
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.WARNING,
        )
        start_s = time.perf_counter() - t0
        try:
            noop_s = noop_round_trip(500)
            # Twice: the first run also starts the workers and imports formalist in each.
            cold = measure(replace(base, executor="ray"), tmp / "ray-cold", args.cpus)
            warm = measure(replace(base, executor="ray"), tmp / "ray-warm", args.cpus)
        finally:
            ray.shutdown()
        row = read_results(tmp / "local" / "results.jsonl")[0]
        write_s = append_cost(200, row)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"This machine: {args.cpus} slots, NL4Opt dev oracle ({local['items']} items)\n")
    print("| executor | wall s | items/s | overhead ms/item | correct |")
    print("|---|---|---|---|---|")
    for name, m in (("local", local), ("ray (cold workers)", cold), ("ray (warm)", warm)):
        print(
            f"| {name} | {m['wall_s']} | {m['items_per_s']} | {m['overhead_ms_per_item']} | "
            f"{m['correct']}/{m['items']} |"
        )
    ray_overhead = warm["overhead_ms_per_item"] - local["overhead_ms_per_item"]
    print(
        f"\nRay's overhead per item (warm minus local): {ray_overhead:.1f} ms of a slot; "
        f"an empty Ray task: {1000 * noop_s:.2f} ms; a results line written by the driver: "
        f"{1000 * write_s:.2f} ms; Ray start-up here: {start_s:.1f} s (once per run)."
    )
    print(
        f"Ratio warm Ray / local items/s: {warm['items_per_s'] / local['items_per_s']:.2f}; "
        f"cold: {cold['items_per_s'] / local['items_per_s']:.2f}"
    )

    try:
        items = vrp_items()
    except Exception as e:  # the estimate needs the sets' sizes; say why it is missing
        print(f"\nno VRP estimate: {e}")
        return 0
    per_machine = min(
        args.cores,
        int(args.memory_gib * 1024**3 // max(item_needs(it).memory for it in items)),
    )
    durations = [args.time_limit] * (len(items) * args.methods)
    overhead_s = max(0.0, ray_overhead / 1000)
    print(
        f"\nFull VRP sets: {len(items)} items x {args.methods} methods = {len(durations)} tasks "
        f"of {args.time_limit:g} s; {per_machine} at a time per machine ({args.cores} CPUs, "
        f"{args.memory_gib:g} GiB; largest item asks {max(item_needs(i).memory for i in items) / 1024**2:.0f} MiB)\n"
    )
    print("| machines | slots | wall | speed-up | efficiency | binds |")
    print("|---|---|---|---|---|---|")
    one = 0.0
    for n in (1, 2, 4, 8, 16, 32, 64, 128):
        slots = n * per_machine
        wall, limit = simulate(durations, slots, overhead_s, noop_s, write_s)
        one = one or wall
        speedup = one / wall
        print(
            f"| {n} | {slots} | {wall / 60:.1f} min | {speedup:.1f} | "
            f"{100 * speedup / n:.0f}% | {limit} |"
        )
    driver_rate = 1 / (write_s + noop_s)
    print(
        f"\nThe driver handles about {driver_rate:.0f} items/s (write + submit); items of "
        f"{args.time_limit:g} s finish at slots/{args.time_limit:g} per second, so it binds only "
        f"beyond {driver_rate * args.time_limit:.0f} slots. Data folder: {DEFAULT_DATA}"
    )
    largest = max(len(it.text.encode()) for it in items)
    print(
        f"Object store: the largest item travels as a {largest / 1024:.0f} KB argument, which Ray "
        "inlines in the task (under 100 KB), so items do not touch it; the run's context "
        "(settings, configuration, a replay recording) goes through it once per worker process, "
        "so a recording of M MB costs workers x M MB read from the driver's node."
    )
    print(
        "Model actors (local: models): one per GPU, each taking one call at a time, so items/s "
        "is at most GPUs / (model seconds per item), however many CPUs there are; --concurrency "
        "items per actor are in flight."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
