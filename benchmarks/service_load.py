"""Load on `formalist serve` over loopback: concurrent chat sessions against a replay model.

Starts the server (replay model, fresh sessions database, 2 s solver limit), then runs SESSIONS
concurrent sessions of TURNS turns each (a request, then follow-ups), every turn a POST to
/v1/chat/completions. A few sessions (``--slow``) send a hard MIP that runs to its 2 s limit: the fast
sessions' latencies show whether any request waits on another's solver time. Prints throughput,
p50/p99 latency (all, and fast sessions only) and errors. Bounded: SESSIONS x TURNS requests, and a
120 s overall deadline.

    python benchmarks/service_load.py [--sessions 100] [--turns 5] [--slow 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
FOLLOW_UPS = [
    "now make the bag hold 16 kg",
    "what if the bag holds 14 kg?",
    "make it 15 kg again",
    "now drop the grey box",
]


def market_split(seed: int = 7, m: int = 5, n: int = 40) -> str:
    rng = random.Random(seed)
    a = {f"r{i}": {f"c{j}": rng.randint(0, 99) for j in range(n)} for i in range(m)}
    d = {r: sum(row.values()) // 2 for r, row in a.items()}
    return json.dumps(
        {
            "sets": [
                {"name": "R", "members": list(a)},
                {"name": "C", "members": [f"c{j}" for j in range(n)]},
            ],
            "parameters": [
                {"name": "a", "index": ["R", "C"], "values": a},
                {"name": "d", "index": ["R"], "values": d},
            ],
            "variables": [
                {"name": "x", "index": ["C"], "domain": "binary"},
                {"name": "sp", "index": ["R"]},
                {"name": "sn", "index": ["R"]},
            ],
            "objective": {"sense": "min", "expression": "sum(sp[r] + sn[r] for r in R)"},
            "constraints": [
                {
                    "name": "split",
                    "index": ["r in R"],
                    "expression": "sum(a[r, c] * x[c] for c in C) + sp[r] - sn[r] == d[r]",
                }
            ],
        }
    )


async def session(
    client: httpx.AsyncClient,
    sid: str,
    turns: int,
    slow: bool,
    lat: list[tuple[bool, float]],
    errors: list[str],
) -> None:
    for t in range(turns):
        if slow:
            text = market_split(seed=t)  # a formal model: solved to the time limit, no model call
        else:
            text = (
                "Pack the most valuable boxes into a 15 kg bag."
                if t == 0
                else FOLLOW_UPS[(t - 1) % len(FOLLOW_UPS)]
            )
        t0 = time.perf_counter()
        try:
            r = await client.post(
                "/v1/chat/completions",
                headers={"X-Session-Id": sid},
                json={"model": "formalist", "messages": [{"role": "user", "content": text}]},
            )
            if r.status_code != 200:
                errors.append(f"{sid} turn {t}: HTTP {r.status_code} {r.text[:120]}")
        except httpx.HTTPError as e:
            errors.append(f"{sid} turn {t}: {type(e).__name__} {e}")
        lat.append((slow, time.perf_counter() - t0))


async def probe(url: str, slow: int) -> tuple[float, float]:
    """Median latency of 20 sequential fast requests with the server idle, then while ``slow``
    sessions each run a 2 s MIP: a fast request that waited on a solve would take >= 2 s."""

    async def fast_series(client: httpx.AsyncClient) -> list[float]:
        out = []
        for _ in range(20):
            t0 = time.perf_counter()
            r = await client.post(
                "/v1/solve",
                json={"request": (ROOT / "tests/fixtures/milp/knapsack.json").read_text()},
            )
            r.raise_for_status()
            out.append(time.perf_counter() - t0)
        return out

    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        idle = await fast_series(client)
        slow_tasks = [
            asyncio.create_task(
                client.post("/v1/solve", json={"request": market_split(seed=100 + k)})
            )
            for k in range(slow)
        ]
        await asyncio.sleep(0.3)  # the slow solves are running
        busy = await fast_series(client)
        await asyncio.gather(*slow_tasks)
    return statistics.median(idle), statistics.median(busy)


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


async def drive(
    url: str, sessions: int, turns: int, slow: int
) -> tuple[list[tuple[bool, float]], list[str], float]:
    lat: list[tuple[bool, float]] = []
    errors: list[str] = []
    limits = httpx.Limits(max_connections=sessions + 10)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        t0 = time.perf_counter()
        await asyncio.wait_for(
            asyncio.gather(
                *(
                    session(client, f"load-{i}", turns, i < slow, lat, errors)
                    for i in range(sessions)
                )
            ),
            timeout=120,
        )
        return lat, errors, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--sessions", type=int, default=100)
    ap.add_argument("--turns", type=int, default=5)
    ap.add_argument("--slow", type=int, default=5)
    args = ap.parse_args(argv)
    knapsack = (ROOT / "tests/fixtures/milp/knapsack.json").read_text()
    with tempfile.TemporaryDirectory() as tmp:
        rec = Path(tmp, "replies.json")
        rec.write_text(json.dumps([knapsack] * (args.sessions * args.turns + 10)))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        cmd = [
            sys.executable,
            "-m",
            "agent.cli",
            "serve",
            "--port",
            str(port),
            "--db",
            str(Path(tmp, "s.sqlite")),
            "--model",
            f"replay:{rec}",
            "--no-cache",
            "--time-limit",
            "2",
        ]
        proc = subprocess.Popen(
            cmd,
            cwd=tmp,
            env={**os.environ, "HOME": tmp},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            for _ in range(300):
                try:
                    if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            idle_ms, busy_ms = asyncio.run(probe(url, 2))
            lat, errors, wall = asyncio.run(drive(url, args.sessions, args.turns, args.slow))
        finally:
            proc.terminate()
            proc.wait(10)
    fast = [t for slow, t in lat if not slow]
    every = [t for _, t in lat]
    print(
        f"{args.sessions} sessions x {args.turns} turns ({args.slow} sessions send a MIP that runs 2 s): "
        f"{len(lat)} requests in {wall:.1f} s = {len(lat) / wall:.1f} requests/s"
    )
    print(
        f"latency all:  p50 {pct(every, 0.5) * 1000:.0f} ms, p99 {pct(every, 0.99) * 1000:.0f} ms"
    )
    print(
        f"latency fast: p50 {pct(fast, 0.5) * 1000:.0f} ms, p99 {pct(fast, 0.99) * 1000:.0f} ms, "
        f"max {max(fast) * 1000:.0f} ms (a fast request that waited on a 2 s solve would show >= 2000 ms)"
    )
    print(
        f"probe: a fast request alone takes {idle_ms * 1000:.0f} ms (median of 20); while 2 slow 2 s solves run, "
        f"{busy_ms * 1000:.0f} ms: it shares the CPU with them but never waits for one to finish"
    )
    print(f"errors: {len(errors)}")
    for e in errors[:10]:
        print("  " + e)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
