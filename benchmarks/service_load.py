"""Load on `formalist serve` over loopback: concurrent chat sessions against a replay model.

Starts the server (replay model, fresh sessions database, 2 s solver limit), then runs SESSIONS
concurrent sessions of TURNS turns each (a request, then follow-ups), every turn a POST to
/v1/chat/completions. A few sessions (``--slow``) send a hard MIP that runs to its 2 s limit: the fast
sessions' latencies show whether any request waits on another's solver time. Prints throughput,
p50/p99 latency (all, and fast sessions only) and errors. Bounded: SESSIONS x TURNS requests, and a
120 s overall deadline (``--deadline``). Then (``--hostile N``) the bounds against careless or hostile clients: N
idle connections that never send a header, N ``GET /mcp/`` event-stream requests, and a 300 MiB
chunked upload; prints what the server held and freed, its memory, and a fast request's latency
meanwhile as a ratio to the same request measured quiet in the same run.

    python benchmarks/service_load.py [--sessions 100] [--turns 5] [--slow 5] [--hostile 300]

Several processes on one database (``--servers 2 --db postgresql://...``, or ``--url URL`` twice
for servers already running): each session's turns go to the servers in turn (turn t of session i
to server (i + t) mod N), a turn whose server is unreachable is sent to the next one (as a load
balancer would), and ``--kill-after S`` SIGKILLs the first server S seconds into the run. At the end
every session is read back and the turns are counted: sent, acknowledged (a 200 read to its end),
stored, and lost (acknowledged but not stored, or stored out of order: must be 0).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
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


@dataclass
class Tally:
    """What the clients saw: turns sent, acknowledged per session (their texts, in order)."""

    sent: int = 0
    resent: int = 0  # turns sent again to the next server, theirs being unreachable
    acked: dict[str, list[str]] = field(default_factory=dict)


async def session(
    clients: list[httpx.AsyncClient],
    index: int,
    turns: int,
    slow: bool,
    lat: list[tuple[bool, float]],
    errors: list[str],
    tally: Tally,
) -> None:
    name = f"load-{index}"
    sid = ""  # the server issues the id on the first turn; later turns send it back
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
        tally.sent += 1
        for attempt in range(len(clients)):  # the next server when one cannot be reached
            client = clients[(index + t + attempt) % len(clients)]
            try:
                r = await client.post(
                    "/v1/chat/completions",
                    headers={"X-Session-Id": sid} if sid else {},
                    json={"model": "formalist", "messages": [{"role": "user", "content": text}]},
                )
            except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError) as e:
                if attempt + 1 < len(clients):
                    tally.resent += 1
                    continue
                errors.append(f"{name} turn {t}: {type(e).__name__} {e}")
            except httpx.HTTPError as e:
                errors.append(f"{name} turn {t}: {type(e).__name__} {e}")
            else:
                if r.status_code != 200:
                    errors.append(f"{name} turn {t}: HTTP {r.status_code} {r.text[:120]}")
                elif sid and r.headers.get("x-session-id") != sid:
                    errors.append(f"{name} turn {t}: answered in another session")
                else:
                    sid = sid or r.headers["x-session-id"]
                    tally.acked.setdefault(sid, []).append(text)
            break
        lat.append((slow, time.perf_counter() - t0))


async def stored_turns(url: str, sids: list[str]) -> dict[str, list[str]]:
    """Each session's recorded turns (their texts, in order), read back from one server."""
    out: dict[str, list[str]] = {}
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        for sid in sids:
            r = await client.get(f"/v1/sessions/{sid}")
            out[sid] = [t["user"] for t in r.json()["turns"]] if r.status_code == 200 else []
    return out


def count(tally: Tally, stored: dict[str, list[str]]) -> dict[str, int]:
    """Turns sent, acknowledged, stored and lost. A session's acknowledged turns must be stored,
    in the order they were acknowledged; one stored but never acknowledged (the client gave up
    as the last byte went out) is counted apart, not as lost."""
    acked = sum(len(v) for v in tally.acked.values())
    n_stored = sum(len(v) for v in stored.values())
    lost = 0
    for sid, texts in tally.acked.items():
        have = list(stored.get(sid, []))
        i = 0
        for text in texts:  # the acknowledged texts must appear in order
            while i < len(have) and have[i] != text:
                i += 1
            if i == len(have):
                lost += 1
            else:
                i += 1
    return {
        "sent": tally.sent,
        "resent": tally.resent,
        "acknowledged": acked,
        "stored": n_stored,
        "lost": lost,
        "stored_unacknowledged": max(0, n_stored - (acked - lost)),
    }


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


