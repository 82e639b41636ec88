"""Token masks: grammar engines behind one interface, batch mask filling on CPU threads, and the
device-side application of the masks.

A mask is a bitmask: row ``b`` is ``ceil(vocab / 32)`` int32 words, bit ``j`` of word ``i`` allowing
token ``32 * i + j``; both xgrammar and llguidance write this layout. ``MaskFiller`` fills the rows of
a batch on a worker thread (each engine spreads the rows over its own native threads) while the
caller runs the forward pass; the result is copied to the device and applied there.

Special and added tokens (``<|im_start|>``, ``<|extra_0|>``, ``<tool_call>``...) and the embedding's padding rows are banned
here, whatever a grammar allows: xgrammar reads such added tokens as plain text, so without this a
JSON string could contain ``<|im_start|>``. Stop tokens stay under the grammar's control: it allows
them exactly when the artifact is complete.
"""

from __future__ import annotations

import json
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol

import torch

from agent.errors import ConfigError
from agent.llm.grammar import Grammar

GRAMMAR_ENGINES = ("xgrammar", "llguidance")

LLG_LEXER_FUEL = 20_000_000
"""llguidance's budget for building a grammar's lexer (its default, 1,000,000, is too small for the
number ranges of a routing grammar over 150 locations; building runs at about 50,000 a
millisecond)."""


def bitmask_words(vocab: int) -> int:
    return (vocab + 31) // 32


class GrammarEngine(Protocol):
    """What the decoder needs from a grammar library."""

    name: str

    def compile(self, grammar: Grammar) -> Any:
        """The compiled form of ``grammar`` (raises ``ConfigError`` when the library rejects it)."""
        ...

    def matcher(self, compiled: Any) -> Any:
        """A fresh matcher at the start of ``compiled``."""
        ...

    def fill(self, matchers: list[Any], rows: list[int], bitmask: torch.Tensor) -> None:
        """Write the next-token mask of ``matchers[i]`` into ``bitmask[rows[i]]`` (CPU int32)."""
        ...

    def accept(self, matcher: Any, token: int) -> bool:
        """Advance ``matcher`` by ``token``; False when the grammar does not allow it."""
        ...

    def accept_batch(self, matchers: list[Any], tokens: list[int]) -> list[bool]:
        """``accept`` for many matchers at once (one call into the library)."""
        ...

    def terminated(self, matcher: Any) -> bool:
        """Whether ``matcher`` accepted a stop token at the end of a complete artifact."""
        ...


class XGrammarEngine:
    """xgrammar: grammars compiled to token-mask automata with precomputed per-state masks."""

    name = "xgrammar"

    def __init__(self, tokenizer: Any, vocab: int, stop_ids: list[int], threads: int) -> None:
        import xgrammar as xgr

        self._xgr = xgr
        self.info = xgr.TokenizerInfo.from_huggingface(
            tokenizer, vocab_size=vocab, stop_token_ids=stop_ids
        )
        self.compiler = xgr.GrammarCompiler(self.info, max_threads=threads)
        self.batch = xgr.BatchGrammarMatcher(threads)

    def token_bytes(self) -> list[bytes]:
        """Each token id's bytes (empty for ids past the tokenizer)."""
        return [bytes(b) for b in self.info.decoded_vocab]

    def compile(self, grammar: Grammar) -> Any:
        try:
            if grammar.format == "json_schema":
                return self.compiler.compile_json_schema(
                    grammar.source, any_whitespace=False, separators=(",", ":"), strict_mode=True
                )
            return self.compiler.compile_grammar(grammar.source, root_rule_name="root")
        except Exception as e:  # the library's own error types vary by version
            raise ConfigError(f"xgrammar rejected the grammar {grammar.name}: {e}") from e

    def matcher(self, compiled: Any) -> Any:
        return self._xgr.GrammarMatcher(compiled)

    def fill(self, matchers: list[Any], rows: list[int], bitmask: torch.Tensor) -> None:
        if matchers:
            self.batch.batch_fill_next_token_bitmask(matchers, bitmask, rows)

    def accept(self, matcher: Any, token: int) -> bool:
        return bool(matcher.accept_token(token))

    def accept_batch(self, matchers: list[Any], tokens: list[int]) -> list[bool]:
        if not matchers:
            return []
        return list(self._xgr.BatchGrammarMatcher.batch_accept_token(matchers, tokens))

    def terminated(self, matcher: Any) -> bool:
        return bool(matcher.is_terminated())


