"""Tiny random-weight models with the real Qwen vocabulary, for tests and CPU smoke runs.

``tiny_model_dir(root)`` saves one (``save_pretrained``) under ``root`` once per process, so every
test module loads the same checkpoint by path; ``tiny_engine(root)`` is its CPU engine, shared the
same way (through ``chat_model.load_engine``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agent.llm.local.grammar import Bounds

TEST_BOUNDS = Bounds(max_string=8, max_items=2, any_depth=1, max_statements=4, max_name=8)
"""Grammar limits that keep a random model's samples short (it would otherwise ramble until the
token budget runs out)."""

ENGINE_OPTIONS: dict[str, Any] = {
    "device": "cpu",
    "max_batch": 32,
    "max_len": 4096,
    "threads": 1,
    "torch_threads": 1,
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
