"""Benchmark datasets, each version named explicitly (``mamo-easy@sirl-fixed``, ``llmp/barman``).

A dataset is a list of ``Item``s: the request text, the kind of problem, and the label it is scored
against (an objective value, "infeasible or unbounded", a gold problem file, a reference optimum).
The files live under the data folder: ``--data-dir``, else ``FORMALIST_DATA``, else
``../shared/data`` beside the repository. Which file each name reads and why is in ``SPECS``; the
folder's ``SOURCE.md`` files say where each copy comes from and which copies are corrected.

A path to a JSONL file of objective-value questions (``{"en_question", "en_answer"}``,
``{"Question", "Answer"}`` or ``{"question", "answer"}`` per line: NL4Opt's objective-value files,
Mamo, IndustryOR, LLMOPT copies) loads as a dataset too.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.errors import InputError

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data"
PUBLIC_SOURCES = (
    "the public sources are listed in each SOURCE.md of the shared data folder: Mamo "
    "(github.com/FreedomIntelligence/Mamo), SIRL corrections (github.com/Cardinal-Operations/SIRL), "
    "IndustryOR (github.com/Cardinal-Operations/ORLM), NLP4LP (github.com/LLM4OR/LLM4OR), ComplexOR "
    "(github.com/xzymustbexzy/Chain-of-Experts), NL4Opt (github.com/nl4opt/nl4opt-competition), "
    "LLM+P (github.com/Cranial-XIX/llm-pddl), Words to Routes (github.com/Zhehui-Huang/LLM_Routing), "
    "Solomon (github.com/VROOM-Project/vroom-scripts), CVRP X (github.com/PyVRP/Instances)"
)

LLMP_DOMAINS = ("barman", "blocksworld", "floortile", "grippers", "storage", "termes", "tyreworld")


@dataclass(frozen=True, slots=True)
class Item:
    """One benchmark task.

    ``expect`` says what a right answer is: ``value`` (objective equal to ``answer`` under the
    scoring rules), ``infeasible`` (the gold says "No Best Solution": an INFEASIBLE or UNBOUNDED
    status), ``plan`` (a plan valid for the gold problem), ``route`` (a feasible route; ``answer``
    is the reference optimum) or ``unlabelled`` (no gold answer: scored as missing).
    """

    id: str
    text: str
    kind: str
    expect: str
    answer: float | None = None
    gold: dict[str, Any] = field(default_factory=dict)
    """What the oracle mode solves instead of the model's output, and other labels."""
    fields: dict[str, Any] = field(default_factory=dict)
    """The source record's other fields (difficulty, type...), for the report."""


@dataclass(frozen=True, slots=True)
class Dataset:
    name: str
    path: str
    """The file or folder read (relative to the data folder when one was used)."""
    items: list[Item]


NO_SOLUTION = ("no best solution", "-99999", "-9999", "infeasible", "unbounded")


def parse_label(value: Any) -> tuple[str, float | None]:
    """``("value", x)``, ``("infeasible", None)`` for "No Best Solution" / -99999 / -9999, or
    ``("unlabelled", None)`` when the value is empty or not a number. Lists like ``"[18.0]"`` take
    their single element."""
    if value is None:
        return "unlabelled", None
    if isinstance(value, list):
        return parse_label(value[0]) if len(value) == 1 else ("unlabelled", None)
    s = str(value).strip().strip("'\"").strip()
    if s.startswith("[") and s.endswith("]"):
        inner = [p for p in s[1:-1].split(",") if p.strip()]
        return parse_label(inner[0]) if len(inner) == 1 else ("unlabelled", None)
    if s.lower() in NO_SOLUTION:
        return "infeasible", None
    try:
        x = float(s.replace(",", ""))
    except ValueError:
        return "unlabelled", None
    if x in (-99999.0, -9999.0):
        return "infeasible", None
    return "value", x


