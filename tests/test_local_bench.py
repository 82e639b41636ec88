"""``benchmarks/decode_speed.py`` on the CPU with a tiny shape: the script runs end to end (engine
unconstrained and under both grammars, HF ``generate`` eager and with a static cache) and writes its
report. The figures themselves mean nothing here; the targets read "not measured"."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("xgrammar")

from benchmarks import decode_speed


def test_the_decode_benchmark_runs_on_a_tiny_shape(tmp_path: Path) -> None:
    out = tmp_path / "decode_speed.json"
    args = ["--shapes", "tiny", "--batch", "1", "2", "--tokens", "6", "--prompt-tokens", "24"]
    assert (
        decode_speed.main([*args, "--threads", "1", "--torch-threads", "1", "--json", str(out)])
        == 0
    )
    report = json.loads(out.read_text())
    assert report["device"] == "cpu" and report["bandwidth_bytes_per_s"] is None
    rows = report["shapes"]["tiny"]["batch"]
    assert set(rows) == {"1", "2"}
    for batch, row in rows.items():
        # Unconstrained samples ignore the stop token: exactly --tokens each.
        assert row["unconstrained"]["tokens"] == int(batch) * 6
        for name in ("unconstrained", "five-element", "pddl", "hf_eager", "hf_static"):
            assert row[name]["ms_per_step"] is None or row[name]["ms_per_step"] > 0
        assert row["throughput_vs_hf_eager"] > 0
    assert report["shapes"]["tiny"]["weight_bytes"] > 151_936 * 64 * 4  # the tied output layer
    assert set(report["targets"].values()) == {"not measured"}


def test_card_bandwidths_and_verdicts() -> None:
    assert decode_speed.card_bandwidth("NVIDIA H200", None) == 4.8e12
    assert decode_speed.card_bandwidth("NVIDIA H100 80GB HBM3", None) == 3.35e12
    assert decode_speed.card_bandwidth("NVIDIA H100 PCIe", None) == 2.0e12
    assert decode_speed.card_bandwidth("Mystery", 1000) == 1e12
    assert decode_speed.card_bandwidth("Mystery", None) is None
    assert decode_speed._verdict(0.8, 0.7, higher=True).startswith("met")
    assert decode_speed._verdict(1.2, 1.05, higher=False).startswith("missed")
