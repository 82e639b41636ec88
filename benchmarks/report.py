"""The report of a run folder: accuracy per scoring rule with a 95% Wilson interval, error classes
and attempts used, as ``report.md``, ``report.csv``, ``report.json`` and (with matplotlib, the
``bench`` extra) ``report.png``.

Accuracy is over the labelled items (unlabelled ones are counted apart); an item that timed out,
failed or could not be run counts as wrong. A second accuracy leaves out the items the pipeline
cannot take at all (``unsupported``: no converter for the gold model, a kind not registered).
"""

from __future__ import annotations

import csv
import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

from agent.errors import InputError
from benchmarks.runner import CONFIG, RESULTS, read_config, read_results

ERROR_CLASSES = (
    "ok",
    "wrong answer",
    "parse",
    "solver",
    "verification",
    "timeout",
    "unsupported",
    "unlabelled",
)


def wilson(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """The 95% Wilson score interval of ``k`` successes in ``n`` trials (``(0, 0)`` when n is 0)."""
    if n == 0:
        return 0.0, 0.0
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def summarise(rows: list[dict[str, Any]], dataset: str = "") -> dict[str, Any]:
    """Counts and accuracies of one run's results lines."""
    rules: list[str] = []
    for r in rows:
        for k in r.get("scores") or {}:
            if k not in rules:
                rules.append(k)
    table = []
    for rule in rules:
        scored = [r["scores"].get(rule) for r in rows if r.get("scores", {}).get(rule) is not None]
        k, n = sum(bool(s) for s in scored), len(scored)
        lo, hi = wilson(k, n)
        runnable = [
            r["scores"][rule]
            for r in rows
            if r.get("scores", {}).get(rule) is not None and r.get("error_class") != "unsupported"
        ]
        table.append(
            {
                "dataset": dataset,
                "rule": rule,
                "correct": k,
                "scored": n,
                "accuracy": round(k / n, 4) if n else None,
                "wilson_low": round(lo, 4),
                "wilson_high": round(hi, 4),
                "runnable": len(runnable),
                "accuracy_runnable": (
                    round(sum(bool(x) for x in runnable) / len(runnable), 4) if runnable else None
                ),
            }
        )
    classes = Counter(r.get("error_class", "?") for r in rows)
    attempts = Counter(str(r.get("attempts")) for r in rows)
    used = [r["attempts"] for r in rows if isinstance(r.get("attempts"), int) and r["attempts"]]
    out: dict[str, Any] = {
        "dataset": dataset,
        "items": len(rows),
        "rules": table,
        "error_classes": {c: classes.get(c, 0) for c in ERROR_CLASSES if classes.get(c)},
        "attempts": dict(sorted(attempts.items())),
        "mean_attempts": round(sum(used) / len(used), 3) if used else None,
    }
    groups = sorted({str(r["id"]).split("/")[0] for r in rows if "/" in str(r["id"])})
    if len(groups) > 1:
        # Datasets made of parts (``llmp/*``: domains; Words to Routes: fleets): one line each.
        out["groups"] = {
            g: summarise([r for r in rows if str(r["id"]).split("/")[0] == g], g)["rules"]
            for g in groups
        }
    eff = [r["efficiency"] for r in rows if "efficiency" in r]
    if eff:
        out["mean_efficiency"] = round(sum(eff) / len(eff), 4)
    from benchmarks.scoring import grounding_summary, vote_summary

    voting = vote_summary(rows)
    if voting is not None:
        out["voting"] = voting
    grounding = grounding_summary(rows)
    if grounding is not None:
        out["grounding"] = grounding
    return out


def report(folder: str | Path) -> dict[str, Any]:
    """Write the report files of a run folder and return the summary."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(
            f"{folder} is not a run folder"
            + (" (it does not exist)" if not folder.exists() else " (it is a file)")
        )
    if not (folder / RESULTS).is_file() and not (folder / CONFIG).is_file():
        raise InputError(f"{folder} is not a run folder: it has no {RESULTS} or {CONFIG}")
    rows = read_results(folder / RESULTS)
    cfg = read_config(folder / CONFIG)
    dataset = cfg.get("dataset", folder.name)
    mode = cfg.get("settings", {}).get("mode", "")
    summary = summarise(rows, dataset)
    summary["mode"] = mode
    summary["model"] = cfg.get("model", "")
    summary["git_commit"] = cfg.get("git_commit", "")
    summary["expected_items"] = expected_items(cfg)
    (folder / "report.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    with (folder / "report.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(
            [
                "dataset",
                "mode",
                "rule",
                "correct",
                "scored",
                "accuracy",
                "low95",
                "high95",
                "runnable",
                "accuracy_runnable",
            ]
        )
        for t in summary["rules"]:
            w.writerow(
                [
                    dataset,
                    mode,
                    t["rule"],
                    t["correct"],
                    t["scored"],
                    t["accuracy"],
                    t["wilson_low"],
                    t["wilson_high"],
                    t["runnable"],
                    t["accuracy_runnable"],
                ]
            )
    (folder / "report.md").write_text(markdown(summary), encoding="utf-8")
    chart(summary, folder / "report.png")
    return summary


def expected_items(cfg: dict[str, Any]) -> int | None:
    """The items a run was asked for: the dataset's, or its ``--sample`` and ``--limit``."""
    n = cfg.get("items")
    if not isinstance(n, int):
        return None
    settings = cfg.get("settings") or {}
    for key in ("sample", "limit"):
        if isinstance(settings.get(key), int) and settings[key] > 0:
            n = min(n, settings[key])
    return n


def markdown(summary: dict[str, Any]) -> str:
    head = f"## {summary['dataset']}"
    if summary.get("mode"):
        head += f" ({summary['mode']}" + (f", {summary['model']}" if summary.get("model") else "")
        head += ")"
    lines = [head, ""]
    done = summary["items"]
    expected = summary.get("expected_items")
    lines.append(
        f"{done} item(s) finished" + (f" of {expected}" if expected and expected != done else "")
    )
    lines += [
        "",
        "| rule | correct | scored | accuracy | 95% Wilson | accuracy on runnable items |",
        "|---|---|---|---|---|---|",
    ]
    for t in summary["rules"]:
        acc = "-" if t["accuracy"] is None else f"{100 * t['accuracy']:.1f}%"
        run_acc = t.get("accuracy_runnable")
        runnable = "-" if run_acc is None else f"{100 * run_acc:.1f}% of {t['runnable']}"
        lines.append(
            f"| {t['rule']} | {t['correct']} | {t['scored']} | {acc} | "
            f"{100 * t['wilson_low']:.1f}-{100 * t['wilson_high']:.1f}% | {runnable} |"
        )
    if summary.get("groups"):
        rules = [t["rule"] for t in summary["rules"]]
        lines += ["", "| part | " + " | ".join(rules) + " |", "|---" * (len(rules) + 1) + "|"]
        for g, table in summary["groups"].items():
            cells = [f"{t['correct']}/{t['scored']}" for t in table]
            lines.append(f"| {g} | " + " | ".join(cells) + " |")
    lines += ["", "| outcome | items |", "|---|---|"]
    lines += [f"| {c} | {n} |" for c, n in summary["error_classes"].items()]
    lines += [
        "",
        "attempts used: " + ", ".join(f"{k}: {v}" for k, v in summary["attempts"].items()),
    ]
    if summary.get("mean_attempts") is not None:
        lines[-1] += f" (mean {summary['mean_attempts']})"
    if "mean_efficiency" in summary:
        lines.append(f"mean efficiency: {summary['mean_efficiency']}")
    v = summary.get("voting")
    if v:
        lines += ["", f"voting over samples ({v['items']} items):", ""]
        greedy = all("pass@1_greedy" in t for t in v["rules"].values())
        extra = " pass@1 greedy (sample 1) | pass@1 at the temperature (the others) |"
        lines += [
            "| rule | vote | pass@1 (one sample) | pass@k (any sample) |"
            + (extra if greedy else ""),
            "|---|---|---|---|" + ("---|---|" if greedy else ""),
        ]
        for rule, t in v["rules"].items():
            line = (
                f"| {rule} | {100 * t['vote']:.1f}% | {100 * t['pass@1']:.1f}% | "
                f"{100 * t['pass@k']:.1f}% |"
            )
            if greedy:
                line += f" {100 * t['pass@1_greedy']:.1f}% |"
                sampled = t.get("pass@1_sampled")
                line += f" {100 * sampled:.1f}% |" if sampled is not None else " - |"
            lines.append(line)
        lines.append(
            f"\nsamples disagreed on {v['disagree']} items; mean confidence of right votes "
            f"{v['mean_confidence_right']}, of wrong ones {v['mean_confidence_wrong']}"
        )
    g = summary.get("grounding")
    if g:
        lines.append(
            f"\ngrounded in the request: {g['grounded']} of {g['checked']} answers; right answers "
            f"{g['right']['grounded']} grounded, {g['right']['not_grounded']} not; wrong answers "
            f"{g['wrong']['grounded']} grounded, {g['wrong']['not_grounded']} not"
        )
    return "\n".join(lines) + "\n"


def chart(summary: dict[str, Any], path: Path) -> bool:
    """A bar chart of accuracy per rule with the Wilson interval; False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    rules = [t for t in summary["rules"] if t["accuracy"] is not None]
    fig, ax = plt.subplots(figsize=(1.6 + 1.2 * max(1, len(rules)), 3.2))
    acc = [100 * t["accuracy"] for t in rules]
    err = [
        [a - 100 * t["wilson_low"] for a, t in zip(acc, rules, strict=True)],
        [100 * t["wilson_high"] - a for a, t in zip(acc, rules, strict=True)],
    ]
    ax.bar([t["rule"] for t in rules], acc, yerr=err, capsize=4, color="#4477aa")
    ax.set_ylim(0, 100)
    ax.set_ylabel("accuracy (%)")
    ax.set_title(f"{summary['dataset']} ({summary.get('mode', '')})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True