def data_dir(explicit: str | Path | None = None) -> Path:
    """The data folder: ``explicit``, else ``FORMALIST_DATA``, else ``../shared/data``. Raises
    ``InputError`` naming the public sources when none exists."""
    for candidate, why in (
        (explicit, "--data-dir"),
        (os.environ.get("FORMALIST_DATA"), "FORMALIST_DATA"),
    ):
        if candidate:
            p = Path(candidate).expanduser()
            if not p.is_dir():
                raise InputError(f"{why} points to {p}, which is not a folder")
            return p
    if DEFAULT_DATA.is_dir():
        return DEFAULT_DATA
    raise InputError(
        f"no benchmark data: pass --data-dir or set FORMALIST_DATA (the default {DEFAULT_DATA} "
        f"does not exist); {PUBLIC_SOURCES}"
    )


def _jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise InputError(f"{path}, line {n}: not JSON ({e})") from e
    return rows


_QUESTION_KEYS = (("en_question", "en_answer"), ("Question", "Answer"), ("question", "answer"))


def objective_items(rows: list[dict[str, Any]], source: str) -> list[Item]:
    """Items of an objective-value file: question/answer pairs under any of the usual key names."""
    items = []
    for n, row in enumerate(rows):
        keys = next(((q, a) for q, a in _QUESTION_KEYS if q in row), None)
        if keys is None:
            raise InputError(
                f"{source}, record {n + 1}: no question field (expected one of "
                f"{', '.join(q for q, _ in _QUESTION_KEYS)})"
            )
        qk, ak = keys
        expect, answer = parse_label(row.get(ak))
        ident = row.get("id", row.get("index", n))
        extra = {k: v for k, v in row.items() if k not in (qk, ak)}
        items.append(Item(str(ident), str(row[qk]), "milp", expect, answer, fields=extra))
    return items


def load_objective_file(path: str | Path) -> list[Item]:
    """A JSONL file of objective-value questions (NL4Opt's ``{"en_question", "en_answer"}``, Mamo,
    IndustryOR, LLMOPT...)."""
    p = Path(path)
    return objective_items(_jsonl(p), str(p))


# -- one reader per format -------------------------------------------------------------------------
def _objective(rel: str) -> Callable[[Path], list[Item]]:
    return lambda root: load_objective_file(root / rel)


def _nlp4lp(root: Path) -> list[Item]:
    items = []
    for row in _jsonl(root / "nlp4lp" / "optimus_format_original_269.jsonl"):
        sol = row.get("solution") or {}
        expect, answer = parse_label(sol.get("objective") if isinstance(sol, dict) else None)
        text = row["description"]
        if row.get("parameters"):
            text += "\n\nData:\n" + json.dumps(row["parameters"])
        items.append(
            Item(str(row["id"]), text, "milp", expect, answer, fields={"has_solution": bool(sol)})
        )
    return items


def _complexor(root: Path) -> list[Item]:
    items = []
    for row in _jsonl(root / "complexor" / "coe_complexor_cleaned_18.jsonl"):
        sample = (row.get("sample") or [{}])[0]
        output = sample.get("output")
        expect, answer = parse_label(output)
        text = row["description"]
        if sample.get("input") is not None:
            text += "\n\nData:\n" + json.dumps(sample["input"])
        # Every item has a hand-written five-element reference (benchmarks/complexor.py), even
        # the one whose gt_model is missing (prod: written from its description).
        gold = {"gt_model": row.get("gt_model")}
        items.append(Item(str(row["id"]), text, "milp", expect, answer, gold=gold))
    return items


def _nl4opt(root: Path) -> list[Item]:
    from benchmarks.nl4opt import load

    # The dev split has no objective values: the label is the optimum of the gold declarations,
    # computed when the item is scored (``reference_objective``).
    return [
        Item(it.id, it.document, "milp", "gold-model", gold={"nl4opt": it.record})
        for it in load(root / "nl4opt" / "generation_dev.jsonl")
    ]


