"""``local:FILE.gguf``: a GGUF file (written here with the ``gguf`` package: a tiny random Qwen2
model, Q8_0 weights, a byte-level vocabulary and the ChatML template) is dequantized, cached by its
sha256 as an ordinary checkpoint, and loads and generates through the engine and the chat model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("gguf")
pytest.importorskip("xgrammar")

import numpy as np

from agent.errors import ConfigError
from agent.llm.local import gguf as gguf_mod
from agent.llm.local.testing import ENGINE_OPTIONS, write_tiny_gguf


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    folder = tmp_path_factory.mktemp("gguf")
    path = folder / "tiny-q8_0.gguf"
    expected = write_tiny_gguf(path)
    return path, expected


def test_gguf_file_loads_dequantized_generates_and_second_load_hits_the_cache(
    tiny_gguf: tuple[Path, dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agent.llm.local.chat_model import load_engine
    from agent.llm.local.sampling import SamplingParams

    path, expected = tiny_gguf
    models = tmp_path / "models"
    # float32: the default on a CPU with native bfloat16 would round the weights compared below.
    engine = load_engine(str(path), models_dir=str(models), **ENGINE_OPTIONS, dtype="float32")
    # The weights are the file's, dequantized (Q8_0 blocks read back exactly).
    state = engine.model.state_dict()
    for name, values in expected.items():
        assert np.array_equal(state[name].numpy(), values), name
    # The tokenizer is the file's: its merges, its special tokens, its chat template.
    assert engine.tokenizer.tokenize(" the model") == ["\u0120the", "\u0120model"]
    prompt = engine.chat_prompt([{"role": "user", "content": "max the model"}])
    assert prompt.endswith("<|im_start|>assistant\n")
    sample = engine.sample(prompt, None, SamplingParams(max_new_tokens=6, seed=3))[0]
    assert len(sample.token_ids) == 6 and sample.finish == "length"
    # The file's UNUSED rows ([PADn]) are never sampled, as text or otherwise.
    pads = [i for t, i in engine.tokenizer.get_vocab().items() if t.startswith("[PAD")]
    assert pads and bool(engine.banned[pads].all())

    digest = gguf_mod.sha256_file(path)
    cached = models / digest
    assert (cached / gguf_mod.COMPLETE).is_file()
    assert (cached / "model.safetensors").is_file() and (cached / "tokenizer.json").is_file()
    # Dense weights: no GGUF quantization settings that would make transformers take the folder
    # for packed GGUF weights when it loads it.
    assert "quantization_config" not in json.loads((cached / "config.json").read_text())

    # Second load (and a copy of the file under another name): the cache, no conversion.
    def no_conversion(*args: object) -> None:
        raise AssertionError("converted again")

    monkeypatch.setattr(gguf_mod, "_convert", no_conversion)
    assert gguf_mod.converted_dir(path, models) == cached
    copy = tmp_path / "renamed.gguf"
    shutil.copyfile(path, copy)
    assert gguf_mod.converted_dir(copy, models) == cached


def test_the_chat_model_takes_a_gguf_spec(
    tiny_gguf: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    from langchain_core.messages import HumanMessage

    from agent.llm.spec import build_chat_model, parse_spec

    path, _ = tiny_gguf
    local = {**ENGINE_OPTIONS, "models_dir": str(tmp_path / "models"), "max_new_tokens": 5}
    chat = build_chat_model(parse_spec(f"local:{path}"), local=local)
    reply = chat.invoke([HumanMessage(content="hello")])
    assert reply.response_metadata["tokens"] == 5
    assert reply.response_metadata["cut_off"] is True  # free text stopped by its token budget


def test_the_models_folder_defaults_to_the_cache_and_follows_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FORMALIST_MODELS_DIR", raising=False)
    assert gguf_mod.models_dir() == Path("~/.cache/formalist/models").expanduser()
    monkeypatch.setenv("FORMALIST_MODELS_DIR", str(tmp_path / "env"))
    assert gguf_mod.models_dir() == tmp_path / "env"
    assert gguf_mod.models_dir(tmp_path / "given") == tmp_path / "given"


def test_a_file_that_is_not_gguf_or_missing_is_refused_by_name(tmp_path: Path) -> None:
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"PK\x03\x04 not a gguf file")
    with pytest.raises(ConfigError, match="not a GGUF file"):
        gguf_mod.converted_dir(fake, tmp_path / "models")
    with pytest.raises(ConfigError, match="no such model file"):
        gguf_mod.converted_dir(tmp_path / "missing.gguf", tmp_path / "models")
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").iterdir())


def test_a_truncated_gguf_file_is_a_config_error_and_leaves_no_cache(
    tiny_gguf: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    path, _ = tiny_gguf
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    models = tmp_path / "models"
    with pytest.raises(ConfigError, match=r"cannot read the GGUF file"):
        gguf_mod.converted_dir(cut, models)
    assert [p.name for p in models.iterdir()] == ["hashes.json"]  # no folder, finished or not


def test_torch_threads_default_to_the_free_cores(
    tiny_gguf: tuple[Path, dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    from agent.llm.local import engine as engine_mod
    from agent.llm.local.chat_model import load_engine

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    # Where /proc/stat cannot be read, the load average says what is taken.
    monkeypatch.setattr(engine_mod, "_cpu_times", lambda: None)
    for load, free in ((0.2, 4), (1.4, 3), (2.6, 1), (9.0, 1)):
        monkeypatch.setattr(os, "getloadavg", lambda load=load: (load, 0.0, 0.0))
        assert engine_mod.free_cpus() == free
    # Otherwise the cores busy now, less this process's own use: a load average of 9 left by
    # this process's own loading takes nothing.
    for machine_busy, own, free in ((0.1, 0.0, 4), (2.0, 1.0, 3), (3.0, 0.0, 1), (4.0, 4.0, 4)):
        ticks = iter([(0.0, 0.0), (machine_busy * 100, 400.0)])
        cpu = iter([0.0, own])
        monkeypatch.setattr(engine_mod, "_cpu_times", lambda ticks=ticks: next(ticks))
        monkeypatch.setattr(engine_mod, "_own_cpu_s", lambda cpu=cpu: next(cpu))
        monkeypatch.setattr(engine_mod.time, "monotonic", iter([0.0, 1.0]).__next__)
        monkeypatch.setattr(engine_mod.time, "sleep", lambda s: None)
        assert engine_mod.free_cpus() == free
    monkeypatch.setattr(engine_mod, "free_cpus", lambda: 3)
    path, _ = tiny_gguf
    engine = load_engine(
        str(path), models_dir=str(tmp_path / "models"), device="cpu", max_batch=2, max_len=256
    )
    assert engine.torch_threads == 3  # set while generating; torch's own default is untouched
    given = load_engine(
        str(path),
        models_dir=str(tmp_path / "models"),
        device="cpu",
        max_batch=2,
        max_len=256,
        torch_threads=2,
    )
    assert given.torch_threads == 2


def test_a_conversion_of_an_older_format_gets_its_tokenizer_and_config_brought_up_to_date(
    tiny_gguf: tuple[Path, dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from transformers import AutoTokenizer

    path, _ = tiny_gguf
    models = tmp_path / "models"
    with monkeypatch.context() as m:  # a format-1 conversion: unused tokens not marked
        m.setattr(gguf_mod, "_mark_unused_tokens", lambda src, tokenizer: None)
        m.setattr(gguf_mod, "FORMAT", 1)
        out = gguf_mod.converted_dir(path, models)
    pads = [i for t, i in AutoTokenizer.from_pretrained(out).get_vocab().items() if "[PAD" in t]
    assert pads and not set(pads) & set(AutoTokenizer.from_pretrained(out).added_tokens_decoder)
    # ... and a format-2 config: the GGUF quantization settings transformers wrote into it.
    config = json.loads((out / "config.json").read_text())
    config["quantization_config"] = {"quant_method": "gguf", "dequantize": False}
    (out / "config.json").write_text(json.dumps(config))

    def no_conversion(*args: object) -> None:
        raise AssertionError("converted again")

    monkeypatch.setattr(gguf_mod, "_convert", no_conversion)
    assert gguf_mod.converted_dir(path, models) == out
    assert set(pads) <= set(AutoTokenizer.from_pretrained(out).added_tokens_decoder)
    assert json.loads((out / gguf_mod.COMPLETE).read_text())["format"] == gguf_mod.FORMAT
    assert "quantization_config" not in json.loads((out / "config.json").read_text())


# -- 4-bit decoding --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def q4k_gguf(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny model whose layers are Q4_K (sizes of 256, as Q4_K's blocks need), and its models
    folder."""
    folder = tmp_path_factory.mktemp("q4k")
    path = folder / "tiny-q4_k.gguf"
    write_tiny_gguf(path, q4k=True, hidden_size=256, intermediate_size=512)
    return path, folder / "models"


