"""4-bit weights for CPU decoding, taken exactly from a GGUF file's Q4_K blocks.

A decode step reads every weight once; on a CPU that read is the step's cost. The GGUF file a
``local:`` model comes from already holds most of its weights as 4-bit numbers (Q4_K: in blocks of
32 along a row, ``w = scale * q - minus`` with ``q`` from 0 to 15), and torch has a CPU kernel that
multiplies by such weights without widening them first (``_weight_int4pack_mm_for_cpu``, groups of
32, ``w = (q - 8) * scale + zero``). So a Q4_K weight is packed for that kernel with the same
``q``, ``scale`` and ``zero = 8 * scale - minus``, rounded to bfloat16 as the dequantized weights
are: the model computes what the file says, reading a quarter of the bytes.

``Int4Linear`` keeps the layer's dense weight too: the kernel pays off only for a few rows (a
decode step of one or a few samples), while a prefill of hundreds of positions is faster as a
dense product (``PACKED_MAX_ROWS``). Weights of another type (Q6_K layers, the output layer) stay
dense. Each packed weight is checked against the dense one it replaces before it is used; a
weight whose layout does not match is left dense.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

log = logging.getLogger(__name__)

GROUP = 32
"""Q4_K's sub-block: one scale and one offset per 32 weights along a row."""
PACKED_MAX_ROWS = 8
"""Products of at most this many rows use the packed weight, more the dense one (measured on a
2-core AVX-512 machine, a 1536x8960 layer: 1 row 0.8 ms packed against 2.3 ms dense, 8 rows about
even, 256 rows 2.5 times slower packed)."""

CHECK_ROWS = 256
"""The rows of each packed weight compared with the dense one before it is used."""

_LAYERS = {
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}
"""GGUF tensor names (``blk.N.<name>.weight``) and the module under ``model.layers.N`` they are."""


def kernel_available() -> bool:
    """Whether this torch has the CPU kernels (torch 2.6 or later)."""
    aten = torch.ops.aten
    return hasattr(aten, "_weight_int4pack_mm_for_cpu") and hasattr(
        aten, "_convert_weight_to_int4pack_for_cpu"
    )


def unavailable(source: str | None, device: str, dtype: torch.dtype) -> str:
    """Why a model loaded from ``source`` (a ``.gguf`` file, or None for another checkpoint)
    on ``device`` in ``dtype`` cannot decode with packed 4-bit weights; empty when it can."""
    if source is None:
        return "the model is not a .gguf file (its 4-bit weights are what is packed)"
    if device != "cpu":
        return f"the kernel is for the CPU, and the model runs on {device}"
    if dtype != torch.bfloat16:
        return f"the kernel multiplies bfloat16, and the model runs in {dtype}"
    if not kernel_available():
        return f"torch {torch.__version__} lacks the CPU int4 kernel"
    return ""


