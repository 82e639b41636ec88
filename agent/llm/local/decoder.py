"""A decoder-only transformer's forward pass over a static KV cache, one cache slot per sequence.

The weights stay in the Hugging Face model (``from_pretrained``); this module runs its layers with
its own attention over preallocated key/value tensors, so that every decode step has the same shapes
and no Python-side cache bookkeeping: the step can be captured once as a CUDA graph and replayed.
Each sequence has its own position, so sequences of different lengths share a batch without padding,
and a finished sequence's slot takes the next one while the others go on (continuous batching).

Supported: the Qwen2, Qwen3, Llama and Mistral architectures (RMSNorm, rotary positions, grouped
query attention, gated MLP) without sliding-window attention.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from agent.errors import ConfigError

SUPPORTED_ARCHITECTURES = ("qwen2", "qwen3", "llama", "mistral")

LENGTH_BUCKETS = (128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768)
"""The decode step attends over the first ``bucket`` cache positions, the smallest bucket that covers
every sequence in the batch: shapes stay static (one CUDA graph per bucket) while a short context
does not pay for reading the whole cache."""


PREFILL_CHUNK = 256
"""Prompt positions run together in prefill: enough rows for the matrix products to run at the
machine's compute rate (on a CPU, bfloat16 products reach it from a few hundred rows), few enough
that a chunk's activations stay small."""


def check_supported(model: Any) -> None:
    """Raise ``ConfigError`` unless ``model`` is an architecture this decoder runs."""
    cfg = model.config
    arch = getattr(cfg, "model_type", "?")
    if arch not in SUPPORTED_ARCHITECTURES:
        raise ConfigError(
            f"local: models must be one of {', '.join(SUPPORTED_ARCHITECTURES)} (a decoder this "
            f"backend runs over a static cache); this one is {arch!r}. Serve it with vLLM or SGLang "
            "and use openai:MODEL instead"
        )
    if getattr(cfg, "use_sliding_window", False) and getattr(cfg, "sliding_window", None):
        raise ConfigError("local: sliding-window attention is not supported; disable it in config")
    if getattr(cfg, "hidden_act", "silu") != "silu":
        raise ConfigError(f"local: the MLP activation {cfg.hidden_act!r} is not supported")


@dataclass(slots=True)
class PrefixCache:
    """The keys and values of a prompt (all but its last token), computed once and copied into the
    slot of every sample drawn from it: ``keys[l]`` is ``[kv_heads, length, head_dim]``."""

    keys: list[torch.Tensor] = field(default_factory=list)
    values: list[torch.Tensor] = field(default_factory=list)
    length: int = 0