def _nl4opt_integer(root: Path) -> list[Item]:
    from benchmarks.nl4opt import BANK_FILE, load

    # The label is the optimum of the example bank's model of the item: the gold declarations
    # with each decision integer where the request counts whole things (the bank's integrality
    # rule) and the seven annotation slips corrected. The five problems the bank leaves out have no
    # optimum as stated (infeasible or unbounded): the right answer is that status.
    bank = json.loads(BANK_FILE.read_text(encoding="utf-8"))
    models = {str(e["id"]): e for e in bank["items"]}
    items = []
    for it in load(root / "nl4opt" / "generation_dev.jsonl"):
        entry = models.get(it.id)
        if entry is not None:
            gold = {"model": entry["model"]}
            items.append(Item(it.id, it.document, "milp", "value", entry["optimum"], gold=gold))
        elif it.id in bank["left_out"]:
            gold = {"nl4opt": it.record, "why": bank["left_out"][it.id]}
            items.append(Item(it.id, it.document, "milp", "infeasible", gold=gold))
        else:
            items.append(Item(it.id, it.document, "milp", "unlabelled"))
    return items


def library_domain_of(domain_text: str) -> str:
    """The key of the PDDL library's domain that ``domain_text`` states (the same name, types,
    constants, predicates, functions and actions, whatever its layout), or "" for none. A request
    for a library domain gets that domain's description and worked example in its prompt; given
    as bare text it would get neither. (The library's LLM+P examples are each domain's
    ``p_example``, which is not one of the ``pNN`` items.)"""
    from agent.errors import ArtifactError
    from formalizers.pddl.library import library
    from formalizers.pddl.model import read_domain
    from formalizers.pddl.sexpr import Atom

    try:
        given = read_domain(domain_text)
    except ArtifactError:
        return ""

    def bare(e: Any) -> Any:  # an s-expression without the places its parts were written
        if e is None or isinstance(e, Atom):
            return None if e is None else e.text.lower()
        return tuple(bare(x) for x in e.items)

    def meaning(d: Any) -> tuple[Any, ...]:
        actions = {
            n: (a.params, bare(a.precondition), bare(a.effect)) for n, a in d.actions.items()
        }
        axioms = [(a.name, a.params, bare(a.body)) for a in d.axioms]
        return d.name, d.parents, d.constants, d.predicates, d.functions, actions, axioms

    for entry in library().values():
        if meaning(given) == meaning(entry.domain):
            return entry.key
    return ""


def _llmp(domain: str) -> Callable[[Path], list[Item]]:
    def read(root: Path) -> list[Item]:
        folder = root / "llmp" / "domains" / domain
        if not folder.is_dir():
            raise InputError(f"no LLM+P domain {domain!r} in {folder.parent}")
        # tyreworld/domain.pddl uses undeclared objects in action bodies (SOURCE.md): the typed
        # domain the authors validated with is the one a planner accepts.
        dom = folder / "domain_validation.pddl"
        if not dom.is_file():
            dom = folder / "domain.pddl"
        domain_text = dom.read_text(encoding="utf-8")
        library_key = library_domain_of(domain_text)
        items = []
        for nl in sorted(folder.glob("p[0-9]*.nl")):
            problem = nl.with_suffix(".pddl")
            items.append(
                Item(
                    f"{domain}/{nl.stem}",
                    nl.read_text(encoding="utf-8"),
                    "pddl",
                    "plan",
                    gold={
                        "domain": domain_text,
                        "domain_file": dom.name,
                        "library_domain": library_key,
                        "problem": problem.read_text(encoding="utf-8"),
                    },
                )
            )
        return items

    return read


def _words2routes(root: Path) -> list[Item]:
    base = root / "words2routes" / "v1_words_to_routes"
    optima = json.loads((base / "optimal_values.json").read_text(encoding="utf-8"))
    items = []
    for robots in ("1-tsp", "4-tsp"):
        for size, by_type in sorted(optima[robots].items()):
            for typ, best in sorted(by_type.items()):
                f = base / "task_detail" / robots / typ / f"{size}.txt"
                items.append(
                    Item(
                        f"{robots}/{typ}/{size}",
                        f.read_text(encoding="utf-8"),
                        "routing",
                        "route",
                        float(best),
                        fields={"robots": int(robots[0]), "type": typ},
                    )
                )
    return items