class Int4Linear(nn.Module):
    """A linear layer with its weight also packed as 4 bits: products of at most
    ``PACKED_MAX_ROWS`` rows use the packed weight, others (and gradients) the dense one."""

    packed: torch.Tensor
    scales_zeros: torch.Tensor

    def __init__(self, dense: nn.Linear, packed: torch.Tensor, scales_zeros: torch.Tensor) -> None:
        super().__init__()
        self.in_features, self.out_features = dense.in_features, dense.out_features
        self.weight = dense.weight
        self.bias = dense.bias
        self.register_buffer("packed", packed, persistent=False)
        self.register_buffer("scales_zeros", scales_zeros, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.numel() // self.in_features
        if rows > PACKED_MAX_ROWS or x.dtype != torch.bfloat16 or torch.is_grad_enabled():
            return F.linear(x, self.weight, self.bias)
        flat = x.reshape(rows, self.in_features)
        out = torch.ops.aten._weight_int4pack_mm_for_cpu(
            flat, self.packed, GROUP, self.scales_zeros
        )
        if self.bias is not None:
            out = out + self.bias
        return out.reshape(*x.shape[:-1], self.out_features)


def q4k_affine(blocks: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A Q4_K tensor's raw blocks (``rows x (144 bytes per 256 weights)``, as ``GGUFReader``
    gives them) as ``q`` (rows x cols, 0..15), ``scale`` and ``minus`` (rows x cols / 32,
    float32), where the weight is ``scale * q - minus`` (gguf's own ``Q4_K.dequantize_blocks``,
    stopped before the product)."""
    import numpy as np
    from gguf.quants import Q4_K

    raw = np.asarray(blocks, dtype=np.uint8)
    rows = raw.shape[0]
    b = raw.reshape(-1, 144)
    n = b.shape[0]
    d = b[:, 0:2].copy().view(np.float16).astype(np.float32)
    dmin = b[:, 2:4].copy().view(np.float16).astype(np.float32)
    sc, m = Q4_K.get_scale_min(b[:, 4:16])
    scale = d * sc.astype(np.float32)  # n x 8 sub-blocks
    minus = dmin * m.astype(np.float32)
    qs = b[:, 16:].reshape(n, -1, 1, 32) >> np.array([0, 4], dtype=np.uint8).reshape(1, 1, 2, 1)
    q = (qs & np.uint8(0x0F)).reshape(rows, -1)
    return (
        torch.from_numpy(np.ascontiguousarray(q)),
        torch.from_numpy(scale.reshape(rows, -1)),
        torch.from_numpy(minus.reshape(rows, -1)),
    )


def pack(
    q: torch.Tensor, scale: torch.Tensor, minus: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``q``, ``scale``, ``minus`` (``q4k_affine``) in the CPU kernel's layout: the packed
    weight and the ``(cols / 32) x rows x 2`` bfloat16 scales and zeros."""
    packed = torch.ops.aten._convert_weight_to_int4pack_for_cpu(q.to(torch.int32), 1)
    zero = 8 * scale - minus
    scales_zeros = torch.stack([scale, zero], dim=-1).transpose(0, 1).contiguous()
    return packed, scales_zeros.to(torch.bfloat16)


def unpacked(q: torch.Tensor, scale: torch.Tensor, minus: torch.Tensor) -> torch.Tensor:
    """The float32 weight ``scale * q - minus``, 32 columns to a group."""
    rows, cols = q.shape
    grouped = q.to(torch.float32).reshape(rows, cols // GROUP, GROUP)
    return (grouped * scale[..., None] - minus[..., None]).reshape(rows, cols)


CACHE_FORMAT = 1
"""The version of ``cache_file``'s contents (module path + ``.packed`` / ``.scales_zeros``)."""


def cache_file(folder: str | Path) -> Path:
    """Where the packed weights of the model converted into ``folder`` are kept: the layout is
    torch's, so its version is part of the name."""
    return Path(folder) / f"int4-packed-v{CACHE_FORMAT}-torch{torch.__version__}.safetensors"


def pack_from_gguf(model: Any, path: str | Path, cache: str | Path | None = None) -> int:
    """Replace each linear layer of ``model`` (a Llama-style decoder in bfloat16 on the CPU)
    whose weight ``path`` holds as Q4_K by an ``Int4Linear``, after checking that the file's
    weight is the layer's (the largest difference within bfloat16 rounding). How many were
    packed. ``cache``: the folder ``path`` was converted into; the packed weights are kept
    there (``cache_file``) and read back by a later load instead of reading ``path`` again."""
    if cache is not None:
        kept = _from_cache(model, cache_file(cache))
        if kept:
            return kept
    done = _pack(model, path)
    if cache is not None and done:
        _to_cache(model, cache_file(cache))
    return done


def _modules(model: Any) -> dict[str, nn.Module]:
    return dict(model.named_modules())


def _swap(modules: dict[str, nn.Module], name: str, packed: Any, scales_zeros: Any) -> None:
    """Put an ``Int4Linear`` over the linear layer ``name`` in its parent's place."""
    owner, _, attr = name.rpartition(".")
    dense = modules[name]
    assert isinstance(dense, nn.Linear)
    setattr(modules[owner], attr, Int4Linear(dense, packed, scales_zeros))


def _from_cache(model: Any, file: Path) -> int:
    if not file.is_file():
        return 0
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        tensors = load_file(str(file))
    except (OSError, SafetensorError) as e:
        log.warning("%s: unreadable (%s): packing again", file, e)
        return 0
    modules = _modules(model)
    names = {k.rsplit(".", 1)[0] for k in tensors}
    for name in names:
        dense = modules.get(name)
        if not isinstance(dense, nn.Linear) or f"{name}.scales_zeros" not in tensors:
            log.warning("%s: %s is not a linear layer of this model: packing again", file, name)
            return 0
    for name in names:
        _swap(modules, name, tensors[f"{name}.packed"], tensors[f"{name}.scales_zeros"])
    return len(names)


def _to_cache(model: Any, file: Path) -> None:
    from safetensors.torch import save_file

    tensors = {}
    for name, m in _modules(model).items():
        if isinstance(m, Int4Linear):
            tensors[f"{name}.packed"] = m.packed
            tensors[f"{name}.scales_zeros"] = m.scales_zeros
    tmp = file.with_name(f".{file.name}.{os.getpid()}.tmp")
    try:
        save_file(tensors, str(tmp))
        os.replace(tmp, file)
    except OSError as e:
        log.warning("cannot keep the packed weights in %s: %s", file, e)
        tmp.unlink(missing_ok=True)


def _pack(model: Any, path: str | Path) -> int:
    from gguf import GGUFReader
    from gguf.constants import GGMLQuantizationType

    modules = _modules(model)
    done = 0
    reader = GGUFReader(str(path))
    for t in reader.tensors:
        parts = t.name.split(".")
        if t.tensor_type != GGMLQuantizationType.Q4_K or len(parts) != 4 or parts[0] != "blk":
            continue
        if parts[3] != "weight" or parts[2] not in _LAYERS:
            continue
        name = f"model.layers.{parts[1]}.{_LAYERS[parts[2]]}"
        dense = modules.get(name)
        if not isinstance(dense, nn.Linear) or dense.weight.dtype != torch.bfloat16:
            continue
        q, scale, minus = q4k_affine(t.data)
        if q.shape != dense.weight.shape or q.shape[1] % GROUP:
            log.warning("%s: shape %s is not the layer's %s", t.name, q.shape, dense.weight.shape)
            continue
        # Both are the file's numbers; the dense one was rounded to bfloat16 once (relative
        # error 2**-8), so a layout that does not match shows up far above that (in any rows:
        # the first CHECK_ROWS are compared).
        w = unpacked(q[:CHECK_ROWS], scale[:CHECK_ROWS], minus[:CHECK_ROWS])
        err = (w - dense.weight[:CHECK_ROWS].float()).abs().max().item()
        if err > 2**-7 * max(w.abs().max().item(), 1e-6):
            log.warning(
                "%s: the packed weight is not the layer's (off by %.3g): left dense", t.name, err
            )
            continue
        _swap(modules, name, *pack(q, scale, minus))
        done += 1
    return done


def packed_saving(model: Any) -> int:
    """Bytes a one-row decode step no longer reads: each ``Int4Linear``'s dense weight less its
    packed weight, scales and zeros."""
    saved = 0
    for m in model.modules():
        if isinstance(m, Int4Linear):
            dense = m.weight.numel() * m.weight.element_size()
            now = sum(t.numel() * t.element_size() for t in (m.packed, m.scales_zeros))
            saved += dense - now
    return saved
