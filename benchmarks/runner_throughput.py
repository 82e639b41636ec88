"""Throughput of the batch runner: N items through a replay model that sleeps per call.

With every call taking ``delay`` seconds and ``concurrency`` items at a time, the ideal wall time is
``N x delay / concurrency``; the runner passes when it finishes within 1.2 times that. Each item is
a small word problem whose (replayed) five-element model is compiled, solved with HiGHS and
verified, so the agent's own work is inside the measurement.

    python -m benchmarks.runner_throughput [--items 200] [--delay 0.5] [--concurrency 16]

Prints one JSON line with the wall time, the ideal and their ratio; exits 1 when the ratio is over
1.2.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from benchmarks.replay import KeyedReplayChatModel
from benchmarks.runner import RunSettings, build_agent, read_results, run

REPLY = json.dumps(
    {
        "variables": [{"name": "x", "upper": 4}, {"name": "y", "upper": 3}],
        "objective": {"sense": "max", "expression": "3 * x + 2 * y"},
        "constraints": [{"name": "cap", "expression": "x + y <= 6"}],
    }
)
"""The optimum is 3*4 + 2*2 = 16."""


def write_items(path: Path, n: int) -> None:
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            q = f"Problem {i}: maximize 3x + 2y with x <= 4, y <= 3 and x + y <= 6."
            f.write(json.dumps({"id": f"q{i:04d}", "en_question": q, "en_answer": "16"}) + "\n")


def measure(items: int, delay: float, concurrency: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp, "items.jsonl")
        write_items(data, items)
        out = Path(tmp, "run")
        settings = RunSettings(
            str(data), mode="llm", model="replay", concurrency=concurrency, item_timeout_s=60
        )
        model = KeyedReplayChatModel(keyed={}, ordered=[REPLY] * items, delay_s=delay)
        agent = build_agent(settings, out, chat_model=model)
        summary = run(settings, out, agent=agent, progress=False)
        rows = read_results(out / "results.jsonl")
    ideal = items * delay / concurrency
    correct = sum(bool(r["scores"]["strict"]) for r in rows)
    return {
        "items": items,
        "finished": len(rows),
        "correct": correct,
        "wall_s": summary["wall_s"],
        "ideal_s": ideal,
        "ratio": round(summary["wall_s"] / ideal, 3),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--items", type=int, default=200)
    ap.add_argument("--delay", type=float, default=0.5)
    ap.add_argument("--concurrency", type=int, default=16)
    args = ap.parse_args(argv)
    result = measure(args.items, args.delay, args.concurrency)
    print(json.dumps(result))
    return 0 if result["ratio"] <= 1.2 and result["finished"] == args.items else 1


if __name__ == "__main__":
    sys.exit(main())
