"""Sampling: temperature, top-p, seeds, stop conditions and budgets.

Randomness is counter-based: the uniform number that picks sample ``s``'s token at step ``t`` is a
hash of ``(seed of s, t)``, computed on the device with integer arithmetic. A sample's tokens
therefore depend on its own seed and logits only, not on which other samples share its batch, the
batch size, or the order the scheduler runs them in; and nothing random lives in a generator
object that a CUDA graph would have to capture.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import torch

MASK32 = 0xFFFFFFFF
_MIX = 0x45D9F3B
_GOLDEN = 0x9E3779B1


def mix32(x: int) -> int:
    """A 32-bit integer hash (the same function as ``mix32_tensor``, on a Python int)."""
    x &= MASK32
    x = ((x ^ (x >> 16)) * _MIX) & MASK32
    x = ((x ^ (x >> 16)) * _MIX) & MASK32
    return x ^ (x >> 16)


def mix32_tensor(x: torch.Tensor) -> torch.Tensor:
    """``mix32`` element-wise on an int64 tensor of values in ``[0, 2**32)`` (products stay below
    2**59, so int64 never overflows)."""
    x = ((x ^ (x >> 16)) * _MIX) & MASK32
    x = ((x ^ (x >> 16)) * _MIX) & MASK32
    return x ^ (x >> 16)


def sample_seed(seed: int, index: int, retry: int = 0) -> int:
    """The seed of sample ``index`` of a request seeded ``seed`` (``retry`` > 0: its redraws)."""
    return mix32(mix32(seed) ^ mix32(index * 2 + 1) ^ mix32((retry + 1) * _GOLDEN))


def uniforms(seeds: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
    """One uniform number in ``[0, 1)`` per row, from its seed and step (int64 tensors)."""
    h = mix32_tensor(mix32_tensor(seeds & MASK32) ^ ((steps * _GOLDEN) & MASK32))
    return (h >> 8).to(torch.float32) * (1.0 / (1 << 24))


@dataclass(frozen=True, slots=True)
class SamplingParams:
    """How to draw the continuation of one prompt.

    ``n`` samples share the prompt's prefill. ``temperature`` 0 is greedy (argmax); otherwise
    tokens are drawn from the softmax of logits / temperature, restricted to the smallest set of
    most likely tokens whose probability reaches ``top_p``. Sample ``i`` uses seed
    ``sample_seed(seed, i)``. A sample ends at a stop token, at one of the ``stop`` strings (the
    text is cut where it begins, as OpenAI-style servers do; the token that completed it stays in
    ``token_ids``), after ``max_new_tokens`` tokens, or when ``time_budget_s`` seconds have passed
    since generation started (None: no limit; a sample that has not begun by then gets no token). ``ignore_eos`` suppresses stop tokens
    (benchmarks that need a fixed number of steps). The first ``greedy`` of the ``n`` samples
    are drawn greedily whatever ``temperature`` says (a vote that keeps the greedy reply among
    its samples, in the same batch).
    """

    n: int = 1
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0
    max_new_tokens: int = 1024
    time_budget_s: float | None = None
    stop: tuple[str, ...] = ()
    ignore_eos: bool = False
    greedy: int = 0

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError("n must be at least 1")
        if not 0 <= self.greedy <= self.n:
            raise ValueError("greedy must be from 0 to n")
        if self.temperature < 0:
            raise ValueError("temperature must be >= 0")
        if not 0 < self.top_p <= 1:
            raise ValueError("top_p must be in (0, 1]")
        if self.max_new_tokens < 1:
            raise ValueError("max_new_tokens must be at least 1")
        if self.time_budget_s is not None and self.time_budget_s <= 0:
            raise ValueError("time_budget_s must be positive")

    def of_sample(self, index: int) -> SamplingParams:
        """How sample ``index`` is drawn: greedily among the first ``greedy``, else as given."""
        if index < self.greedy and self.temperature:
            return replace(self, temperature=0.0)
        return self


FINISH_COMPLETE = "complete"
"""A stop token ended the sample (under a grammar: the artifact is complete)."""
FINISH_STOP = "stop"
"""One of the stop strings ended the sample."""
FINISH_LENGTH = "length"
"""The token budget ran out."""
FINISH_TIME = "time"
"""The time budget ran out."""
FINISH_REJECTED = "rejected"
"""The grammar engine refused the sampled token (a defect; the sample is cut off)."""


@dataclass(frozen=True, slots=True)
class Sample:
    """One generated continuation. ``text`` excludes the stop token; ``finish`` is one of the
    ``FINISH_*`` values; ``cut_off`` is true when the text is not a complete artifact (the budget
    ran out, or under a grammar anything but a stop token ended it); ``seed`` is the sample's own
    seed; ``elapsed_s`` runs from the start of generation to the sample's end."""

    text: str
    token_ids: tuple[int, ...]
    finish: str
    cut_off: bool
    index: int
    seed: int
    grammar_id: str = ""
    elapsed_s: float = 0.0

    def to_json(self) -> dict[str, object]:
        return {
            "text": self.text,
            "finish": self.finish,
            "cut_off": self.cut_off,
            "tokens": len(self.token_ids),
            "seed": self.seed,
        }


