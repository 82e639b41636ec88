"""``formalist sample``: draw artifacts from a local model under a formal language's grammar (for
people who write or debug grammars).

    formalist sample --model local:PATH --artifact milp|routing[:IDS]|asp|pddl:DOMAIN
                     [--n N] [--seed S] [--prompt TEXT] [--json] [--config FILE] [--dtype D]
                     [--objects 'b1 b2 - block'] [--locations 1,2,3 [--depots 1] ...]

The name -> grammar mapping lives here, outside the model layer: each grammar comes from its
language's own module (``formalizers/<language>/grammar.py``), and the conversation starts with that
language's formalizer's system prompt. ``--objects`` fixes a PDDL problem's objects (without them
the model declares its objects first: a staged grammar); ``--locations`` (ids separated by commas,
or a JSON file or text holding a list of ids or of locations) specialises the routing grammar to
the request's locations, with ``--depots``, ``--clients`` and ``--groups`` where the request names
them. The engine's flags and the printing are ``agent.llm.local.cli``'s, which is handed the grammar.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from agent.errors import ConfigError, InputError

if TYPE_CHECKING:  # the grammars load when a sample is drawn: `formalist solve` builds this parser
    from agent.llm.grammar import Bounds, Grammar, Staged
    from formalizers.routing.grammar import RoutingContext

ARTIFACTS = ("milp", "routing", "asp", "pddl")
"""The names ``--artifact`` takes (``routing`` and ``pddl`` with an argument after a colon)."""

JSON_ARTIFACTS = ("milp", "routing")
"""The artifacts that are JSON (printed as objects with ``--json``)."""

DEFAULT_PROMPTS = {
    "milp": "Write a small production planning model.",
    "routing": "Write a small delivery routing instance.",
    "asp": "Write a program that colours a small map with three colours.",
    "pddl": "Write a small problem for this domain.",
}


def grammar_for(
    artifact: str,
    bounds: Bounds | None = None,
    objects: str = "",
    routing: RoutingContext | None = None,
) -> Grammar | Staged:
    """The grammar for an ``--artifact`` argument: ``milp``, ``routing``, ``routing:IDS``, ``asp``
    or ``pddl:DOMAIN`` (a PDDL file or a shipped domain's name). For PDDL, ``objects`` (a typed
    list) fixes the objects; without them the result is the staged ``PddlGrammar`` (objects
    first). For routing, ``routing`` (or the location ids ``IDS``, see ``parse_location_ids``)
    specialises the grammar to the request's locations."""
    from formalizers.asp.grammar import asp_grammar
    from formalizers.milp.grammar import five_element_grammar
    from formalizers.pddl.grammar import PddlGrammar, parse_objects, read_domain_arg
    from formalizers.routing.grammar import routing_context, routing_grammar

    kind, _, arg = artifact.partition(":")
    if kind == "milp":
        return five_element_grammar(bounds)
    if kind == "routing":
        if routing is None and arg.strip():
            routing = routing_context(arg)
        return routing_grammar(bounds, routing)
    if kind == "asp":
        return asp_grammar(bounds)
    if kind == "pddl":
        if not arg:
            raise InputError("--artifact pddl needs a domain: pddl:DOMAIN_FILE or pddl:blocksworld")
        pg = PddlGrammar(read_domain_arg(arg), bounds)
        if objects.strip():
            return pg.problem(parse_objects(objects, pg.domain))
        return pg
    raise InputError(f"unknown artifact {artifact!r}; use milp, routing, asp or pddl:DOMAIN_FILE")


def sample_messages(
    artifact: str, prompt: str = "", routing: RoutingContext | None = None
) -> list[dict[str, str]]:
    """The conversation of ``formalist sample``: the language's formalizer's system prompt and the
    request (``prompt``, else a short one per language), with the domain of ``pddl:DOMAIN`` and
    the locations of ``routing`` appended."""
    from formalizers.base import load_prompt
    from formalizers.pddl.grammar import read_domain_arg

    kind, _, arg = artifact.partition(":")
    if kind == "milp":
        from formalizers.milp.formalizer import system_prompt

        system = system_prompt()
    else:
        system = load_prompt(f"formalizers.{kind}", "system.md")
    messages = [{"role": "system", "content": system}]
    request = prompt or DEFAULT_PROMPTS.get(kind, "Write one artifact.")
    if kind == "pddl":
        request += f"\n\nThe domain:\n{read_domain_arg(arg).text.strip()}"
    if routing is not None:
        request += "\n\nThe locations: " + ", ".join(map(str, routing.locations))
    messages.append({"role": "user", "content": request})
    return messages


def register(subparsers: Any) -> None:
    """Add the ``sample`` command to ``formalist``'s sub-commands."""
    from agent.llm.local.cli import add_engine_arguments

    p = subparsers.add_parser(
        "sample", help="sample artifacts from a local model under a grammar (grammar debugging)"
    )
    p.add_argument(
        "--artifact",
        required=True,
        help="milp, routing, asp, or pddl:DOMAIN_FILE (or pddl:NAME of a shipped domain)",
    )
    p.add_argument("--prompt", default="", help="the request (default: a short one per artifact)")
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
    add_engine_arguments(p)
    p.set_defaults(func=cmd_sample)


def cmd_sample(args: argparse.Namespace) -> int:
    from agent.llm.local.cli import bounds_arg, sample
    from agent.llm.spec import parse_spec
    from formalizers.routing.grammar import routing_context

    spec = parse_spec(args.model)
    if spec.provider != "local":
        raise ConfigError("formalist sample needs a local:PATH model")
    if args.n < 1:
        raise InputError("--n must be at least 1")
    kind = args.artifact.partition(":")[0]
    routing = None
    if args.locations.strip():
        if kind != "routing":
            raise InputError("--locations is for --artifact routing")
        routing = routing_context(args.locations, args.depots, args.clients, args.groups)
    elif any(x is not None for x in (args.depots, args.clients, args.groups)):
        raise InputError("--depots, --clients and --groups need --locations")
    target = grammar_for(args.artifact, bounds_arg(args.bound), args.objects, routing)
    messages = sample_messages(args.artifact, args.prompt, routing)
    return sample(args, spec.name, target, messages, as_json=kind in JSON_ARTIFACTS)