def rss_mb(pid: int) -> float:
    """Resident memory of process ``pid`` in MB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def fast_median(url: str, n: int = 10) -> float:
    out = []
    body = {"request": (ROOT / "tests/fixtures/milp/knapsack.json").read_text()}
    with httpx.Client(base_url=url, timeout=60) as client:
        for _ in range(n):
            t0 = time.perf_counter()
            client.post("/v1/solve", json=body).raise_for_status()
            out.append(time.perf_counter() - t0)
    return statistics.median(out)


def hostile(url: str, port: int, pid: int, idle: int, streams: int, upload_mb: int) -> None:
    """Idle connections that never send a header, MCP event-stream requests, and a chunked upload
    far past the body limit: what the server holds, what it frees, and a fast request's latency
    meanwhile (ratio to the same request with the server quiet, measured here first)."""
    base = fast_median(url)
    rss0 = rss_mb(pid)
    held = []
    for _ in range(idle):
        try:
            held.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        except OSError:
            break
    t0 = time.perf_counter()
    sse = 0
    with httpx.Client(base_url=url, timeout=10) as client:
        for _ in range(streams):
            r = client.get("/mcp/", headers={"Accept": "text/event-stream"})
            sse += r.status_code != 405
    sse_s = time.perf_counter() - t0
    during = fast_median(url)
    waiting = []
    for s in held:  # a connection past the cap is answered 503 and closed at once
        s.settimeout(0.01)
        try:
            if not s.recv(16).startswith(b"HTTP/1.1 503"):
                waiting.append(s)
        except OSError:
            waiting.append(s)
    refused = len(held) - len(waiting)
    time.sleep(12)  # past the 10 s header timeout
    closed = 0
    for s in waiting:
        s.settimeout(0.05)
        try:
            closed += s.recv(1) == b""
        except ConnectionResetError:
            closed += 1
        except OSError:
            pass
    for s in held:
        s.close()
    sent = 0
    up = socket.create_connection(("127.0.0.1", port), timeout=10)
    up.sendall(
        b"POST /v1/solve HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    piece = b"x" * (1 << 20)
    try:
        for _ in range(upload_mb):
            up.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
            sent += 1
    except OSError:
        pass
    up.settimeout(5)
    try:
        status = up.recv(64).split(b"\r\n")[0].decode()
    except OSError as e:
        status = f"no reply ({type(e).__name__})"
    up.close()
    rss1 = rss_mb(pid)
    print(
        f"hostile: {len(held)} idle connections opened ({refused} answered 503 past the cap), "
        f"{closed} of the other {len(waiting)} closed by the header timeout; {streams} GET /mcp/ event streams: "
        f"{sse} held open, all answered in {sse_s:.2f} s"
    )
    print(
        f"hostile: a fast request {during * 1000:.0f} ms while they were held vs {base * 1000:.0f} ms "
        f"quiet: ratio {during / base:.2f}"
    )
    print(
        f"hostile: a {upload_mb} MiB chunked upload: {status!r} after the client got {sent} MiB "
        f"out; server memory {rss0:.0f} -> {rss1:.0f} MB (ratio {rss1 / rss0:.2f})"
    )


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


async def drive(
    urls: list[str],
    sessions: int,
    turns: int,
    slow: int,
    tally: Tally | None = None,
    deadline: float = 120.0,
) -> tuple[list[tuple[bool, float]], list[str], float]:
    lat: list[tuple[bool, float]] = []
    errors: list[str] = []
    tally = tally if tally is not None else Tally()
    limits = httpx.Limits(max_connections=sessions + 10)
    clients = [httpx.AsyncClient(base_url=u, timeout=60, limits=limits) for u in urls]
    try:
        t0 = time.perf_counter()
        try:
            await asyncio.wait_for(
                asyncio.gather(
                    *(
                        session(clients, i, turns, i < slow, lat, errors, tally)
                        for i in range(sessions)
                    )
                ),
                timeout=deadline,
            )
        except TimeoutError:
            errors.append(f"the run passed its {deadline:g} s deadline (turns in flight cut off)")
        return lat, errors, time.perf_counter() - t0
    finally:
        for c in clients:
            await c.aclose()


def start_server(tmp: str, db: str, replies: int) -> tuple[subprocess.Popen[bytes], str, int]:
    """One `formalist serve` on ``db`` with a replay model of ``replies`` knapsack replies."""
    knapsack = (ROOT / "tests/fixtures/milp/knapsack.json").read_text()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    rec = Path(tmp, f"replies-{port}.json")
    rec.write_text(json.dumps([knapsack] * replies))
    cmd = [
        sys.executable,
        "-m",
        "agent.cli",
        "serve",
        "--port",
        str(port),
        "--db",
        db,
        "--model",
        f"replay:{rec}",
        "--no-cache",
        "--time-limit",
        "2",
    ]
    proc = subprocess.Popen(
        cmd,
        cwd=tmp,
        env={**os.environ, "HOME": tmp, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            if proc.poll() is not None:
                raise SystemExit(f"formalist serve on {db} exited with {proc.returncode}") from None
            time.sleep(0.2)
    return proc, url, port


async def _killer(proc: subprocess.Popen[bytes], after: float) -> None:
    await asyncio.sleep(after)
    proc.send_signal(signal.SIGKILL)


async def drive_and_kill(
    urls: list[str],
    args: argparse.Namespace,
    tally: Tally,
    victim: subprocess.Popen[bytes] | None,
) -> tuple[list[tuple[bool, float]], list[str], float]:
    killer = (
        asyncio.create_task(_killer(victim, args.kill_after))
        if victim is not None and args.kill_after is not None
        else None
    )
    try:
        return await drive(urls, args.sessions, args.turns, args.slow, tally, args.deadline)
    finally:
        if killer is not None:
            await killer


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--sessions", type=int, default=100)
    ap.add_argument("--turns", type=int, default=5)
    ap.add_argument("--slow", type=int, default=5)
    ap.add_argument(
        "--hostile",
        type=int,
        default=300,
        metavar="N",
        help="then hold N idle connections and N MCP stream requests, and push a 300 MiB "
        "chunked upload (0: skip; one server only)",
    )
    ap.add_argument("--db", default="", help="the sessions database (default: a fresh SQLite file)")
    ap.add_argument("--servers", type=int, default=1, help="serve processes to start on --db")
    ap.add_argument(
        "--url",
        action="append",
        default=[],
        help="drive this running server instead (repeat for several on one database)",
    )
    ap.add_argument(
        "--kill-after",
        type=float,
        metavar="S",
        help="SIGKILL the first server S seconds into the run (it must have started it)",
    )
    ap.add_argument("--deadline", type=float, default=120.0, help="seconds the whole run may take")
    ap.add_argument("--json", metavar="FILE", help="also write the counts and latencies here")
    args = ap.parse_args(argv)
    if args.servers < 1 or (args.servers > 1 and not args.db):
        ap.error("several --servers need one shared --db (postgresql://...)")
    tally = Tally()
    with tempfile.TemporaryDirectory() as tmp:
        procs: list[subprocess.Popen[bytes]] = []
        try:
            urls = list(args.url)
            port = 0
            if not urls:
                db = args.db or str(Path(tmp, "s.sqlite"))
                for _ in range(args.servers):
                    proc, url, port = start_server(tmp, db, args.sessions * args.turns + 10)
                    procs.append(proc)
                    urls.append(url)
            idle_ms, busy_ms = asyncio.run(probe(urls[-1], 2))
            victim = procs[0] if procs else None
            lat, errors, wall = asyncio.run(drive_and_kill(urls, args, tally, victim))
            survivor = urls[-1]
            stored = asyncio.run(stored_turns(survivor, list(tally.acked)))
            if args.hostile and len(urls) == 1 and procs:
                hostile(survivor, port, procs[-1].pid, args.hostile, args.hostile, 300)
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)
    counts = count(tally, stored)
    fast = [t for slow, t in lat if not slow]
    every = [t for _, t in lat]
    print(
        f"{args.sessions} sessions x {args.turns} turns ({args.slow} sessions send a MIP that runs 2 s) "
        f"over {len(urls)} server(s): {len(lat)} requests in {wall:.1f} s = {len(lat) / wall:.1f} requests/s"
    )
    print(
        f"latency all:  p50 {pct(every, 0.5) * 1000:.0f} ms, p99 {pct(every, 0.99) * 1000:.0f} ms"
    )
    if fast:
        print(
            f"latency fast: p50 {pct(fast, 0.5) * 1000:.0f} ms, p99 {pct(fast, 0.99) * 1000:.0f} ms, "
            f"max {max(fast) * 1000:.0f} ms (a fast request that waited on a 2 s solve would show >= 2000 ms)"
        )
    print(
        f"probe: a fast request alone takes {idle_ms * 1000:.0f} ms (median of 20); while 2 slow 2 s solves run, "
        f"{busy_ms * 1000:.0f} ms: it shares the CPU with them but never waits for one to finish"
    )
    print(
        "turns: {sent} sent, {acknowledged} acknowledged, {stored} stored, {lost} lost "
        "({stored_unacknowledged} stored but not acknowledged; {resent} sent again to the next "
        "server, theirs unreachable)".format(**counts)
    )
    print(f"errors: {len(errors)}")
    for e in errors[:10]:
        print("  " + e)
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    **counts,
                    "servers": len(urls),
                    "errors": len(errors),
                    "wall_s": wall,
                    "p50_ms": pct(every, 0.5) * 1000,
                    "p99_ms": pct(every, 0.99) * 1000,
                }
            )
        )
    failed = counts["lost"] or (errors and args.kill_after is None)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
