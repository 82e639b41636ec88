"""``formalist bench``: batch benchmark runs and their reports.

formalist bench DATASET [--mode llm|replay|oracle] [--model SPEC] [--limit N]
                [--concurrency C] [--item-timeout S] [--time-limit S] [--planner P] [--data-dir DIR]
                [--config FILE] [--executor local|ray [--address ADDR]] --out DIR
formalist bench report DIR
formalist bench list
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from agent.errors import InputError
from agent.kinds import option_choices


def cmd_bench(args: argparse.Namespace) -> int:
    from benchmarks import datasets

    if args.dataset == "list":
        for name in datasets.names():
            spec = datasets.SPECS.get(name)
            print(f"{name:26s} {spec.note if spec else 'all seven LLM+P domains'}")
        return 0
    if args.dataset == "report":
        if not args.dir:
            raise InputError("formalist bench report DIR: name the run folder")
        _report(args.dir)
        return 0
    if args.dir:
        raise InputError(f"unexpected argument {args.dir!r}; the run folder is given with --out")
    if not args.out:
        raise InputError("formalist bench DATASET needs --out DIR (where results.jsonl goes)")
    from benchmarks.runner import RunSettings, run

    settings = RunSettings(
        dataset=args.dataset,
        mode=args.mode,
        model=args.model or "",
        limit=args.limit,
        concurrency=args.concurrency,
        item_timeout_s=args.item_timeout,
        time_limit_s=args.time_limit,
        max_attempts=args.max_attempts,
        data_dir=args.data_dir or "",
        config=args.config or "",
        planner=args.planner or "",
        examples=args.examples,
        numbers=args.numbers,
        shots=args.shots,
        samples=args.samples,
        grounding=args.grounding,
        sample=args.sample,
        seed=args.seed,
        executor=args.executor,
        address=args.address or "",
    )
    summary: dict[str, Any] = run(settings, args.out)
    print(json.dumps(summary))
    _report(args.out)
    return 0


def _report(folder: str) -> None:
    """Write the report files of run folder ``folder`` and print ``report.md``."""
    from benchmarks.report import report

    try:
        report(folder)
        text = (Path(folder) / "report.md").read_text(encoding="utf-8")
    except OSError as e:
        raise InputError(
            f"cannot write the report in {folder}: {e.strerror or e}"
            + (f" ({e.filename})" if e.filename else "")
        ) from e
    print(text)
    names = ("results.jsonl", "config.json", "report.md", "report.json", "report.csv", "report.png")
    written = [n for n in names if (Path(folder) / n).is_file()]
    print(f"files in {Path(folder).resolve()}: {', '.join(written)}")


def register(subparsers: Any) -> None:
    """Add ``bench`` to the ``formalist`` command's subparsers."""
    p = subparsers.add_parser(
        "bench", help="run a benchmark dataset (or `bench report DIR`, `bench list`)"
    )
    p.add_argument("dataset", help="a dataset name (see `formalist bench list`), report, or list")
    p.add_argument("dir", nargs="?", help="with `report`: the run folder")
    p.add_argument("--mode", choices=["llm", "replay", "oracle"], default="llm")
    p.add_argument("--model", help="model spec (llm) or recording file (replay)")
    p.add_argument("--limit", type=int, help="only the first N items")
    p.add_argument("--sample", type=int, help="a fixed random sample of N items (see --seed)")
    p.add_argument("--seed", type=int, default=0, help="the seed of --sample (default 0)")
    p.add_argument("--concurrency", type=int, default=4, help="items at a time (default 4)")
    p.add_argument(
        "--item-timeout",
        type=float,
        default=300.0,
        dest="item_timeout",
        help="seconds per item, all attempts (default 300)",
    )
    p.add_argument(
        "--time-limit",
        type=float,
        default=60.0,
        dest="time_limit",
        help="seconds per solver call (default 60)",
    )
    p.add_argument("--max-attempts", type=int, default=3, dest="max_attempts")
    p.add_argument(
        "--planner",
        choices=option_choices()["planner"],
        help="planner for planning items (default: the configuration's, auto)",
    )
    p.add_argument(
        "--examples",
        choices=["fixed", "retrieved", "none"],
        default="fixed",
        help="optimization few-shot examples: the bundled ones, the nearest of the example bank "
        "(never the item's own), or none (default fixed)",
    )
    p.add_argument("--shots", type=int, default=2, help="how many few-shot examples (default 2)")
    p.add_argument(
        "--numbers",
        choices=["named", "inline"],
        default="inline",
        help="optimization: single numbers as named parameters or written in the expressions "
        "(default inline)",
    )
    p.add_argument(
        "--samples",
        type=int,
        default=1,
        help="formalizations sampled per item; above 1 the verified answers vote (default 1)",
    )
    p.add_argument(
        "--grounding",
        choices=["report", "repair", "amend"],
        default="report",
        help="a model whose numbers are not the request's: report it on the answer, also send "
        "it back for repair, or first make the grounding check's own edits (default report)",
    )
    p.add_argument("--data-dir", dest="data_dir", help="data folder (default: FORMALIST_DATA)")
    p.add_argument("--config", help="configuration TOML file (model, [local] engine settings...)")
    p.add_argument("--out", help="run folder: results.jsonl, config.json, reports")
    p.add_argument(
        "--executor",
        choices=["local", "ray"],
        default="local",
        help="where items run: threads of this process (local, the default) or one Ray task "
        "each (ray; needs formalist[ray])",
    )
    p.add_argument(
        "--address",
        help="with --executor ray: the cluster (default RAY_ADDRESS, else a Ray started here)",
    )
    p.set_defaults(func=cmd_bench)
