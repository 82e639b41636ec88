"""The local engine on a CPU: bfloat16 chosen where the CPU multiplies it natively, prompt caches
kept and reused (the same samples with and without them, bit for bit, since positions run in the
same chunks either way), and chunked prefill against the model's own forward pass."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("xgrammar")

from agent.llm.local import engine as engine_module  # noqa: E402
from agent.llm.local.decoder import PrefixCache, StaticDecoder  # noqa: E402
from agent.llm.local.engine import Engine, GenerationRequest, common_prefix  # noqa: E402
from agent.llm.local.sampling import SamplingParams  # noqa: E402
from agent.llm.local.testing import TEST_BOUNDS, tiny_model_dir  # noqa: E402
from formalizers.milp.grammar import five_element_grammar  # noqa: E402

FIVE = five_element_grammar(TEST_BOUNDS)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.getbasetemp()


def _engine(root: Path, **options: Any) -> Engine:
    from transformers import AutoModelForCausalLM

    from agent.llm.local.qwen_vocab import qwen_tokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir(root), dtype=torch.float32)
    opts = {"max_batch": 4, "max_len": 2048, "threads": 1, "torch_threads": 1, **options}
    return Engine(model, qwen_tokenizer(), **opts)


def _long_prompt(eng: Engine, words: int, tail: str) -> list[int]:
    system = " ".join(f"example {i} maximise profit subject to capacity" for i in range(words))
    text = eng.chat_prompt(
        [{"role": "system", "content": system}, {"role": "user", "content": tail}]
    )
    return eng.encode(text)


@pytest.mark.parametrize(
    ("flags", "mkldnn", "device", "want"),
    [
        ({"avx512f", "avx512_bf16"}, True, "cpu", "bfloat16"),
        ({"amx_bf16", "amx_tile"}, True, "cpu", "bfloat16"),
        ({"avx512f", "avx2"}, True, "cpu", "float32"),
        ({"avx512_bf16"}, False, "cpu", "float32"),
        (set(), False, "cuda", "bfloat16"),
    ],
)
def test_bfloat16_where_the_cpu_multiplies_it_natively(
    monkeypatch: pytest.MonkeyPatch, flags: set[str], mkldnn: bool, device: str, want: str
) -> None:
    monkeypatch.setattr(engine_module, "cpu_flags", lambda: flags)
    monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: mkldnn)
    assert engine_module.default_dtype(device) == getattr(torch, want)


def test_cpu_flags_are_read_from_the_machine() -> None:
    flags = engine_module.cpu_flags()
    assert isinstance(flags, set)
    if Path("/proc/cpuinfo").exists() and "flags" in Path("/proc/cpuinfo").read_text():
        assert flags  # a Linux machine names some


def test_common_prefix() -> None:
    assert common_prefix([1, 2, 3], [1, 2, 4, 5]) == 2
    assert common_prefix([], [1]) == 0
    assert common_prefix((7, 8), [7, 8]) == 2


def test_chunked_prefill_matches_the_hf_forward_pass(root: Path) -> None:
    """A prompt of several chunks, cold and with a reused first chunk, gives the keys and values
    of one whole-prompt forward pass (Hugging Face's cache), and the same bits either way."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir(root), dtype=torch.float32).eval()
    dec = StaticDecoder(model, slots=2, max_len=512)
    ids = [(i * 7919) % 150_000 for i in range(150)]
    with torch.inference_mode():
        ref = model(torch.tensor([ids]), use_cache=True).past_key_values
        cold = dec.prefill(ids, chunk=64)
        first = dec.prefill(ids[:64], chunk=64)
        warm = dec.prefill(ids, PrefixCache(first.keys, first.values, 64), chunk=64)
    assert cold.length == warm.length == 150
    for i in range(len(dec.layers)):
        want_k = ref.layers[i].keys[0] if hasattr(ref, "layers") else ref[i][0][0]
        assert torch.allclose(cold.keys[i], want_k, atol=1e-4, rtol=1e-4)
        assert torch.equal(cold.keys[i], warm.keys[i])
        assert torch.equal(cold.values[i], warm.values[i])
    with pytest.raises(ValueError, match="reused prefix"):
        dec.prefill(ids, PrefixCache(first.keys, first.values, 30), chunk=64)


def test_a_shared_prompt_prefix_is_prefilled_once_and_gives_the_same_samples(root: Path) -> None:
    """Two requests that share a long system prompt: the second runs only what follows the
    shared whole chunks; its samples are those of an engine with no prompt cache, bit for bit;
    the same prompt again runs nothing."""
    cached = _engine(root)
    cold = _engine(root, prefix_cache_mb=0)
    try:
        a = _long_prompt(cached, 60, "Write a small model.")
        b = _long_prompt(cached, 60, "A bakery makes bread and cake; write its model.")
        shared = common_prefix(a, b)
        assert shared > 2 * 256  # the system prompt spans whole chunks
        params = SamplingParams(n=3, temperature=1.0, seed=11, max_new_tokens=40)
        cached.generate([GenerationRequest(a, FIVE, params)])
        assert cached.stats.prefill_tokens == len(a) - 1 and cached.stats.reused_tokens == 0
        got = cached.generate([GenerationRequest(b, FIVE, params)])[0]
        reused = shared // 256 * 256
        assert cached.stats.reused_tokens == reused
        assert cached.stats.prefill_tokens == len(b) - 1 - reused
        want = cold.generate([GenerationRequest(b, FIVE, params)])[0]
        assert cold.stats.reused_tokens == 0 and cold.stats.prefill_tokens == len(b) - 1
        assert [s.token_ids for s in got] == [s.token_ids for s in want]
        assert len({s.token_ids for s in got}) > 1
        again = cached.generate([GenerationRequest(b, FIVE, params)])[0]
        assert cached.stats.prefill_tokens == 0 and cached.stats.reused_tokens == len(b) - 1
        assert [s.token_ids for s in again] == [s.token_ids for s in want]
    finally:
        cached.close()
        cold.close()


def test_the_prompt_cache_keeps_to_its_budget(root: Path) -> None:
    eng = _engine(root, prefix_cache_mb=1)
    try:
        params = SamplingParams(n=1, max_new_tokens=2)
        prompts = [_long_prompt(eng, 10, f"request number {i}") for i in range(40)]
        for p in prompts:
            eng.generate([GenerationRequest(p, None, params)])
        kept = eng._prefixes
        assert 0 < len(kept) < len(prompts)
        assert sum(engine_module.prefix_bytes(e) for e in kept.values()) <= 1 << 20
        assert tuple(prompts[-1][:-1]) in kept  # the most recent stays
    finally:
        eng.close()


def test_the_cpu_decode_benchmark_runs_on_a_tiny_model(tmp_path: Path) -> None:
    """``benchmarks/cpu_decode.py`` end to end on a tiny random model: every figure is there
    (the numbers themselves mean nothing at this size)."""
    import json

    from benchmarks import cpu_decode

    out = tmp_path / "cpu_decode.json"
    args = ["--model", "tiny", "--prompt-tokens", "700", "--shared-tokens", "400"]
    args += ["--tokens", "4", "--k", "3", "--torch-threads", "1", "--json", str(out)]
    assert cpu_decode.main(args) == 0
    r = json.loads(out.read_text())
    assert r["bandwidth_bytes_per_s"] > 0 and r["weight_bytes_per_step"] > 151_936 * 64
    assert r["engine_batch1"]["tokens"] == 4 and r["engine_k"]["tokens"] == 3 * 4
    for row in (r["engine_batch1"], r["engine_k"]):
        assert row["decode_tokens_per_s"] > 0 and 0 < row["fraction_of_bandwidth_limit"]
    assert r["engine_batch1"]["prefill_tokens"] == r["prompt_tokens"] - 1
    assert r["engine_k"]["prefill_tokens"] == 0  # the k samples' prompt was kept
    assert r["prefix_hit"]["reused_tokens"] == 256 and r["prefix_hit"]["prefill_tokens"] > 0
    # HF's decode is a difference of two timings: None (below timer noise) on a loaded machine.
    hf = r["hf_batch1"]
    assert hf["prefill_s"] > 0
    assert hf["decode_tokens_per_s"] is None or hf["decode_tokens_per_s"] > 0
    assert set(r["item_estimate"]) == {"1_cold_s", "1_prefix_hit_s", "k_cold_s", "k_prefix_hit_s"}
    assert all(v.startswith(("met", "missed")) for v in r["targets"].values())
    assert r["ratios"]["output_layer_per_row_over_batched"] > 0
    assert "not a .gguf file" in r["int4_unavailable"]


def test_the_cpu_decode_benchmark_measures_a_q4k_file_dense_and_packed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A .gguf model in bfloat16: the engine's decode rows with the dense weights (the
    baseline) and with the file's 4-bit weights packed, in one run, and their ratio."""
    import json

    from agent.llm.local.testing import write_tiny_gguf
    from benchmarks import cpu_decode

    monkeypatch.setenv("FORMALIST_MODELS_DIR", str(tmp_path / "models"))
    model = tmp_path / "tiny-q4_k.gguf"
    write_tiny_gguf(model, q4k=True, hidden_size=256, intermediate_size=512)
    out = tmp_path / "cpu_decode.json"
    args = ["--model", str(model), "--dtype", "bfloat16", "--prompt-tokens", "300"]
    args += ["--shared-tokens", "100", "--tokens", "4", "--k", "2", "--torch-threads", "1"]
    assert cpu_decode.main([*args, "--no-hf", "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    assert r["int4_layers"] == 14
    assert 0 < r["int4_weight_bytes_per_step"] < r["weight_bytes_per_step"]
    for key in ("engine_batch1_dense", "engine_k_dense", "engine_batch1", "engine_k"):
        assert r[key]["decode_tokens_per_s"] > 0
    assert r["ratios"]["int4_over_dense_batch1"] > 0 and r["ratios"]["int4_over_dense_k"] > 0
    assert r["item_estimate"]["1_cold_s"] > 0  # the cold prefill is the dense row's


def test_the_prompt_cache_size_is_a_local_setting() -> None:
    from agent.config import LOCAL_DEFAULTS, check_local
    from agent.errors import ConfigError

    assert check_local({"prefix_cache_mb": 256}) == {"prefix_cache_mb": 256}
    with pytest.raises(ConfigError, match="prefix_cache_mb must be an integer"):
        check_local({"prefix_cache_mb": "lots"})
    assert LOCAL_DEFAULTS["max_batch"] >= 8  # a vote's eight samples decode in one batch


def test_idle_slots_do_not_attend_and_change_nothing(root: Path) -> None:
    """``decode_hidden(..., live)``: the slots past ``live`` skip attention (their cache is not
    read), and a live slot's hidden state is the same bits as when every slot attends."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir(root), dtype=torch.float32).eval()
    dec = StaticDecoder(model, slots=4, max_len=256)
    with torch.inference_mode():
        dec.load(0, dec.prefill(list(range(500, 540))))
        dec.load(1, dec.prefill(list(range(600, 620))))
        tokens = torch.tensor([5, 6, 0, 0])
        positions = torch.tensor([40, 20, 255, 255])
        every = dec.decode_hidden(tokens, positions, 64)
        two = dec.decode_hidden(tokens, positions, 64, live=2)
    assert torch.equal(every[:2], two[:2])


def test_a_cpu_engine_decodes_one_row_for_one_sample_unless_told(root: Path) -> None:
    """``Engine.from_pretrained`` on a CPU leaves batch invariance off (``CPU_BATCH_INVARIANT``):
    a greedy reply runs at one row, not at ``max_batch``; ``[local] batch_invariant`` turns it on."""
    from agent.config import check_local
    from agent.errors import ConfigError

    path = str(tiny_model_dir(root))
    plain = Engine.from_pretrained(path, device="cpu", max_batch=8, max_len=256, torch_threads=1)
    told = Engine.from_pretrained(
        path, device="cpu", max_batch=8, max_len=256, torch_threads=1, batch_invariant=True
    )
    assert engine_module.CPU_BATCH_INVARIANT is False
    assert plain.batch_invariant is False and told.batch_invariant is True
    request = GenerationRequest(
        plain.chat_prompt([{"role": "user", "content": "Write a model."}]),
        five_element_grammar(TEST_BOUNDS),
        SamplingParams(n=1, temperature=0.0, seed=1, max_new_tokens=12),
    )
    plain.generate([request])
    assert set(plain.stats.batch_sizes) == {1}
    told.generate([request])
    assert set(told.stats.batch_sizes) == {8}
    assert check_local({"batch_invariant": True}) == {"batch_invariant": True}
    with pytest.raises(ConfigError, match="batch_invariant must be true or false"):
        check_local({"batch_invariant": "yes"})
