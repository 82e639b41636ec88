"""The engine's half of ``formalist sample``: its flags, its options, and drawing and printing the
samples of a grammar it is given (``sample``). Which grammar a name stands for (``--artifact``)
is not the model layer's to know: ``agent.sample_grammars`` registers the command, builds the
grammar and the conversation from the formal languages' own modules, and calls ``sample``.

The engine takes the ``[local]`` table of the configuration (``--config FILE``, else the usual
lookup) and the flags on top of it (``--device``, ``--dtype``, ``--max-batch``...). Prints the N
samples: with ``--json`` one JSON array (JSON artifacts as JSON objects, others as strings; a
sample that was cut off is an object ``{"cut_off": true, ...}`` and one the grammar's validator
rejected ``{"invalid": REASON, ...}``), else one block per sample.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from agent.errors import InputError
from agent.llm.grammar import Bounds, Grammar, Staged


def add_engine_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of the model, the sampling and the engine (all but what the grammar is)."""
    p.add_argument("--model", required=True, help="local:PATH_OR_ID")
    p.add_argument("--n", type=int, default=4, help="number of samples (default 4)")
    p.add_argument("--seed", type=int, default=0, help="seed of the first sample (default 0)")
    p.add_argument("--json", action="store_true", help="print one JSON array")
    p.add_argument("--temperature", type=float, default=1.0, help="default 1.0")
    p.add_argument("--top-p", type=float, default=1.0, dest="top_p", help="default 1.0")
    p.add_argument(
        "--max-tokens",
        type=int,
        default=None,
        dest="max_tokens",
        help="tokens per sample (default: [local] max_new_tokens, else 1024)",
    )
    p.add_argument("--time-budget", type=float, default=None, dest="time_budget", help="seconds")
    p.add_argument(
        "--redraws", type=int, default=0, help="draw an invalid sample again, up to this many times"
    )
    p.add_argument(
        "--bound",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="grammar size limit (max_string, max_items, any_depth, max_statements, max_name)",
    )
    p.add_argument(
        "--grammar-engine",
        choices=["xgrammar", "llguidance"],
        default=None,
        dest="grammar_engine",
        help="default: [local] grammar_engine, else xgrammar",
    )
    p.add_argument("--config", help="configuration TOML file (its [local] table sets the engine)")
    p.add_argument("--device", default=None, help="cuda or cpu (default: cuda when present)")
    p.add_argument(
        "--dtype",
        choices=["bfloat16", "float16", "float32"],
        default=None,
        help="weights' dtype (default: bfloat16 on CUDA, float32 on the CPU)",
    )
    p.add_argument("--max-batch", type=int, default=None, dest="max_batch", help="default 32")
    p.add_argument("--max-len", type=int, default=None, dest="max_len", help="default 4096")
    p.add_argument("--threads", type=int, default=None, help="mask-filling threads")
    p.add_argument(
        "--torch-threads", type=int, default=None, dest="torch_threads", help="torch CPU threads"
    )


def bounds_arg(items: list[str]) -> Bounds:
    """``Bounds`` from ``--bound NAME=NUMBER`` flags."""
    values: dict[str, int] = {}
    for item in items:
        name, _, value = item.partition("=")
        if name not in Bounds.__dataclass_fields__ or not value.strip().isdigit():
            raise InputError(f"--bound takes NAME=NUMBER with NAME a field of Bounds, not {item!r}")
        values[name] = int(value)
    try:
        return Bounds(**values)
    except ValueError as e:
        raise InputError(f"--bound: {e}") from e


ENGINE_FLAGS = ("device", "dtype", "max_batch", "max_len", "threads", "torch_threads")
"""The flags of ``sample`` that override the ``[local]`` key of the same name."""


def engine_options(args: argparse.Namespace) -> tuple[dict[str, Any], int]:
    """The engine's options and the token budget of a sample: the configuration's ``[local]``
    table (``--config``, else the usual lookup), then the flags on top."""
    from agent.config import load_config

    local = dict(load_config(args.config).local)
    budget = int(local.pop("max_new_tokens", 1024))
    max_tokens = budget if args.max_tokens is None else args.max_tokens
    if "grammar_engine" in local:
        local["grammar_engine_name"] = local.pop("grammar_engine")
    if args.grammar_engine is not None:
        local["grammar_engine_name"] = args.grammar_engine
    for name in ENGINE_FLAGS:
        if getattr(args, name) is not None:
            local[name] = getattr(args, name)
    return local, max_tokens


def sample(
    args: argparse.Namespace,
    model_path: str,
    target: Grammar | Staged,
    messages: list[dict[str, str]],
    as_json: bool,
) -> int:
    """Draw ``args.n`` samples of ``messages`` from the model at ``model_path`` under ``target``
    (built by the caller, under the bounds it chose) and print them; ``as_json``: the artifacts
    are JSON (printed as objects)."""
    from agent.llm.local.artifacts import sample_artifacts
    from agent.llm.local.chat_model import load_engine
    from agent.llm.local.sampling import SamplingParams

    if args.n < 1:
        raise InputError("--n must be at least 1")
    options, max_tokens = engine_options(args)
    engine = load_engine(model_path, **options)
    try:
        params = SamplingParams(
            n=args.n,
            temperature=args.temperature,
            top_p=args.top_p,
            seed=args.seed,
            max_new_tokens=max_tokens,
            time_budget_s=args.time_budget,
        )
    except ValueError as e:
        raise InputError(str(e)) from e
    result = sample_artifacts(
        engine, engine.chat_prompt(messages), target, params, redraws=args.redraws
    )
    entries = result.to_json(as_json=as_json)
    if args.json:
        print(json.dumps(entries, indent=2, ensure_ascii=False))
    else:
        for i, entry in enumerate(entries):
            if isinstance(entry, dict) and ("cut_off" in entry or "invalid" in entry):
                what = "CUT OFF" if "cut_off" in entry else f"INVALID: {entry['invalid']}"
                print(f"--- sample {i} ({what})\n{entry['text']}")
            else:
                text = entry if isinstance(entry, str) else json.dumps(entry, ensure_ascii=False)
                print(f"--- sample {i}\n{text}")
    cut, bad = len(result.cut_off), len({s.index for s, _ in result.invalid})
    print(
        f"{len(result.artifacts)} artifact(s), {cut} cut off, {bad} with an invalid draw",
        file=sys.stderr,
    )
    return 0