class StaticDecoder:
    """Runs ``model`` (a Hugging Face causal LM) over a cache of ``slots`` sequences of at most
    ``max_len`` positions each.

    ``decode(tokens, positions, attend)`` takes one token per slot in ``[0, B)`` at its position,
    writes its key and value into the cache there and returns the next-token logits (float32,
    ``[B, vocab]``). Position ``max_len - 1`` is scratch: idle slots write there, and no sequence
    ever attends to it, so a sequence may use positions ``0 .. max_len - 2``.
    """

    def __init__(self, model: Any, slots: int, max_len: int) -> None:
        check_supported(model)
        self.model = model
        cfg = model.config
        inner = model.model
        self.embed = inner.embed_tokens
        self.layers = list(inner.layers)
        self.norm = inner.norm
        self.lm_head = model.lm_head
        self.n_heads = int(cfg.num_attention_heads)
        self.n_kv = int(getattr(cfg, "num_key_value_heads", None) or self.n_heads)
        self.head_dim = int(getattr(cfg, "head_dim", None) or cfg.hidden_size // self.n_heads)
        self.group = self.n_heads // self.n_kv
        self.vocab = int(self.lm_head.weight.shape[0])
        p = self.lm_head.weight
        self.device, self.dtype = p.device, p.dtype
        self.slots, self.max_len = slots, max_len
        self.scratch = max_len - 1
        shape = (len(self.layers), slots, self.n_kv, max_len, self.head_dim)
        self.k_cache = torch.zeros(shape, dtype=self.dtype, device=self.device)
        self.v_cache = torch.zeros(shape, dtype=self.dtype, device=self.device)
        # cos/sin for every position, from the model's own rotary module (any scaling it applies).
        rope = inner.rotary_emb
        pos = torch.arange(max_len, device=self.device)[None]
        probe = torch.zeros(1, dtype=torch.float32, device=self.device)
        cos, sin = rope(probe, pos)
        self.cos = cos[0].to(self.dtype)
        self.sin = sin[0].to(self.dtype)
        self.positions = torch.arange(max_len, device=self.device)
        self.rows = torch.arange(slots, device=self.device)

    @property
    def kv_bytes_per_token(self) -> int:
        """Bytes of keys and values one cached position holds across all layers."""
        return 2 * len(self.layers) * self.n_kv * self.head_dim * self.k_cache.element_size()

    # -- pieces ----------------------------------------------------------------------------------
    @staticmethod
    def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        half = x.shape[-1] // 2
        rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
        return x * cos + rotated * sin

    def _qkv(
        self, attn: Any, h: torch.Tensor, lead: tuple[int, ...]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        q = attn.q_proj(h).view(*lead, self.n_heads, self.head_dim)
        k = attn.k_proj(h).view(*lead, self.n_kv, self.head_dim)
        v = attn.v_proj(h).view(*lead, self.n_kv, self.head_dim)
        q_norm = getattr(attn, "q_norm", None)  # Qwen3 normalises each head before rotation
        if q_norm is not None:
            q = q_norm(q)
            k = attn.k_norm(k)
        return q, k, v

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Float32 logits of final hidden states (``decode_hidden``'s output)."""
        return self.lm_head(hidden).float()

    def logits_at(self, hidden: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Float32 logits of one final hidden state ``[H]`` for the given token ids only: the
        output layer's rows for those tokens, so a small set costs little."""
        w = self.lm_head.weight[tokens]
        b = self.lm_head.bias
        return F.linear(hidden, w, None if b is None else b[tokens]).float()

    # -- prefill ---------------------------------------------------------------------------------
    @torch.inference_mode()
    def prefill(
        self, ids: list[int], past: PrefixCache | None = None, chunk: int = PREFILL_CHUNK
    ) -> PrefixCache:
        """Keys and values of ``ids`` (positions ``0 .. len(ids) - 1``), for ``load``.

        ``past`` holds the keys and values of a prefix of ``ids`` already computed (its
        ``length`` a multiple of ``chunk``, or all of ``ids``): only the rest is run. The rest
        runs ``chunk`` positions at a time, chunks starting at multiples of ``chunk``, each
        attending to everything before it: a chunk's matrix products keep to the cache's size, and
        every position is computed in the same chunk, at the same shape, whether or not a prefix
        was reused, so a prompt's cache (and its samples) are the same bit for bit either way."""
        n = len(ids)
        if n >= self.scratch:
            raise ValueError(f"a prompt of {n} tokens does not fit {self.max_len} positions")
        start = past.length if past is not None else 0
        if start > n or (start % chunk and start != n):
            raise ValueError(f"a reused prefix of {start} positions does not fit {n} / {chunk}")
        if not n:
            return PrefixCache()
        shape = (self.n_kv, n, self.head_dim)
        keys = [torch.empty(shape, dtype=self.dtype, device=self.device) for _ in self.layers]
        values = [torch.empty(shape, dtype=self.dtype, device=self.device) for _ in self.layers]
        if past is not None and start:
            for i in range(len(self.layers)):
                keys[i][:, :start].copy_(past.keys[i][:, :start])
                values[i][:, :start].copy_(past.values[i][:, :start])
        for s in range(start, n, chunk):
            e = min(n, s + chunk)
            self._prefill_chunk(ids[s:e], s, keys, values)
        return PrefixCache(keys, values, n)

    def _prefill_chunk(
        self, ids: list[int], s: int, keys: list[torch.Tensor], values: list[torch.Tensor]
    ) -> None:
        """Run positions ``s .. s + len(ids) - 1``, writing their keys and values into ``keys``
        and ``values`` (which hold positions ``0 .. s - 1`` already)."""
        t = len(ids)
        e = s + t
        x = self.embed(torch.tensor(ids, device=self.device))
        cos, sin = self.cos[s:e, None, :], self.sin[s:e, None, :]
        # Query i (position s + i) sees keys 0 .. s + i.
        mask = None if not s else self.positions[:e][None, :] <= self.positions[s:e, None]
        for i, layer in enumerate(self.layers):
            attn = layer.self_attn
            h = layer.input_layernorm(x)
            q, k, v = self._qkv(attn, h, (t,))
            q, k = self._rotate(q, cos, sin), self._rotate(k, cos, sin)
            keys[i][:, s:e].copy_(k.transpose(0, 1))
            values[i][:, s:e].copy_(v.transpose(0, 1))
            qh = q.transpose(0, 1)[None]  # [1, heads, t, d]
            kr = keys[i][:, :e].repeat_interleave(self.group, dim=0)[None]
            vr = values[i][:, :e].repeat_interleave(self.group, dim=0)[None]
            if mask is None:
                o = F.scaled_dot_product_attention(qh, kr, vr, is_causal=True)
            else:
                o = F.scaled_dot_product_attention(qh, kr, vr, attn_mask=mask)
            x = x + attn.o_proj(o[0].transpose(0, 1).reshape(t, -1))
            x = x + layer.mlp(layer.post_attention_layernorm(x))

    def load(self, slot: int, prefix: PrefixCache) -> None:
        """Copy ``prefix`` into ``slot`` (positions ``0 .. prefix.length - 1``)."""
        n = prefix.length
        if not n:
            return
        for i, (k, v) in enumerate(zip(prefix.keys, prefix.values, strict=True)):
            self.k_cache[i, slot, :, :n].copy_(k)
            self.v_cache[i, slot, :, :n].copy_(v)

    # -- decode ----------------------------------------------------------------------------------
    def decode(self, tokens: torch.Tensor, positions: torch.Tensor, attend: int) -> torch.Tensor:
        """Logits ``[B, vocab]`` (float32) after ``tokens[b]`` at ``positions[b]`` for slots
        ``0 .. B - 1``, attending over cache positions ``0 .. attend - 1`` (masked per slot to its
        own positions ``<= positions[b]``). Pure tensor work: no host synchronisation."""
        return self.logits(self.decode_hidden(tokens, positions, attend))

    def decode_hidden(
        self, tokens: torch.Tensor, positions: torch.Tensor, attend: int, live: int = 0
    ) -> torch.Tensor:
        """``decode`` up to the final normalised hidden states ``[B, H]`` (before the output
        layer). With ``live``, only slots ``0 .. live - 1`` attend (the others' attention output
        is zero): the matrix products keep the batch's one shape, while idle slots do not read
        the cache (each slot's attention is its own, whatever the number of slots)."""
        b = tokens.shape[0]
        live = live or b
        rows = self.rows[:b]
        x = self.embed(tokens)
        cos = self.cos[positions][:, None, :]
        sin = self.sin[positions][:, None, :]
        visible = (self.positions[:attend][None, :] <= positions[:, None])[:, None, None, :]
        for i, layer in enumerate(self.layers):
            attn = layer.self_attn
            h = layer.input_layernorm(x)
            q, k, v = self._qkv(attn, h, (b,))
            q, k = self._rotate(q, cos, sin), self._rotate(k, cos, sin)
            kc, vc = self.k_cache[i], self.v_cache[i]
            kc[rows, :, positions] = k
            vc[rows, :, positions] = v
            # One query token: the heads of a KV group go in the query-length dimension, so the
            # kernel reads each cached key once for the whole group.
            qg = q.view(b, self.n_kv, self.group, self.head_dim)
            o = F.scaled_dot_product_attention(
                qg[:live], kc[:live, :, :attend], vc[:live, :, :attend], attn_mask=visible[:live]
            ).reshape(live, self.n_heads * self.head_dim)
            if live < b:
                o = torch.cat((o, o.new_zeros(b - live, o.shape[1])))
            x = x + attn.o_proj(o)
            x = x + layer.mlp(layer.post_attention_layernorm(x))
        return self.norm(x)


def attend_bucket(length: int, max_len: int, step: int = 0) -> int:
    """The smallest length bucket that holds ``length`` positions (capped at ``max_len``); with
    ``step``, the next multiple of ``step`` instead (on a CPU there are no graphs to keep few, and
    every slot of the batch reads its keys and values up to the bucket: 2,300 positions read
    2,304 rather than 4,096)."""
    if step:
        return min(-(-length // step) * step, max_len)
    for b in LENGTH_BUCKETS:
        if b >= length:
            return min(b, max_len)
    return max_len


class GraphCache:
    """Closures captured as CUDA graphs on first use and replayed after, all sharing one memory
    pool. A closure must read and write only tensors whose addresses do not change (static
    buffers); it returns its output tensor, which the graph rewrites on every replay. Replaying a
    graph launches a whole step at once, so a batch-1 step costs the GPU's time rather than
    Python's and the kernel launches'.

    Capture first runs the closure twice for real (warm-up, on a side stream): ``prepare`` and
    ``restore`` run before and after, so a closure with side effects can aim them somewhere
    harmless (the decode step writes its keys and values at the scratch position)."""

    def __init__(self) -> None:
        self.graphs: dict[Any, tuple[torch.cuda.CUDAGraph, torch.Tensor]] = {}
        self.pool: Any = None

    def run(
        self,
        key: Any,
        fn: Callable[[], torch.Tensor],
        prepare: Callable[[], None] | None = None,
        restore: Callable[[], None] | None = None,
    ) -> torch.Tensor:
        if key not in self.graphs:
            if prepare is not None:
                prepare()
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(2):
                    fn()
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool=self.pool):
                out = fn()
            if self.pool is None:
                self.pool = graph.pool()
            if restore is not None:
                restore()
            self.graphs[key] = (graph, out)
        graph, out = self.graphs[key]
        graph.replay()
        return out