def test_a_q4k_file_decodes_on_the_cpu_with_its_own_4bit_weights(
    q4k_gguf: tuple[Path, Path],
) -> None:
    """In bfloat16 on the CPU each Q4_K layer is packed from the file's blocks: one row's
    product is the dense layer's within bfloat16 rounding, and prefills (many rows) use the dense
    weight itself; ``int4=False`` keeps every layer dense."""
    import torch

    from agent.llm.local.engine import Engine
    from agent.llm.local.packed import PACKED_MAX_ROWS, Int4Linear

    path, models = q4k_gguf
    opts = ENGINE_OPTIONS
    engine = Engine.from_pretrained(str(path), models_dir=str(models), dtype=torch.bfloat16, **opts)
    packed = [m for m in engine.model.modules() if isinstance(m, Int4Linear)]
    assert len(packed) == 2 * 7  # q, k, v, o, gate, up, down in both layers
    torch.manual_seed(0)
    with torch.inference_mode():
        for layer in packed:
            x = torch.randn(1, layer.in_features, dtype=torch.bfloat16)
            dense = torch.nn.functional.linear(x, layer.weight, layer.bias).float()
            got = layer(x).float()
            assert got.shape == dense.shape
            assert (got - dense).abs().max() <= 0.02 * dense.abs().max() + 1e-3
            many = torch.randn(PACKED_MAX_ROWS + 1, layer.in_features, dtype=torch.bfloat16)
            same = torch.nn.functional.linear(many, layer.weight, layer.bias)
            assert torch.equal(layer(many), same)
    from agent.llm.local.sampling import SamplingParams

    prompt = engine.chat_prompt([{"role": "user", "content": "max the model"}])
    sample = engine.sample(prompt, None, SamplingParams(max_new_tokens=6, seed=3))[0]
    assert len(sample.token_ids) == 6
    dense_engine = Engine.from_pretrained(
        str(path), models_dir=str(models), dtype=torch.bfloat16, int4=False, **opts
    )
    assert not any(isinstance(m, Int4Linear) for m in dense_engine.model.modules())