GREEDY, SAMPLED, MIXED = "greedy", "sampled", "mixed"
"""Which rows of a batch are greedy (temperature 0): all, none, or some."""


def choose_tokens(
    logits: torch.Tensor,
    allowed: torch.Tensor,
    inv_temperature: torch.Tensor,
    top_p: torch.Tensor,
    seeds: torch.Tensor,
    steps: torch.Tensor,
    use_top_p: bool,
    mode: str = MIXED,
    unit_temperature: bool = False,
) -> torch.Tensor:
    """The next token of each row (int64 ``[B]``), on the logits' device, without synchronising.

    ``allowed`` (bool ``[B, V]``) is the grammar's mask and the always-banned tokens combined; a
    disallowed token gets probability exactly 0. Rows with ``inv_temperature`` 0 take the argmax;
    the others draw by inverting the cumulative distribution of softmax(logits / temperature),
    cut to the nucleus ``top_p``, at ``uniforms(seeds, steps)``. ``mode`` says which kinds of row
    the batch holds (``GREEDY``, ``SAMPLED`` or ``MIXED``) and ``unit_temperature`` that every
    sampled row has temperature 1, so the unneeded work is skipped.
    """
    scores = torch.where(allowed, logits, float("-inf"))
    greedy = scores.argmax(dim=-1) if mode != SAMPLED else None
    if mode == GREEDY:
        assert greedy is not None
        return greedy
    # Unnormalised probabilities, computed in place: exp((score - max) / temperature).
    temp = torch.where(inv_temperature > 0, inv_temperature, torch.ones_like(inv_temperature))
    weights = scores.sub_(scores.amax(dim=-1, keepdim=True))
    if not unit_temperature:
        weights = weights.mul_(temp[:, None])
    weights = weights.exp_()
    # A margin below 1 keeps the target strictly under the total, so the search always lands on a
    # token of positive probability (the cumulative sum only rises at such tokens).
    u = uniforms(seeds, steps) * (1.0 - 2.0**-20)
    if use_top_p:
        sorted_w, order = weights.sort(dim=-1, descending=True, stable=True)
        cdf = sorted_w.cumsum(dim=-1)
        total = cdf[:, -1:]
        # Keep the most likely tokens until their mass reaches top_p (the first always stays).
        sorted_w = sorted_w * ((cdf - sorted_w) < top_p[:, None] * total)
        cdf = sorted_w.cumsum(dim=-1)
        pick = torch.searchsorted(cdf, u[:, None] * cdf[:, -1:], right=True)
        drawn = order.gather(1, pick.clamp(max=cdf.shape[-1] - 1))[:, 0]
    else:
        cdf = weights.cumsum(dim=-1)
        pick = torch.searchsorted(cdf, u[:, None] * cdf[:, -1:], right=True)
        drawn = pick[:, 0].clamp(max=cdf.shape[-1] - 1)
    if greedy is None:
        return drawn
    return torch.where(inv_temperature > 0, drawn, greedy)


@dataclass(slots=True)
class StopWatch:
    """Token and time budgets of one request's samples, and its stop strings."""

    params: SamplingParams
    started: float = field(default_factory=time.perf_counter)

    def out_of_time(self, now: float) -> bool:
        budget = self.params.time_budget_s
        return budget is not None and now - self.started > budget

    def stop_at(self, generated: bytes, added: int) -> int | None:
        """Where the first stop string that ends inside the last ``added`` bytes of ``generated``
        begins (a byte offset), or None. Earlier bytes were searched when they were added."""
        found = None
        for s in self.params.stop:
            sb = s.encode("utf-8")
            if not sb:
                continue
            start = max(len(generated) - added - len(sb) + 1, 0)
            i = generated.find(sb, start)
            if i >= 0 and (found is None or i < found):
                found = i
        return found
