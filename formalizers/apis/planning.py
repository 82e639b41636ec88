"""An API request as a planning task: each API is an action whose precondition says its inputs are
known and whose effect makes its outputs known; ``get-info ?p`` (ask the person) costs more than all
API calls together and applies only to parameters no API produces."""

from __future__ import annotations

from formalizers.apis.model import ApiRequest

DOMAIN_NAME = "api-orchestration"
ASK = "get-info"


def _conj(atoms: list[str]) -> str:
    return "(and " + " ".join(atoms) + ")" if atoms else "(and)"


def to_pddl(req: ApiRequest) -> tuple[str, str]:
    """The (domain, problem) PDDL texts for ``req``."""
    cat = req.catalog
    params = cat.all_params
    actions = []
    for a in cat.apis:
        pre = _conj([f"(known {p})" for p in a.inputs])
        eff = _conj([f"(known {p})" for p in a.outputs] + [f"(increase (total-cost) {a.cost})"])
        actions.append(
            f"  (:action {a.name}\n   :parameters ()\n   :precondition {pre}\n   :effect {eff})"
        )
    actions.append(
        f"  (:action {ASK}\n   :parameters (?p - param)\n   :precondition (askable ?p)\n"
        f"   :effect (and (known ?p) (increase (total-cost) {cat.ask_cost})))"
    )
    domain = (
        f"(define (domain {DOMAIN_NAME})\n  (:requirements :strips :typing :action-costs)\n"
        f"  (:types param)\n  (:constants {' '.join(params)} - param)\n"
        f"  (:predicates (known ?p - param) (askable ?p - param))\n"
        f"  (:functions (total-cost) - number)\n" + "\n".join(actions) + ")\n"
    )
    produced = cat.produced
    init = [f"(known {p})" for p in req.given]
    init += [f"(askable {p})" for p in params if p not in produced and p not in req.given]
    init.append("(= (total-cost) 0)")
    problem = (
        f"(define (problem request) (:domain {DOMAIN_NAME})\n  (:init {' '.join(init)})\n"
        f"  (:goal {_conj([f'(known {p})' for p in req.want])})\n  (:metric minimize (total-cost)))\n"
    )
    return domain, problem