def test_int4_asked_for_where_it_cannot_run_is_refused_by_reason(
    q4k_gguf: tuple[Path, Path], tmp_path: Path
) -> None:
    import torch

    from agent.llm.local.engine import Engine
    from agent.llm.local.qwen_vocab import save_random_model

    path, models = q4k_gguf
    opts = ENGINE_OPTIONS
    with pytest.raises(ConfigError, match="bfloat16"):
        Engine.from_pretrained(
            str(path), models_dir=str(models), dtype=torch.float32, int4=True, **opts
        )
    folder = save_random_model(tmp_path / "dense", "tiny")
    with pytest.raises(ConfigError, match="not a .gguf file"):
        Engine.from_pretrained(str(folder), dtype=torch.bfloat16, int4=True, **opts)


def test_a_weight_that_is_not_the_files_stays_dense(q4k_gguf: tuple[Path, Path]) -> None:
    """Packing checks each file weight against the layer it replaces: a layer that differs (a
    layout the loader permuted, say) keeps its dense weight."""
    import torch
    from transformers import AutoModelForCausalLM

    from agent.llm.local.packed import Int4Linear, pack_from_gguf

    path, models = q4k_gguf
    folder = gguf_mod.converted_dir(path, models)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16)
    with torch.no_grad():
        q = model.model.layers[0].self_attn.q_proj.weight
        q.copy_(q.flip(0))  # rows in another order
    assert pack_from_gguf(model, path) == 2 * 7 - 1
    assert not isinstance(model.model.layers[0].self_attn.q_proj, Int4Linear)
    assert isinstance(model.model.layers[1].self_attn.q_proj, Int4Linear)


def test_the_packed_weights_are_kept_beside_the_converted_model_and_read_back(
    q4k_gguf: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first load packs from the file and keeps the result in the converted folder; a later
    load reads it back without opening the file; an unreadable kept file is packed again."""
    import torch
    from transformers import AutoModelForCausalLM

    from agent.llm.local import packed

    path, models = q4k_gguf
    folder = gguf_mod.converted_dir(path, models)
    kept = packed.cache_file(folder)
    kept.unlink(missing_ok=True)

    def load() -> Any:
        return AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16)

    first = load()
    assert packed.pack_from_gguf(first, path, cache=folder) == 14 and kept.is_file()

    def no_file(*args: object) -> int:
        raise AssertionError("the .gguf file was read again")

    with monkeypatch.context() as m:
        m.setattr(packed, "_pack", no_file)
        second = load()
        assert packed.pack_from_gguf(second, path, cache=folder) == 14
    for a, b in zip(first.modules(), second.modules(), strict=True):
        if isinstance(a, packed.Int4Linear):
            assert isinstance(b, packed.Int4Linear)
            assert torch.equal(a.packed, b.packed) and torch.equal(a.scales_zeros, b.scales_zeros)
    kept.write_bytes(b"not safetensors")
    assert packed.pack_from_gguf(load(), path, cache=folder) == 14
    assert packed.pack_from_gguf(load(), path, cache=folder) == 14  # the rewritten file