def _solomon(root: Path) -> list[Item]:
    folder = root / "vrp_instances" / "solomon_100"
    with (folder / "bks.csv").open(encoding="utf-8") as f:
        bks = {r["instance"]: r for r in csv.DictReader(f)}
    items = []
    for p in sorted(folder.glob("*.txt")):
        row = bks.get(p.stem, {})
        cost = row.get("dist_min_dimacs_cost")
        items.append(
            Item(
                p.stem,
                p.read_text(encoding="utf-8"),
                "routing",
                "route",
                float(cost) if cost else None,
                gold={"format": "solomon", "file": p.name, "round_func": "dimacs"},
                fields={"vehicles": row.get("dist_min_dimacs_vehicles")},
            )
        )
    return items


def _cvrp_x(root: Path) -> list[Item]:
    folder = root / "vrp_instances" / "cvrp_X"
    with (folder / "bks.csv").open(encoding="utf-8") as f:
        bks = {r["instance"]: r for r in csv.DictReader(f)}
    items = []
    for p in sorted(folder.glob("*.vrp")):
        row = bks.get(p.stem, {})
        cost = row.get("bks_cost_euc2d_rounded")
        items.append(
            Item(
                p.stem,
                p.read_text(encoding="utf-8"),
                "routing",
                "route",
                float(cost) if cost else None,
                gold={"format": "vrplib", "file": p.name, "round_func": "round"},
                fields={"dimension": row.get("dimension"), "routes": row.get("routes_in_bks")},
            )
        )
    return items


@dataclass(frozen=True, slots=True)
class Spec:
    path: str
    read: Callable[[Path], list[Item]]
    note: str


SPECS: dict[str, Spec] = {
    "mamo-easy@original": Spec(
        "mamo/original/mamo_easy_lp_652.jsonl",
        _objective("mamo/original/mamo_easy_lp_652.jsonl"),
        "Mamo EasyLP as released (652)",
    ),
    "mamo-easy@sirl-fixed": Spec(
        "mamo/sirl_fixed/MAMO_EasyLP_fixed_642.jsonl",
        _objective("mamo/sirl_fixed/MAMO_EasyLP_fixed_642.jsonl"),
        "Mamo EasyLP corrected by SIRL, Sept 2025 (642)",
    ),
    "mamo-complex@original": Spec(
        "mamo/original/mamo_complex_lp_211.jsonl",
        _objective("mamo/original/mamo_complex_lp_211.jsonl"),
        "Mamo ComplexLP as released (211)",
    ),
    "mamo-complex@sirl-fixed": Spec(
        "mamo/sirl_fixed/MAMO_ComplexLP_fixed_203.jsonl",
        _objective("mamo/sirl_fixed/MAMO_ComplexLP_fixed_203.jsonl"),
        "Mamo ComplexLP corrected by SIRL (203)",
    ),
    "industryor@2024": Spec(
        "industryor/cardinalops_original_2024_100.jsonl",
        _objective("industryor/cardinalops_original_2024_100.jsonl"),
        "IndustryOR, the 2024 question set of the ORLM paper (100)",
    ),
    "industryor@sirl-fixed-v2": Spec(
        "industryor/sirl_fixedV2_2025-10_100.jsonl",
        _objective("industryor/sirl_fixedV2_2025-10_100.jsonl"),
        "IndustryOR, the newer question set as corrected by SIRL, Oct 2025 (100)",
    ),
    "nlp4lp@original": Spec(
        "nlp4lp/optimus_format_original_269.jsonl",
        _nlp4lp,
        "NLP4LP in OptiMUS format as released (269; 27 without an objective are unlabelled)",
    ),
    "complexor@coe": Spec(
        "complexor/coe_complexor_cleaned_18.jsonl",
        _complexor,
        "ComplexOR, Chain-of-Experts' cleaned release (18); label = the first sample's output",
    ),
    "nl4opt-dev@gold": Spec(
        "nl4opt/generation_dev.jsonl",
        _nl4opt,
        "NL4Opt dev split (99); label = the optimum of the gold declarations",
    ),
    "nl4opt-dev@integer": Spec(
        "nl4opt/generation_dev.jsonl",
        _nl4opt_integer,
        "NL4Opt dev split (99); label = the optimum of the gold declarations with whole things "
        "integer and 7 slips corrected (the example bank's models); 5 have no optimum as stated",
    ),
    "words2routes@v1": Spec(
        "words2routes/v1_words_to_routes",
        _words2routes,
        "From Words to Routes, 31 detailed tasks (21 types); label = reference optimum",
    ),
    "solomon": Spec(
        "vrp_instances/solomon_100",
        _solomon,
        "Solomon VRPTW, 100 customers (56); label = DIMACS distance BKS",
    ),
    "cvrp-x": Spec(
        "vrp_instances/cvrp_X", _cvrp_x, "Uchoa et al. X instances (100); label = CVRPLIB BKS"
    ),
}
for _d in (*LLMP_DOMAINS, "manipulation"):
    SPECS[f"llmp/{_d}"] = Spec(
        f"llmp/domains/{_d}", _llmp(_d), f"LLM+P {_d}: NL task, gold problem PDDL"
    )


