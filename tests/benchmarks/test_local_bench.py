"""``benchmarks/decode_speed.py`` on the CPU with a tiny shape: the script runs end to end (engine
unconstrained and under both grammars, HF ``generate`` eager and with a static cache) and writes its
report. The figures themselves mean nothing here; the targets read "not measured"."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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
        # The ratio exists exactly when HF eager's decode was above the timer's noise.
        if row["hf_eager"]["ms_per_step"] is None:
            assert "throughput_vs_hf_eager" not in row
        else:
            assert row["throughput_vs_hf_eager"] > 0
    assert report["shapes"]["tiny"]["weight_bytes"] > 151_936 * 64 * 4  # the tied output layer
    assert set(report["targets"].values()) == {"not measured"}


def test_a_failed_measurement_is_recorded_and_the_run_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Out of memory in one baseline (here: HF with a static cache) is that cell's error; the
    other cells, the ratios that do not need it and the report file are all there."""

    def failing(*args: Any) -> dict[str, Any]:
        if args[4]:  # static
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB\nmore detail")
        # Eager: a fixed figure. Timed for real, a tiny shape's HF decode can fall below the
        # timer's noise on a loaded machine and be reported as not measured (None).
        return {"ms_per_step": 2.0, "tokens_per_s": args[2] / 2e-3, "total_s": 0.01}

    monkeypatch.setattr(decode_speed, "time_hf", failing)
    out = tmp_path / "decode_speed.json"
    args = ["--shapes", "tiny", "--batch", "2", "--tokens", "4", "--prompt-tokens", "16"]
    assert (
        decode_speed.main([*args, "--threads", "1", "--torch-threads", "1", "--json", str(out)])
        == 0
    )
    row = json.loads(out.read_text())["shapes"]["tiny"]["batch"]["2"]
    assert row["hf_static"] == {
        "error": "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB"
    }
    assert row["hf_eager"]["ms_per_step"] > 0 and row["throughput_vs_hf_eager"] > 0
    assert "throughput_vs_hf_static" not in row
    assert row["five-element"]["ratio_to_unconstrained"] > 0


def test_card_bandwidths_and_verdicts() -> None:
    assert decode_speed.card_bandwidth("NVIDIA H200", None) == 4.8e12
    assert decode_speed.card_bandwidth("NVIDIA H100 80GB HBM3", None) == 3.35e12
    assert decode_speed.card_bandwidth("NVIDIA H100 PCIe", None) == 2.0e12
    assert decode_speed.card_bandwidth("Mystery", 1000) == 1e12
    assert decode_speed.card_bandwidth("Mystery", None) is None
    assert decode_speed._verdict(0.8, 0.7, higher=True).startswith("met")
    assert decode_speed._verdict(1.2, 1.05, higher=False).startswith("missed")


def test_bench_takes_a_configuration_file_and_records_its_local_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from agent.cli import main

    data = tmp_path / "one.jsonl"
    data.write_text(
        json.dumps({"id": "a", "en_question": "Maximize 3x with x at most 4.", "en_answer": "12"})
        + "\n"
    )
    model = {
        "variables": [{"name": "x", "upper": 4}],
        "objective": {"sense": "max", "expression": "3 * x"},
    }
    script = tmp_path / "script.json"
    script.write_text(json.dumps([json.dumps(model)]))
    cfg = tmp_path / "bench.toml"
    cfg.write_text("[local]\ntorch_threads = 1\nmax_new_tokens = 512\n", encoding="utf-8")
    out = tmp_path / "run"
    argv = ["bench", str(data), "--model", f"replay:{script}", "--concurrency", "1"]
    assert main([*argv, "--config", str(cfg), "--out", str(out)]) == 0
    recorded = json.loads((out / "config.json").read_text())
    assert recorded["agent"]["local"] == {"torch_threads": 1, "max_new_tokens": 512}
    assert recorded["settings"]["config"] == str(cfg)
    assert "| strict | 1 | 1 | 100.0% |" in capsys.readouterr().out
    cfg.write_text("[local]\ntorch_threads = 0\n", encoding="utf-8")
    assert main([*argv, "--config", str(cfg), "--out", str(tmp_path / "bad")]) == 2
    assert "[local] torch_threads must be at least 1" in capsys.readouterr().err
