"""ComplexOR reference models as five-element JSON, for the oracle mode.

The dataset's ``gt_model`` is LaTeX-like prose, not a machine-readable model. Each item's model was
transcribed by hand from its ``gt_model`` and first sample's data into
``tests/fixtures/complexor/<id>.json`` (see the SOURCE.md there for the judgements made per item).
"""

from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "complexor"


def reference_model_file(item_id: str) -> Path | None:
    """The hand-written five-element model of ComplexOR item ``item_id``, when there is one."""
    if not item_id or "/" in item_id or "\\" in item_id or item_id.startswith("."):
        return None
    p = FIXTURES / f"{item_id}.json"
    return p if p.is_file() else None