def names() -> list[str]:
    """Every dataset name, plus ``llmp/*`` (the seven LLM+P domains of the paper)."""
    return [*SPECS, "llmp/*"]


def resolve(name: str) -> str:
    """``name`` as ``names()`` spells it: a name without its ``@version`` stands for the one version
    there is (``nl4opt-dev`` is ``nl4opt-dev@gold``); a name with several versions must say which
    (``InputError`` listing them). Any other name is returned unchanged."""
    if name in SPECS or "@" in name or name == "llmp/*":
        return name
    versions = [n for n in SPECS if n.startswith(f"{name}@")]
    if len(versions) > 1:
        raise InputError(f"dataset {name!r} has several versions; name one: {', '.join(versions)}")
    return versions[0] if versions else name


def load(name: str, data: str | Path | None = None) -> Dataset:
    """The dataset called ``name`` (see ``names()`` and ``resolve``), or the objective-value JSONL
    file at path ``name``. Raises ``InputError`` for an unknown name or a missing data folder."""
    if name not in SPECS and name != "llmp/*":
        p = Path(name).expanduser()
        if p.is_file():
            return Dataset(p.stem, str(p), load_objective_file(p))
        if resolve(name) != name:
            return load(resolve(name), data)
        raise InputError(f"unknown dataset {name!r}; known: {', '.join(names())}, or a JSONL path")
    root = data_dir(data)
    if name == "llmp/*":
        items = [it for d in LLMP_DOMAINS for it in _llmp(d)(root)]
        return Dataset(name, "llmp/domains", items)
    spec = SPECS[name]
    if not (root / spec.path).exists():
        raise InputError(f"{name}: {root / spec.path} does not exist; {PUBLIC_SOURCES}")
    return Dataset(name, spec.path, spec.read(root))


def reference_objective(item: Item) -> tuple[str, float | None, str]:
    """The label of an item: ``(expect, answer, note)``.

    For NL4Opt dev items the gold declarations are converted, compiled and solved with HiGHS
    directly (not through the agent): their optimum is the label, and an infeasible or unbounded
    result expects that status (``note`` says so: such an item deserves a look, since some are
    annotation slips and some are word problems whose own numbers admit no optimum). Declarations
    that do not convert or compile leave the item unlabelled, with the reason in ``note``.
    """
    if item.expect != "gold-model":
        return item.expect, item.answer, ""
    from agent.errors import ArtifactError
    from benchmarks.nl4opt import ConversionError, convert
    from benchmarks.nl4opt import Item as NlItem
    from formalizers.milp.linear import compile_model
    from solvers import highs
    from solvers.base import Status

    rec = item.gold["nl4opt"]
    try:
        result = highs.solve(compile_model(convert(NlItem(item.id, item.text, rec))))
    except ConversionError as e:
        return "unlabelled", None, f"gold declarations do not convert: {e}"
    except ArtifactError as e:
        return (
            "unlabelled",
            None,
            "gold declarations do not compile: " + " ".join(e.feedback().split()),
        )
    if result.status in (Status.INFEASIBLE, Status.UNBOUNDED):
        why = result.diagnosis.summary if result.diagnosis else ""
        return "infeasible", None, f"gold declarations are {result.status.value.lower()}: {why}"
    if result.objective is None:
        return "unlabelled", None, f"gold declarations solve to {result.status.value}"
    return "value", float(result.objective), ""
