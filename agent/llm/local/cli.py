"""``formalist sample``: draw artifacts from a local model under a grammar (for people who write or
debug grammars).

    formalist sample --model local:PATH --artifact milp|routing|asp|pddl:DOMAIN_FILE
                     [--n N] [--seed S] [--prompt TEXT] [--json] [--config FILE] [--dtype D]
                     [--objects 'b1 b2 - block'] [--locations 1,2,3 [--depots 1] ...]

The engine takes the ``[local]`` table of the configuration (``--config FILE``, else the usual
lookup) and the flags on top of it (``--device``, ``--dtype``, ``--max-batch``...). ``--objects``
fixes a PDDL problem's objects; ``--locations`` (ids separated by commas, or a JSON
file or text holding a list of ids or of locations) specialises the routing grammar to the
request's locations, with ``--depots``, ``--clients`` and ``--groups`` where the request names
them. Prints the N samples: with ``--json`` one JSON array (five-element and routing artifacts as JSON
objects, PDDL and ASP as strings; a sample that was cut off is an object ``{"cut_off": true, ...}``
and one the project's parser rejected ``{"invalid": REASON, ...}``), else one block per sample.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from agent.errors import ConfigError, InputError

DEFAULT_PROMPTS = {
    "milp": "Write a small production planning model.",
    "routing": "Write a small delivery routing instance.",
    "asp": "Write a program that colours a small map with three colours.",
    "pddl": "Write a small problem for this domain.",
}


def register(subparsers: Any) -> None:
    """Add the ``sample`` command to ``formalist``'s sub-commands."""
    p = subparsers.add_parser(
        "sample", help="sample artifacts from a local model under a grammar (grammar debugging)"
    )
    p.add_argument("--model", required=True, help="local:PATH_OR_ID")
    p.add_argument(
        "--artifact",
        required=True,
        help="milp, routing, asp, or pddl:DOMAIN_FILE (or pddl:NAME of a shipped domain)",
    )
    p.add_argument("--n", type=int, default=4, help="number of samples (default 4)")
    p.add_argument("--seed", type=int, default=0, help="seed of the first sample (default 0)")
    p.add_argument("--prompt", default="", help="the request (default: a short one per artifact)")
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
        "--objects",
        default="",
        help="pddl: the request's objects as a typed list ('b1 b2 - block')",
    )
    p.add_argument(
        "--locations",
        default="",
        help="routing: the request's location ids (1,2,3; or a JSON file/list of ids or locations)",
    )
    p.add_argument("--depots", default=None, help="routing: which locations are depots (ids)")
    p.add_argument("--clients", default=None, help="routing: which locations are clients (ids)")
    p.add_argument(
        "--groups", default=None, help="routing: the request's group names ('' for none)"
    )
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
    p.set_defaults(func=cmd_sample)


def _bounds(items: list[str]) -> Any:
    from agent.llm.local.grammar import Bounds

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


def cmd_sample(args: argparse.Namespace) -> int:
    from agent.llm.spec import parse_spec

    spec = parse_spec(args.model)
    if spec.provider != "local":
        raise ConfigError("formalist sample needs a local:PATH model")
    if args.n < 1:
        raise InputError("--n must be at least 1")
    from agent.llm.local.artifacts import sample_artifacts
    from agent.llm.local.chat_model import _system_prompts, load_engine
    from agent.llm.local.grammar import grammar_for, routing_context
    from agent.llm.local.sampling import SamplingParams

    kind = args.artifact.partition(":")[0]
    routing = None
    if args.locations.strip():
        if kind != "routing":
            raise InputError("--locations is for --artifact routing")
        routing = routing_context(args.locations, args.depots, args.clients, args.groups)
    elif any(x is not None for x in (args.depots, args.clients, args.groups)):
        raise InputError("--depots, --clients and --groups need --locations")
    grammar, pddl = grammar_for(args.artifact, _bounds(args.bound), args.objects, routing)
    target = grammar if grammar is not None else pddl
    assert target is not None
    options, max_tokens = engine_options(args)
    engine = load_engine(spec.name, **options)
    messages = []
    system = _system_prompts().get(kind)
    if system:
        messages.append({"role": "system", "content": system})
    request = args.prompt or DEFAULT_PROMPTS.get(kind, "Write one artifact.")
    if pddl is not None:
        request += f"\n\nThe domain:\n{pddl.domain.text.strip()}"
    if routing is not None:
        request += "\n\nThe locations: " + ", ".join(map(str, routing.locations))
    messages.append({"role": "user", "content": request})
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
    entries = result.to_json(as_json=kind in ("milp", "routing"))
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
