"""Tiny random-weight models with the real Qwen vocabulary, for tests and CPU smoke runs.

``tiny_model_dir(root)`` saves one (``save_pretrained``) under ``root`` once per process, so every
test module loads the same checkpoint by path; ``tiny_engine(root)`` is its CPU engine, shared the
same way (through ``chat_model.load_engine``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agent.llm.grammar import Bounds

TEST_BOUNDS = Bounds(max_string=8, max_items=2, any_depth=1, max_statements=4, max_name=8)
"""Grammar limits that keep a random model's samples short (it would otherwise ramble until the
token budget runs out)."""

ENGINE_OPTIONS: dict[str, Any] = {
    "device": "cpu",
    "max_batch": 32,
    "max_len": 4096,
    "threads": 1,
    "torch_threads": 1,
    "batch_invariant": True,
}
"""The tests' CPU engine: single-threaded, so tests stay fast on a small machine that other work
shares (many small parallel operations spin-wait when their threads are not scheduled)."""

_BUILT: dict[tuple[str, str], Path] = {}


def tiny_model_dir(root: Path, arch: str = "qwen2") -> Path:
    """A tiny ``arch`` model (``qwen2`` or ``llama``; hidden size 64, 2 layers, 151,936-row
    embedding) with the Qwen tokenizer, saved under ``root`` (built once per process)."""
    from agent.llm.local.qwen_vocab import save_random_model

    key = (str(root), arch)
    if key not in _BUILT:
        _BUILT[key] = save_random_model(Path(root) / f"tiny-{arch}", "tiny", seed=0, arch=arch)
    return _BUILT[key]


def tiny_engine(root: Path, **options: Any) -> Any:
    """The shared CPU engine of ``tiny_model_dir(root)`` (``options`` override ``ENGINE_OPTIONS``)."""
    from agent.llm.local.chat_model import load_engine

    return load_engine(str(tiny_model_dir(root)), **{**ENGINE_OPTIONS, **options})


TINY_WORDS = ("the", "and", "milp", "model", "max", "min", "objective", "constraints")
"""Words the tiny byte-level vocabulary of ``write_tiny_gguf`` has merges for."""


def _tiny_vocab() -> tuple[list[str], list[str], list[str]]:
    """A small byte-level BPE vocabulary (GPT-2's byte alphabet, the merges that spell
    ``TINY_WORDS`` with and without a leading space, and Qwen's three chat tokens): tokens,
    merges, and the special tokens (last)."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    tokens = list(bytes_to_unicode().values())
    merges: list[str] = []
    known = set(tokens)
    for word in TINY_WORDS:
        for spelled in ("\u0120" + word, word):
            left = spelled[0]
            for ch in spelled[1:]:
                if left + ch not in known:
                    merges.append(f"{left} {ch}")
                    tokens.append(left + ch)
                    known.add(left + ch)
                left += ch
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    return tokens + specials, merges, specials


def q4k_blocks(rows: int, cols: int, rng: Any) -> Any:
    """Random Q4_K blocks for a ``rows x cols`` weight (``cols`` a multiple of 256), as
    llama.cpp lays them out (144 bytes per 256 weights: ``d`` and ``dmin`` in float16, eight
    6-bit scales and mins packed in 12 bytes, then 4-bit values two to a byte): the gguf package
    reads Q4_K but cannot write it."""
    import numpy as np

    n = rows * cols // 256
    d = (rng.uniform(0.5, 1.5, n) * 2e-3).astype(np.float16)
    dmin = (rng.uniform(0.5, 1.5, n) * 2e-3).astype(np.float16)
    sc = rng.integers(0, 64, (n, 8), dtype=np.uint8)
    mn = rng.integers(0, 64, (n, 8), dtype=np.uint8)
    q = rng.integers(0, 16, (n, 8, 32), dtype=np.uint8)
    scales = np.zeros((n, 12), dtype=np.uint8)
    scales[:, 0:4] = (sc[:, :4] & 63) | ((sc[:, 4:] & 0x30) << 2)
    scales[:, 4:8] = (mn[:, :4] & 63) | ((mn[:, 4:] & 0x30) << 2)
    scales[:, 8:12] = (sc[:, 4:] & 0x0F) | ((mn[:, 4:] & 0x0F) << 4)
    qs = (q[:, 0::2] | (q[:, 1::2] << 4)).reshape(n, 128)  # sub-blocks 2c, 2c + 1 share bytes
    blocks = np.concatenate(
        [d.view(np.uint8).reshape(n, 2), dmin.view(np.uint8).reshape(n, 2), scales, qs], axis=1
    )
    return blocks.reshape(rows, cols // 256 * 144)


def write_tiny_gguf(
    path: Path,
    seed: int = 0,
    quantize: bool = True,
    vocab: str = "tiny",
    q4k: bool = False,
    **dims: Any,
) -> dict[str, Any]:
    """Write a tiny random Qwen2 model (the ``tiny`` shape, ``dims`` overriding its sizes) as a
    GGUF file at ``path``, laid out as llama.cpp writes one: metadata, a byte-level BPE
    vocabulary with its merges and the ChatML template, 2-D weights in Q8_0 (``quantize``; with
    ``q4k`` the layers' linear weights in random Q4_K blocks, which needs sizes that are multiples
    of 256), norms and biases in F32, no ``output.weight`` (tied). ``vocab``: ``tiny``
    (``_tiny_vocab``: the file reads in a second) or ``qwen`` (the real 151,936-row Qwen
    vocabulary: reading it back takes transformers a minute or more). Returns the weights a
    reader should get back, by transformers parameter name (dequantized), as numpy arrays."""
    import json

    import gguf
    import numpy as np
    import torch
    from transformers import AutoModelForCausalLM

    from agent.llm.local.qwen_vocab import CHATML_TEMPLATE, qwen2_config, qwen_tokenizer

    cfg = qwen2_config("tiny", **dims)
    rng = np.random.default_rng(seed)
    if vocab == "qwen":
        tok = qwen_tokenizer()
        ids = tok.get_vocab()
        merges = json.loads(tok.backend_tokenizer.to_str())["model"]["merges"]
        merges = [m if isinstance(m, str) else " ".join(m) for m in merges]
        specials = {t for t in ids if t.startswith("<|") and t.endswith("|>")}
    elif vocab == "tiny":
        listed, merges, special_list = _tiny_vocab()
        ids = {t: i for i, t in enumerate(listed)}
        specials = set(special_list)
        cfg.vocab_size = -(-len(listed) // 64) * 64  # embedding rows, padded as real models are
        cfg.bos_token_id = cfg.pad_token_id = ids["<|endoftext|>"]
        cfg.eos_token_id = ids["<|im_end|>"]
    else:
        raise ValueError(f"unknown vocabulary {vocab!r}; use tiny or qwen")
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    w = gguf.GGUFWriter(str(path), "qwen2")
    w.add_name("tiny random qwen2")
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_block_count(cfg.num_hidden_layers)
    w.add_head_count(cfg.num_attention_heads)
    w.add_head_count_kv(cfg.num_key_value_heads)
    w.add_rope_freq_base(1_000_000.0)
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0 if quantize else gguf.LlamaFileType.ALL_F32)
    # Every id up to the embedding's rows (unused ones as [PADn], as llama.cpp writes them).
    by_id = {i: t for t, i in ids.items()}
    tokens, types = [], []
    for i in range(cfg.vocab_size):
        if i in by_id:
            tokens.append(by_id[i])
            types.append(gguf.TokenType.CONTROL if by_id[i] in specials else gguf.TokenType.NORMAL)
        else:
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_eos_token_id(ids["<|im_end|>"])
    w.add_pad_token_id(ids["<|endoftext|>"])
    w.add_bos_token_id(ids["<|endoftext|>"])
    w.add_add_bos_token(False)
    w.add_chat_template(CHATML_TEMPLATE)
    names = {
        "self_attn.q_proj": "attn_q",
        "self_attn.k_proj": "attn_k",
        "self_attn.v_proj": "attn_v",
        "self_attn.o_proj": "attn_output",
        "mlp.gate_proj": "ffn_gate",
        "mlp.up_proj": "ffn_up",
        "mlp.down_proj": "ffn_down",
        "input_layernorm": "attn_norm",
        "post_attention_layernorm": "ffn_norm",
    }
    expected: dict[str, Any] = {}
    for key, value in model.state_dict().items():
        if key == "lm_head.weight":  # tied to the embedding: llama.cpp writes no output.weight
            continue
        if key == "model.embed_tokens.weight":
            name = "token_embd.weight"
        elif key == "model.norm.weight":
            name = "output_norm.weight"
        else:
            _, _, layer, rest = key.split(".", 3)
            module, _, kind = rest.rpartition(".")
            name = f"blk.{layer}.{names[module]}.{kind}"
        data = value.detach().numpy().astype(np.float32)
        if q4k and data.ndim == 2 and name.startswith("blk."):
            raw = q4k_blocks(data.shape[0], data.shape[1], rng)
            kind4 = gguf.GGMLQuantizationType.Q4_K
            w.add_tensor(name, raw, raw_shape=raw.shape, raw_dtype=kind4)
            data = gguf.quants.dequantize(raw, kind4)
        elif quantize and data.ndim == 2:
            q = gguf.quants.quantize(data, gguf.GGMLQuantizationType.Q8_0)
            w.add_tensor(name, q, raw_shape=q.shape, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
            data = gguf.quants.dequantize(q, gguf.GGMLQuantizationType.Q8_0)
        else:
            w.add_tensor(name, data)
        expected[key] = data
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return expected