class LLGuidanceEngine:
    """llguidance: an Earley parser over a lexer, masks computed on demand (no precompilation)."""

    name = "llguidance"

    def __init__(self, tokenizer: Any, vocab: int, stop_ids: list[int], threads: int) -> None:
        import llguidance
        import llguidance.hf

        self._llg = llguidance
        self.limits = llguidance.LLParserLimits(initial_lexer_fuel=LLG_LEXER_FUEL)
        self.tokenizer = llguidance.hf.from_tokenizer(
            tokenizer, n_vocab=vocab, eos_token=stop_ids[0] if stop_ids else None
        )
        self.executor = llguidance.LLExecutor(num_threads=threads)

    def compile(self, grammar: Grammar) -> Any:
        llg = self._llg
        if grammar.format == "json_schema":
            schema = json.loads(grammar.source)
            schema["x-guidance"] = {
                "whitespace_flexible": False,
                "item_separator": ",",
                "key_separator": ":",
            }
            text = llg.LLMatcher.grammar_from_json_schema(schema)
        else:
            from llguidance.gbnf_to_lark import gbnf_to_lark

            text = llg.LLMatcher.grammar_from_lark(gbnf_to_lark(grammar.source))
        failed, log = llg.LLMatcher.validate_grammar_with_warnings(
            text, self.tokenizer, limits=self.limits
        )
        if failed:
            raise ConfigError(f"llguidance rejected the grammar {grammar.name}: {'; '.join(log)}")
        return text

    def matcher(self, compiled: Any) -> Any:
        m = self._llg.LLMatcher(self.tokenizer, compiled, limits=self.limits)
        if m.is_error():
            raise ConfigError(f"llguidance: {m.get_error()}")
        return m

    def fill(self, matchers: list[Any], rows: list[int], bitmask: torch.Tensor) -> None:
        if matchers:
            # What llguidance.torch.fill_next_token_bitmask_par does, without importing that
            # module (it compiles a torch kernel at import).
            assert bitmask.dtype == torch.int32 and bitmask.is_contiguous() and not bitmask.is_cuda
            batch, words = bitmask.shape
            self.executor.unsafe_compute_mask_ptr(
                list(zip(matchers, rows, strict=True)), bitmask.data_ptr(), words * 4, batch
            )

    def accept(self, matcher: Any, token: int) -> bool:
        return bool(matcher.consume_token(token)) and not matcher.is_error()

    def accept_batch(self, matchers: list[Any], tokens: list[int]) -> list[bool]:
        if not matchers:
            return []
        done = self.executor.consume_token_par(list(zip(matchers, tokens, strict=True)))
        return [bool(ok) and not m.is_error() for ok, m in zip(done, matchers, strict=True)]

    def terminated(self, matcher: Any) -> bool:
        return bool(matcher.is_stopped())


def grammar_engine(
    name: str, tokenizer: Any, vocab: int, stop_ids: list[int], threads: int
) -> GrammarEngine:
    """The grammar engine called ``name`` (``xgrammar`` or ``llguidance``)."""
    if name == "xgrammar":
        return XGrammarEngine(tokenizer, vocab, stop_ids, threads)
    if name == "llguidance":
        return LLGuidanceEngine(tokenizer, vocab, stop_ids, threads)
    raise ConfigError(f"unknown grammar engine {name!r}; use one of {', '.join(GRAMMAR_ENGINES)}")


