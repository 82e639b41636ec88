"""What a sandboxed tool call and a tool-cache hit cost, and what dominates the call.

It times, in one process, ``--repeat`` times each and prints medians (milliseconds):

- call: ``Sandbox.run`` of a small tool (a word sort) with every layer this machine has, from the
  static check to the reaped child;
- the same call with one layer left out at a time (namespaces, Landlock, seccomp), and the bare
  parts: starting ``python -I -S -B`` as the sandbox user, and bubblewrap around it;
- cache hit: finding a cached tool for a new question (the dispatcher's pre-filter over
  ``--tools`` cached tools, then ``ToolCache.get``), which is what reuse costs before the call.

Target: a call under 100 ms on the project's machine (2 cores).

    python benchmarks/sandbox_overhead.py [--repeat 30] [--tools 50] [--json OUT]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tool_maker.cache import ToolCache
from tool_maker.dispatcher import Dispatcher
from tool_maker.sandbox import Sandbox, SandboxPolicy
from tool_maker.tool import Tool, ToolCall

CODE = '''
def sort_words(words: list) -> str:
    """The words in alphabetical order, joined by single spaces."""
    return " ".join(sorted(words))
'''
ARGS = [["velvet", "quartz", "ember", "meadow", "canyon"]]


def median_ms(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def call_with(policy: SandboxPolicy) -> Callable[[], Any]:
    sb = Sandbox(policy)
    sb.check_ready()

    def call() -> None:
        r = sb.run(CODE, "sort_words", ARGS)
        assert r.ok, r.describe()

    call()  # probe the machine and warm the page cache outside the timing
    return call


def bare_start(sb: Sandbox, with_bwrap: bool) -> Callable[[], Any]:
    m = sb.machine
    assert m.interpreter is not None
    cmd = [m.interpreter.path, "-I", "-S", "-B", "-c", "pass"]
    if with_bwrap:
        cmd = [*m.bwrap_args, "--chdir", "/", *cmd]
    kw: dict[str, Any] = {}
    if m.uid is not None:
        kw.update(user=m.uid, group=m.gid, extra_groups=[])

    def start() -> None:
        subprocess.run(cmd, env={}, cwd="/", check=True, **kw)

    return start


def fake_tools(n: int) -> list[Tool]:
    topics = "sort words eggs remainder meeting slot brackets shelf books balls swap unit distance matrix table parse".split()
    out = []
    for i in range(n):
        words = [topics[(i * 7 + k) % len(topics)] for k in range(4)]
        demo = ToolCall(f"Question about {' '.join(words)} number {i}", [i], {}, i)
        out.append(
            Tool(
                f"tool_{i}",
                "sort_words",
                " ".join(words[:2]),
                " ".join(words),
                "sort_words(words: list) -> str",
                CODE,
                (demo,),
                (),
                "bench",
            )
        )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--tools", type=int, default=50)
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args(argv)

    base = SandboxPolicy()
    sb = Sandbox(base)
    print("layers on this machine:")
    for line in sb.machine.describe():
        print("  " + line)
    # The configurations are timed round-robin, so that drift in the machine's speed (a shared
    # virtual machine) falls on all of them alike.
    runs: dict[str, Callable[[], Any]] = {"call, every layer": call_with(base)}
    for layer in ("namespaces", "landlock"):
        if sb.machine.layers[layer].available:
            runs[f"call without {layer}"] = call_with(
                dataclasses.replace(base, skip=frozenset({layer}), allow_missing=frozenset({layer}))
            )
    no_seccomp = dataclasses.replace(
        base, skip=frozenset({"seccomp"}), require=base.require - {"seccomp"}
    )
    runs["call without seccomp"] = call_with(no_seccomp)
    lean = dataclasses.replace(
        base,
        skip=frozenset({"namespaces", "landlock", "seccomp"}),
        require=base.require - {"seccomp", "namespaces"},
    )
    runs["call without namespaces, landlock, seccomp"] = call_with(lean)
    runs["bare interpreter start (python -I -S -B -c pass)"] = bare_start(sb, False)
    if sb.machine.layers["namespaces"].available:
        runs["bare interpreter start inside bubblewrap"] = bare_start(sb, True)
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.repeat):
        for name, fn in runs.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    figures = {name: statistics.median(ts) * 1000 for name, ts in times.items()}

    with tempfile.TemporaryDirectory() as d:
        cache = ToolCache(Path(d) / "tools.sqlite")
        tools = fake_tools(args.tools)
        for t in tools:
            cache.put(t)
        dispatcher = Dispatcher(None, confident=0.0)
        question = "Question about meeting slot brackets shelf number 12"

        def hit() -> None:
            chosen = dispatcher.choose(question, cache.latest())
            assert chosen is not None and cache.get(chosen.name) is not None

        figures[f"cache hit (pre-filter over {args.tools} tools + get)"] = median_ms(
            hit, args.repeat * 3
        )
        figures["cache get by name"] = median_ms(lambda: cache.get("tool_12"), args.repeat * 3)
        cache.close()

    width = max(map(len, figures))
    print(f"\nmedian of {args.repeat} runs, milliseconds:")
    for name, ms in figures.items():
        print(f"  {name:{width}s} {ms:8.2f}")
    full = figures["call, every layer"]
    start = figures["bare interpreter start (python -I -S -B -c pass)"]
    bw = figures.get("bare interpreter start inside bubblewrap")
    print(
        f"\none sandboxed call: {full:.1f} ms (target < 100 ms: {'met' if full < 100 else 'NOT met'}); "
        f"starting the interpreter alone takes {start:.1f} ms"
        + (f", {bw - start:.1f} ms more inside bubblewrap's namespaces" if bw is not None else "")
        + f"; the rest ({full - (bw or start):.1f} ms) is the child's setup (limits, Landlock, seccomp "
        "through ctypes), the JSON crossing and the reaping."
    )
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