class MaskFiller:
    """Fills a batch's bitmask on a worker thread while the caller runs the forward pass.

    ``start(matchers, rows)`` begins filling ``bitmask`` (pinned CPU memory when the model is on a
    GPU); ``wait()`` returns once it is full. Rows without a grammar are set from ``full`` (every
    token) or ``full_no_stop`` (every token but the stop tokens: ``ignore_eos``)."""

    def __init__(self, engine: GrammarEngine, slots: int, vocab: int, pin: bool) -> None:
        self.engine = engine
        words = bitmask_words(vocab)
        self.bitmask = torch.full((slots, words), -1, dtype=torch.int32, pin_memory=pin)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="formalist-masks")
        self._pending: Future[None] | None = None

    def start(self, matchers: list[Any], rows: list[int]) -> None:
        if not matchers:
            self._pending = None
            return
        self._pending = self._pool.submit(self.engine.fill, matchers, rows, self.bitmask)

    def wait(self) -> torch.Tensor:
        if self._pending is not None:
            self._pending.result()
            self._pending = None
        return self.bitmask

    def close(self) -> None:
        self._pool.shutdown(wait=True)


_BYTE_BITS: dict[torch.device, torch.Tensor] = {}


def unpack_bitmask(bitmask: torch.Tensor, vocab: int) -> torch.Tensor:
    """Bool ``[B, vocab]``: the bits of an int32 ``[B, words]`` bitmask, on its device. Each byte
    is looked up in a 256 x 8 table (one gather instead of 32 shifts per word); words are
    little-endian, as on x86 and CUDA devices."""
    table = _BYTE_BITS.get(bitmask.device)
    if table is None:
        values = torch.arange(256, dtype=torch.int32)[:, None]
        bits = ((values >> torch.arange(8, dtype=torch.int32)) & 1).bool()
        table = _BYTE_BITS[bitmask.device] = bits.to(bitmask.device)
    as_bytes = bitmask.view(torch.uint8).long()
    return table[as_bytes].reshape(bitmask.shape[0], -1)[:, :vocab]


_BIT = torch.arange(32, dtype=torch.int32)


def allowed_tokens(words: torch.Tensor) -> torch.Tensor:
    """The token ids one bitmask row (int32 ``[words]``, on the CPU) allows, ascending: only the
    non-zero words are expanded, so a row that allows few tokens costs little."""
    nz = words.nonzero()[:, 0]
    bits = ((words[nz][:, None] >> _BIT) & 1).bool()
    return (nz[:, None] * 32 + _BIT)[bits]


_BYTE_COUNTS: dict[torch.device, torch.Tensor] = {}


def count_allowed(bitmask: torch.Tensor) -> torch.Tensor:
    """Int64 ``[B]``: how many tokens each row of an int32 ``[B, words]`` bitmask allows."""
    table = _BYTE_COUNTS.get(bitmask.device)
    if table is None:
        values = torch.arange(256)
        counts = sum(((values >> j) & 1) for j in range(8))
        table = _BYTE_COUNTS[bitmask.device] = torch.as_tensor(counts).to(bitmask.device)
    return table[bitmask.view(torch.uint8).long()].sum(dim=-1)


def pack_bits(allowed: torch.Tensor) -> torch.Tensor:
    """The inverse of ``unpack_bitmask`` for a bool ``[vocab]`` vector: int32 ``[words]``."""
    vocab = allowed.shape[0]
    padded = torch.zeros(bitmask_words(vocab) * 32, dtype=torch.int64)
    padded[:vocab] = allowed.to(torch.int64)
    weights = torch.tensor([1 << j for j in range(32)], dtype=torch.int64)
    words = (padded.view(-1, 32) * weights).sum(dim=1)
    # Reinterpret as signed 32-bit words.
    words = torch.where(words >= 1 << 31, words - (1 << 32), words)
    return words.to(torch.int32)


def banned_tokens(tokenizer: Any, vocab: int, stop_ids: list[int]) -> torch.Tensor:
    """Bool ``[vocab]``: tokens never sampled — every special token and every added token but the
    stop tokens, and the embedding rows past the tokenizer. Added tokens are banned whether or not
    they are marked special: Qwen2.5 ships ``<tool_call>`` and ``<|fim_prefix|>`` ... as added
    tokens with ``special: false``, and a grammar engine would read them as plain text."""
    banned = torch.zeros(vocab, dtype=torch.bool)
    n = len(tokenizer)
    if n < vocab:
        banned[n:] = True
    special: set[int] = set(getattr(tokenizer, "all_special_ids", []) or [])
    special.update(getattr(tokenizer, "added_tokens_decoder", None) or {})
    for i in special - set(stop_ids):
        if 0 <= i < vocab:
            banned[i] = True
    return banned
