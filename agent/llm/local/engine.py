"""The local decoding engine: a causal LM loaded with ``from_pretrained``, batched grammar-constrained
sampling over a static KV cache.

One ``generate`` call takes any number of requests (a prompt, a grammar, sampling parameters with
``n`` samples each) and runs them as one continuously refilled batch:

- each prompt is prefilled once and its cache copied into the slot of each of its samples;
- every step, the grammar masks of the batch are filled on CPU threads while the forward pass runs
  (on a GPU the step is a replayed CUDA graph), then copied to the device and applied there;
- tokens are drawn by ``sampling.choose_tokens`` from per-sample counter-based randomness, and
  (``batch_invariant``, the default on CUDA) every step runs at the one batch shape ``max_batch``, so a
  sample's tokens do not depend on the batch it ran in: matrix kernels pick their blocking and
  reduction order by the number of rows, and a row's logits at 1, 8 or 32 rows differ in the last
  bits, enough to change a draw now and then;
- a sample ends complete (a stop token the grammar accepts, or the token budget reached where the
  grammar would accept one), at a stop string, or cut off by its token or time budget; a finished
  sample's slot takes the next waiting one (and, with ``batch_invariant`` off, when none waits the
  survivors move into a smaller batch).

Only torch, transformers and the grammar library are imported here (no LangChain).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from agent.errors import ConfigError
from agent.llm.grammar import Grammar
from agent.llm.local import packed
from agent.llm.local.decoder import (
    LENGTH_BUCKETS,
    PREFILL_CHUNK,
    GraphCache,
    PrefixCache,
    StaticDecoder,
    attend_bucket,
)
from agent.llm.local.masks import (
    MaskFiller,
    allowed_tokens,
    banned_tokens,
    count_allowed,
    grammar_engine,
    pack_bits,
    unpack_bitmask,
)
from agent.llm.local.sampling import (
    FINISH_COMPLETE,
    FINISH_LENGTH,
    FINISH_REJECTED,
    FINISH_STOP,
    FINISH_TIME,
    GREEDY,
    MIXED,
    SAMPLED,
    Sample,
    SamplingParams,
    StopWatch,
    choose_tokens,
    sample_seed,
)

CPU_ATTEND_STEP = 256
"""On the CPU a decode step attends over the live positions rounded up to a multiple of this
(masked positions add exact zeros to the softmax, so a row's result does not depend on it)."""

SPARSE_ROW_LIMIT = 16_384
"""On the CPU, a row whose mask allows at most this many tokens gets the logits of those tokens
only (the output layer's other rows are never multiplied)."""

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """A prompt (text already in the model's chat format, or token ids), the grammar its samples
    must follow (None: free text) and how to sample it. ``seeds`` overrides the samples' seeds
    (one per sample; by default sample ``i`` gets ``sample_seed(params.seed, i)``)."""

    prompt: str | Sequence[int]
    grammar: Grammar | None = None
    params: SamplingParams = field(default_factory=SamplingParams)
    seeds: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.seeds is not None and len(self.seeds) != self.params.n:
            raise ValueError(f"{len(self.seeds)} seeds for {self.params.n} samples")

    def seed(self, index: int) -> int:
        if self.seeds is not None:
            return self.seeds[index]
        return sample_seed(self.params.seed, index)


@dataclass(slots=True)
class GenerationStats:
    """What the last ``generate`` call did: decode ``steps`` and the sum of active rows over them
    (``row_steps``: tokens decoded), seconds in the decode loop, in prefill, and waiting for masks
    after the forward pass had finished (``mask_wait_s``: mask filling that did not overlap);
    ``batch_sizes`` and ``step_s`` count the steps and their seconds by batch size (the shape run),
    ``live_steps`` and ``live_step_s`` by the number of live samples in them; ``prefill_tokens``
    the prompt positions run and ``reused_tokens`` those taken from the prefix cache instead.
    On a GPU the host
    waits for the masks while the forward pass runs: ``mask_bound_steps`` counts the steps whose
    forward pass had finished before their masks were ready (the masks were the critical path)."""

    steps: int = 0
    row_steps: int = 0
    decode_s: float = 0.0
    prefill_s: float = 0.0
    mask_wait_s: float = 0.0
    batch_sizes: dict[int, int] = field(default_factory=dict)
    step_s: dict[int, float] = field(default_factory=dict)
    live_steps: dict[int, int] = field(default_factory=dict)
    live_step_s: dict[int, float] = field(default_factory=dict)
    mask_bound_steps: int = 0
    prefill_tokens: int = 0
    reused_tokens: int = 0


@dataclass(slots=True)
class _Row:
    request: int
    index: int
    seed: int
    params: SamplingParams
    watch: StopWatch
    grammar: Grammar | None
    matcher: Any = None
    tokens: list[int] = field(default_factory=list)
    text: bytearray = field(default_factory=bytearray)
    pos: int = 0
    next_input: int = 0
    finish: str = ""
    cut_off: bool = False
    ended: float = 0.0


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def cpu_flags() -> set[str]:
    """The CPU's feature flags (``/proc/cpuinfo``; empty where it cannot be read)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.partition(":")[2].split())
    except OSError:
        pass
    return set()


def cpu_has_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 matrices natively (AVX-512 BF16 or AMX), so that
    bfloat16 weights, half the bytes of float32 ones, are read and multiplied at full speed.
    Without them torch converts bfloat16 in software and float32 is faster."""
    flags = cpu_flags()
    if not flags & {"avx512_bf16", "amx_bf16"}:
        return False
    return bool(torch.backends.mkldnn.is_available())


def default_dtype(device: str) -> torch.dtype:
    """bfloat16 on CUDA and on CPUs with native bfloat16 (``cpu_has_bf16``), else float32. A
    decode step reads every weight once, so its time on a CPU is about the bytes of the weights
    over the memory bandwidth: bfloat16 halves it."""
    if device.startswith("cuda") or cpu_has_bf16():
        return torch.bfloat16
    return torch.float32


CPU_BATCH_INVARIANT = False
"""Whether a CPU engine loaded by ``Engine.from_pretrained`` runs every step at ``max_batch`` rows
unless told. Off: on a CPU a matrix product's time grows with its rows once the weights no longer
dominate, and a greedy reply is one row. Measured on this project's 2-core AVX2 machine (no
native bfloat16, so float32): a 1536 x 8960 layer took 12.6 ms for one row and 44.7 ms for eight,
and NL4Opt items took 220-290 s with every step at 8 rows. A vote's samples still run together, at
the power of two that holds them."""


def _cpu_times() -> tuple[float, float] | None:
    """The whole machine's (busy, total) CPU time so far in clock ticks, from ``/proc/stat``;
    None where it cannot be read (not Linux)."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = [float(x) for x in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    if len(fields) < 5:
        return None
    return sum(fields) - fields[3] - fields[4], sum(fields)


def _own_cpu_s() -> float:
    t = os.times()
    return t.user + t.system


def busy_elsewhere(window_s: float = 0.3) -> float | None:
    """How many cores other processes kept busy over the next ``window_s`` seconds (the machine's
    busy share times its cores, less this process's own use); None where ``/proc/stat`` cannot
    be read."""
    before, own_before, t0 = _cpu_times(), _own_cpu_s(), time.monotonic()
    if before is None:
        return None
    time.sleep(window_s)
    after, own_after, t1 = _cpu_times(), _own_cpu_s(), time.monotonic()
    if after is None or after[1] <= before[1] or t1 <= t0:
        return None
    machine = (after[0] - before[0]) / (after[1] - before[1]) * (os.cpu_count() or 1)
    return max(0.0, machine - (own_after - own_before) / (t1 - t0))


def free_cpus() -> int:
    """The CPU cores this process may run on (its affinity) less the cores other processes keep
    busy now (``busy_elsewhere``; where that cannot be measured, the load average of the last
    minute), rounded, and at least 1. On a machine other work keeps busy, torch's default of one
    thread per core makes every small operation wait for threads that are not scheduled (on a
    loaded 2-core machine the default ran 3-6x slower than one thread). The load average is not
    the first choice: it counts this process's own past work, such as loading the model just
    before the engine is built, and so read one core of an idle 2-core machine as taken."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cpus = os.cpu_count() or 1
    others = busy_elsewhere()
    if others is None:
        try:
            others = os.getloadavg()[0]
        except (AttributeError, OSError):
            others = 0.0
    return max(1, min(cpus, round(cpus - others)))


class Engine:
    """Samples from a causal LM under grammars.

    ``max_batch`` sequences decode at once, each at most ``max_len`` positions (prompt included).
    ``grammar_engine`` is ``xgrammar`` or ``llguidance``; ``threads`` the CPU threads that fill
    masks (default: half of ``free_cpus()``). On CUDA, decode steps run as CUDA graphs unless
    ``graphs`` is False; ``compile`` also runs them through ``torch.compile`` first.
    ``torch_threads`` sets torch's CPU threads while generating (default on the CPU:
    ``free_cpus()`` when the engine is built, since on a small or shared machine fewer threads
    avoid the spin-waits of many small parallel operations; on CUDA torch's own setting).
    ``batch_invariant`` (default) runs every step at ``max_batch`` rows so that samples do not
    depend on their batch; off, a step runs at the
    smallest power of two that holds the live samples (faster at the tail of a batch, and at
    batch 1 with a large ``max_batch``), and the same seed may then give another sample when the
    batch differs. ``generate`` calls are serialised (one engine, one cache).

    Prompt caches are kept (``prefix_cache_mb`` of them, least recently used dropped first): a
    prompt that begins like one prefilled before (the same system prompt and examples) takes
    the positions they share, in whole prefill chunks, and runs only the rest.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        max_batch: int = 32,
        max_len: int = 4096,
        grammar_engine_name: str = "xgrammar",
        threads: int | None = None,
        graphs: bool | None = None,
        compile: bool = False,
        torch_threads: int | None = None,
        batch_invariant: bool = True,
        prefix_cache_mb: int = 1024,
    ) -> None:
        self.model = model.eval()
        self.prefix_cache_bytes = prefix_cache_mb << 20
        self._prefixes: OrderedDict[tuple[int, ...], PrefixCache] = OrderedDict()
        self.batch_invariant = batch_invariant
        self._lock = threading.Lock()
        self.tokenizer = tokenizer
        self.decoder = StaticDecoder(model, max_batch, max_len)
        self.device = self.decoder.device
        free = free_cpus()
        if torch_threads is None and self.device.type == "cpu":
            torch_threads = free
        self.torch_threads = torch_threads
        self.vocab = self.decoder.vocab
        self.max_batch, self.max_len = max_batch, max_len
        cuda = self.device.type == "cuda"
        self._sparse = self.device.type == "cpu"
        self.graphs = GraphCache() if cuda and graphs is not False else None
        self._decode = self.decoder.decode
        if compile and cuda:
            from torch._dynamo import config as dynamo_config

            # One compilation per (batch shape, attention bucket): more than dynamo's default
            # limit of 8, past which it would silently fall back to eager.
            shapes = max_batch.bit_length() + 1
            buckets = sum(b <= max_len for b in LENGTH_BUCKETS) + 1
            limit = max(dynamo_config.recompile_limit, shapes * buckets)
            dynamo_config.recompile_limit = limit
            self._decode = torch.compile(self.decoder.decode, dynamic=False)
        self.stop_ids = stop_token_ids(model, tokenizer)
        threads = threads or max(1, free // 2)
        self.grammars = grammar_engine(
            grammar_engine_name, tokenizer, self.vocab, self.stop_ids, threads
        )
        self._compiled: dict[str, Any] = {}
        self.filler = MaskFiller(self.grammars, max_batch, self.vocab, pin=cuda)
        banned = banned_tokens(tokenizer, self.vocab, self.stop_ids)
        self.banned = banned
        # ANDed into every mask, word by word, before it is unpacked on the device.
        self._keep_words = pack_bits(~banned).to(self.device)
        unpack_bitmask(self._keep_words[None], self.vocab)  # builds the lookup table up front
        self._full_row = pack_bits(torch.ones(self.vocab, dtype=torch.bool))
        no_stop = torch.ones(self.vocab, dtype=torch.bool)
        no_stop[self.stop_ids] = False
        self._no_stop_row = pack_bits(no_stop)
        self._token_bytes = token_bytes(tokenizer, self.vocab, self.grammars)
        self.stats = GenerationStats()
        # Per-step inputs: filled on the host, copied to these static device buffers (the CUDA
        # graphs read them in place). Rows: token, position, seed, step / 1/temperature, top_p.
        self._ints = torch.zeros((4, max_batch), dtype=torch.long, pin_memory=cuda)
        self._floats = torch.zeros((2, max_batch), dtype=torch.float32, pin_memory=cuda)
        self._forward_done: Any = torch.cuda.Event() if cuda else None
        if cuda:
            self._d_ints = torch.zeros_like(self._ints, device=self.device)
            self._d_floats = torch.zeros_like(self._floats, device=self.device)
            self._d_bitmask = torch.zeros_like(self.filler.bitmask, device=self.device)
            self._d_logits = torch.zeros((max_batch, self.vocab), device=self.device)
        else:
            self._d_ints, self._d_floats = self._ints, self._floats
            self._d_bitmask = self.filler.bitmask
            self._d_logits = torch.zeros((max_batch, self.vocab))

    # -- loading ---------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(
        cls,
        path_or_id: str,
        *,
        device: str | None = None,
        dtype: torch.dtype | None = None,
        models_dir: str | None = None,
        batch_invariant: bool | None = None,
        int4: bool | None = None,
        **options: Any,
    ) -> Engine:
        """Load a model and its tokenizer by local path or hub id, in ``dtype`` (default:
        ``default_dtype``, bfloat16 on CUDA and on CPUs with native bfloat16, else float32). A
        ``.gguf`` file is dequantized once and loaded from its converted checkpoint, cached under
        ``models_dir`` by the file's sha256 (``agent.llm.local.gguf``). ``batch_invariant``
        defaults to on for CUDA and off on a CPU (``CPU_BATCH_INVARIANT``). ``int4`` (default:
        wherever it can) decodes on a CPU in bfloat16 with the 4-bit weights of a ``.gguf`` file's
        Q4_K layers as the file holds them (``agent.llm.local.packed``); True where it cannot is a
        ``ConfigError``. ``options`` go to ``Engine``."""
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        from agent.llm.local.gguf import converted_dir, is_gguf

        hf_logging.disable_progress_bar()
        source = path_or_id if is_gguf(path_or_id) else None
        if source is not None:
            path_or_id = str(converted_dir(source, models_dir))
        dev = device or default_device()
        if dtype is None:
            dtype = default_dtype(dev)
        why_not = packed.unavailable(source, torch.device(dev).type, dtype)
        if int4 and why_not:
            raise ConfigError(f"int4 decoding is not possible here: {why_not}")
        try:
            tokenizer = AutoTokenizer.from_pretrained(path_or_id)
            model: Any = AutoModelForCausalLM.from_pretrained(path_or_id, dtype=dtype)
        except (OSError, ValueError) as e:
            raise ConfigError(f"cannot load the model {path_or_id!r}: {e}") from e
        if batch_invariant is None:
            batch_invariant = torch.device(dev).type == "cuda" or CPU_BATCH_INVARIANT
        model = model.to(dev)
        if int4 is not False and not why_not:
            assert source is not None
            n = packed.pack_from_gguf(model, source, cache=path_or_id)
            log.info("%s: %d layers decode with the file's 4-bit weights", source, n)
        return cls(model, tokenizer, batch_invariant=batch_invariant, **options)

    # -- prompts ---------------------------------------------------------------------------------
    def chat_prompt(self, messages: list[dict[str, str]]) -> str:
        """``messages`` in the model's chat format, ending where the assistant's reply begins."""
        if getattr(self.tokenizer, "chat_template", None):
            text = self.tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=True
            )
            return str(text)
        turns = "".join(f"{m['role']}: {m['content']}\n" for m in messages)
        return turns + "assistant: "

    def encode(self, prompt: str | Sequence[int]) -> list[int]:
        if isinstance(prompt, str):
            return list(self.tokenizer.encode(prompt, add_special_tokens=False))
        return [int(t) for t in prompt]

    def compiled(self, grammar: Grammar) -> Any:
        """``grammar`` compiled by the grammar engine (cached by grammar id)."""
        key = grammar.id
        if key not in self._compiled:
            self._compiled[key] = self.grammars.compile(grammar)
        return self._compiled[key]

    # -- generation ------------------------------------------------------------------------------
    def sample(
        self,
        prompt: str | Sequence[int],
        grammar: Grammar | None = None,
        params: SamplingParams | None = None,
    ) -> list[Sample]:
        """The samples of one prompt (see ``generate``)."""
        return self.generate([GenerationRequest(prompt, grammar, params or SamplingParams())])[0]

    def generate(self, requests: Sequence[GenerationRequest]) -> list[list[Sample]]:
        """Samples for each request, in order (``params.n`` each, by sample index)."""
        with self._lock:
            if self.torch_threads is None:
                return self._generate(requests)
            before = torch.get_num_threads()
            torch.set_num_threads(self.torch_threads)
            try:
                return self._generate(requests)
            finally:
                torch.set_num_threads(before)

    @torch.inference_mode()
    def _generate(self, requests: Sequence[GenerationRequest]) -> list[list[Sample]]:
        for req in requests:
            if req.grammar is not None:
                self.compiled(req.grammar)  # before the clock starts: budgets are for sampling
        start = time.perf_counter()
        self.stats = GenerationStats()
        prompts = [self.encode(r.prompt) for r in requests]
        for ids in prompts:
            if not ids:
                raise ValueError("an empty prompt")
            if len(ids) >= self.decoder.scratch:
                raise ConfigError(
                    f"a prompt of {len(ids)} tokens leaves no room in the {self.max_len} positions "
                    "of the cache (raise max_len: [local] max_len in formalist.toml, or "
                    "formalist sample --max-len)"
                )
        rows: list[_Row] = []
        for r, req in enumerate(requests):
            watch = StopWatch(req.params, start)
            for i in range(req.params.n):
                params = req.params.of_sample(i)
                rows.append(_Row(r, i, req.seed(i), params, watch, req.grammar))
        self._run(rows, prompts)
        out: list[list[Sample]] = [[] for _ in requests]
        for row in rows:
            out[row.request].append(
                Sample(
                    bytes(row.text).decode("utf-8", errors="replace"),
                    tuple(row.tokens),
                    row.finish,
                    row.cut_off,
                    row.index,
                    row.seed,
                    row.grammar.id if row.grammar else "",
                    row.ended - start,
                )
            )
        return out

    def prefill(self, ids: list[int]) -> PrefixCache:
        """The cache of ``ids``, reusing the longest prefix of them that a kept prompt cache
        holds (in whole chunks, so the result is the same as a cold prefill's), and kept in turn."""
        key = tuple(ids)
        hit = self._prefixes.get(key)
        if hit is not None:
            self._prefixes.move_to_end(key)
            self.stats.reused_tokens += len(ids)
            return hit
        best: tuple[int, ...] = ()
        reuse = 0
        for other in self._prefixes:
            n = common_prefix(other, key) // PREFILL_CHUNK * PREFILL_CHUNK
            if n > reuse:
                best, reuse = other, n
        past = None
        if reuse:
            entry = self._prefixes[best]
            self._prefixes.move_to_end(best)
            past = PrefixCache(entry.keys, entry.values, reuse)
        out = self.decoder.prefill(list(ids), past)
        self.stats.prefill_tokens += len(ids) - reuse
        self.stats.reused_tokens += reuse
        self._keep(key, out)
        return out

    def _keep(self, key: tuple[int, ...], entry: PrefixCache) -> None:
        size = prefix_bytes(entry)
        if size > self.prefix_cache_bytes:
            return
        self._prefixes[key] = entry
        total = sum(prefix_bytes(e) for e in self._prefixes.values())
        while total > self.prefix_cache_bytes:
            _, dropped = self._prefixes.popitem(last=False)
            total -= prefix_bytes(dropped)

    def clear_prefixes(self) -> None:
        """Forget every kept prompt cache."""
        self._prefixes.clear()

    def _batch_size(self, rows: int) -> int:
        if self.batch_invariant:
            return self.max_batch
        b = 1
        while b < min(rows, self.max_batch):
            b *= 2
        return min(b, self.max_batch)

    def _run(self, rows: list[_Row], prompts: list[list[int]]) -> None:
        dec = self.decoder
        pending = deque(rows)
        left = {r: 0 for r in range(len(prompts))}
        for row in rows:
            left[row.request] += 1
        prefixes: dict[int, PrefixCache] = {}
        b = self._batch_size(len(rows))
        slots: list[_Row | None] = [None] * b
        ints, floats, bitmask = self._ints, self._floats, self.filler.bitmask
        t_loop = time.perf_counter()
        while True:
            # Waiting samples take the free slots; with none waiting, survivors move down.
            for s in range(b):
                while slots[s] is None and pending:
                    row = pending.popleft()
                    t0 = time.perf_counter()
                    left[row.request] -= 1
                    if row.watch.out_of_time(t0):  # its request's time is up before it began
                        row.finish, row.cut_off, row.ended = FINISH_TIME, True, t0
                        if not left[row.request]:
                            prefixes.pop(row.request, None)
                        continue
                    if row.request not in prefixes:
                        prefixes[row.request] = self.prefill(prompts[row.request][:-1])
                    prefix = prefixes[row.request]
                    if not left[row.request]:
                        del prefixes[row.request]
                    dec.load(s, prefix)
                    self.stats.prefill_s += time.perf_counter() - t0
                    row.pos = prefix.length
                    row.next_input = prompts[row.request][-1]
                    if row.grammar is not None:
                        row.matcher = self.grammars.matcher(self.compiled(row.grammar))
                    slots[s] = row
            if not pending:
                b, slots = self._compact(slots)
            active = [(s, row) for s, row in enumerate(slots) if row is not None]
            if not active:
                break
            t_step = time.perf_counter()
            # One conversion per step, not one per row and field.
            host_ints = [[0] * b, [dec.scratch] * b, [0] * b, [0] * b]
            host_floats = [[0.0] * b, [1.0] * b]
            matchers, grammar_rows = [], []
            for s, row in active:
                host_ints[0][s] = row.next_input
                host_ints[1][s] = row.pos
                host_ints[2][s] = row.seed
                host_ints[3][s] = len(row.tokens)
                t = row.params.temperature
                host_floats[0][s] = 1.0 / t if t > 0 else 0.0
                host_floats[1][s] = row.params.top_p
                if row.matcher is not None:
                    matchers.append(row.matcher)
                    grammar_rows.append(s)
                else:
                    bitmask[s] = self._no_stop_row if row.params.ignore_eos else self._full_row
            ints[:, :b] = torch.tensor(host_ints, dtype=torch.long)
            floats[:, :b] = torch.tensor(host_floats, dtype=torch.float32)
            # The masks fill on CPU threads while the forward pass runs.
            self.filler.start(matchers, grammar_rows)
            if self._d_ints is not ints:
                # Whole buffers: contiguous, so the copies stay asynchronous from pinned memory.
                self._d_ints.copy_(ints, non_blocking=True)
                self._d_floats.copy_(floats, non_blocking=True)
            longest = max(row.pos for _, row in active) + 1
            attend = attend_bucket(longest, self.max_len, CPU_ATTEND_STEP if self._sparse else 0)
            if self._sparse:
                live = active[-1][0] + 1  # slots past the last live one do not attend
                out = self.decoder.decode_hidden(
                    self._d_ints[0, :b], self._d_ints[1, :b], attend, live
                )
            else:
                out = self._forward(b, attend)
                self._forward_done.record()
            t0 = time.perf_counter()
            mask = self.filler.wait()
            self.stats.mask_wait_s += time.perf_counter() - t0
            if matchers and not self._sparse and self._forward_done.query():
                self.stats.mask_bound_steps += 1
            if self._d_bitmask is not mask:
                self._d_bitmask[:b].copy_(mask[:b], non_blocking=True)
            use_top_p = any(row.params.top_p < 1.0 for _, row in active)
            greedy = [row.params.temperature == 0 for _, row in active]
            mode = GREEDY if all(greedy) else SAMPLED if not any(greedy) else MIXED
            unit = all(row.params.temperature in (0.0, 1.0) for _, row in active)
            variant = (use_top_p, mode, unit)
            if self._sparse:
                chosen = self._choose_cpu(b, variant, out, [s for s, _ in active]).tolist()
            else:
                chosen = self._choose(b, variant, out).tolist()
            now = time.perf_counter()
            self.stats.steps += 1
            self.stats.row_steps += len(active)
            live = len(active)
            self.stats.batch_sizes[b] = self.stats.batch_sizes.get(b, 0) + 1
            self.stats.step_s[b] = self.stats.step_s.get(b, 0.0) + now - t_step
            self.stats.live_steps[live] = self.stats.live_steps.get(live, 0) + 1
            self.stats.live_step_s[live] = self.stats.live_step_s.get(live, 0.0) + now - t_step
            # The grammar rows take their tokens in one batched call.
            accepted = self.grammars.accept_batch(matchers, [int(chosen[s]) for s in grammar_rows])
            verdict = dict(zip(grammar_rows, accepted, strict=True))
            for s, row in active:
                if self._advance(row, int(chosen[s]), verdict.get(s, True), now):
                    row.ended = now
                    row.matcher = None
                    slots[s] = None
        self.stats.decode_s = time.perf_counter() - t_loop - self.stats.prefill_s

    def _forward(self, b: int, attend: int) -> torch.Tensor:
        """Logits of slots ``0 .. b - 1`` for the inputs in the static buffers."""
        tokens, positions = self._d_ints[0, :b], self._d_ints[1, :b]
        if self.graphs is None:
            return self._decode(tokens, positions, attend)
        saved = torch.empty_like(positions)

        def step() -> torch.Tensor:
            out = self._d_logits[:b]
            out.copy_(self._decode(tokens, positions, attend))
            return out

        def prepare() -> None:
            # Warm-up runs write keys and values for real: at the scratch position only.
            saved.copy_(positions)
            positions.fill_(self.decoder.scratch)

        def restore() -> None:
            positions.copy_(saved)

        return self.graphs.run(("decode", b, attend), step, prepare, restore)

    def _choose(
        self, b: int, variant: tuple[bool, str, bool], logits: torch.Tensor
    ) -> torch.Tensor:
        """The sampled token of each of the ``b`` slots (masks and parameters from the buffers);
        ``variant`` is ``choose_tokens``' (use_top_p, mode, unit_temperature)."""
        use_top_p, mode, unit = variant

        def step() -> torch.Tensor:
            allowed = unpack_bitmask(self._d_bitmask[:b] & self._keep_words, self.vocab)
            ints, floats = self._d_ints, self._d_floats
            return choose_tokens(
                logits,
                allowed,
                floats[0, :b],
                floats[1, :b],
                ints[2, :b],
                ints[3, :b],
                use_top_p,
                mode,
                unit,
            )

        if self.graphs is None:
            return step()
        return self.graphs.run(("sample", b, *variant), step)

    def _choose_cpu(
        self, b: int, variant: tuple[bool, str, bool], hidden: torch.Tensor, live: list[int]
    ) -> torch.Tensor:
        """``_choose`` for the CPU, from the final hidden states, for the ``live`` slots: a row
        whose grammar allows few tokens (most steps outside free text) computes the logits of
        those tokens only, instead of the whole vocabulary's; the draw is the same (the cumulative
        sum only rises at allowed tokens, in the same order)."""
        use_top_p, mode, unit = variant
        words = self._d_bitmask[:b] & self._keep_words
        counts = count_allowed(words).tolist()
        ints, floats = self._d_ints, self._d_floats
        out = torch.zeros(b, dtype=torch.long)

        def draw(rows: torch.Tensor, logits: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
            return choose_tokens(
                logits,
                allowed,
                floats[0, rows],
                floats[1, rows],
                ints[2, rows],
                ints[3, rows],
                use_top_p,
                mode,
                unit,
            )

        dense = [r for r in live if counts[r] > SPARSE_ROW_LIMIT]
        if dense:
            d = torch.tensor(dense)
            # batch_invariant: the output layer runs over all b rows (b is always max_batch), one
            # matrix shape whatever else is in the batch, so a row's logits do not depend on it;
            # its weights are read once for every row, as in the layers below.
            logits = self.decoder.logits(hidden if self.batch_invariant else hidden[d])
            if self.batch_invariant:
                logits = logits[d]
            out[d] = draw(d, logits, unpack_bitmask(words[d], self.vocab))
        for r in live:
            if counts[r] > SPARSE_ROW_LIMIT or not counts[r]:
                continue
            idx = allowed_tokens(words[r])
            logits = self.decoder.logits_at(hidden[r], idx)[None]
            pick = draw(torch.tensor([r]), logits, torch.ones_like(logits, dtype=torch.bool))
            out[r] = idx[pick[0]]
        return out

    def _advance(self, row: _Row, tok: int, accepted: bool, now: float) -> bool:
        """Take the sampled token ``tok`` (which the row's grammar ``accepted``, if it has one);
        True when the row has finished."""
        p = row.params
        if tok in self.stop_ids and not (p.ignore_eos and row.matcher is None):
            complete = row.matcher is None or (accepted and self.grammars.terminated(row.matcher))
            row.finish = FINISH_COMPLETE if complete else FINISH_REJECTED
            row.cut_off = not complete
            return True
        if row.matcher is not None and not accepted:
            row.finish, row.cut_off = FINISH_REJECTED, True
            return True
        row.tokens.append(tok)
        piece = self._token_bytes[tok]
        row.text += piece
        if p.stop and (at := row.watch.stop_at(bytes(row.text), len(piece))) is not None:
            del row.text[at:]
            row.finish, row.cut_off = FINISH_STOP, row.grammar is not None
            return True
        # The next input would go to position pos + 1, the last a sequence may use is scratch - 1.
        if len(row.tokens) >= p.max_new_tokens or row.pos + 1 >= self.decoder.scratch:
            complete = row.matcher is not None and self._completes(row.matcher)
            row.finish = FINISH_COMPLETE if complete else FINISH_LENGTH
            row.cut_off = not complete
            return True
        if row.watch.out_of_time(now):
            row.finish, row.cut_off = FINISH_TIME, True
            return True
        row.next_input = tok
        row.pos += 1
        return False

    def _completes(self, matcher: Any) -> bool:
        """Whether the grammar of ``matcher`` takes a stop token now (the artifact is complete at
        the end of the budget); the matcher is spent after."""
        return self.grammars.accept(matcher, self.stop_ids[0]) and self.grammars.terminated(matcher)

    def _compact(self, slots: list[_Row | None]) -> tuple[int, list[_Row | None]]:
        """Move the live rows into the lowest slots when they fit a smaller batch."""
        live = [(s, row) for s, row in enumerate(slots) if row is not None]
        b = self._batch_size(max(len(live), 1))
        if b >= len(slots):
            return len(slots), slots
        dec = self.decoder
        out: list[_Row | None] = [None] * b
        for dst, (src, row) in enumerate(live):
            if src != dst:
                n = row.pos
                dec.k_cache[:, dst, :, :n].copy_(dec.k_cache[:, src, :, :n])
                dec.v_cache[:, dst, :, :n].copy_(dec.v_cache[:, src, :, :n])
            out[dst] = row
        return b, out

    def close(self) -> None:
        self.filler.close()


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """How many leading tokens ``a`` and ``b`` share."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def prefix_bytes(entry: PrefixCache) -> int:
    """Bytes a kept prompt cache holds."""
    return sum(t.numel() * t.element_size() for t in (*entry.keys, *entry.values))


def stop_token_ids(model: Any, tokenizer: Any) -> list[int]:
    """Tokens that end a reply: the tokenizer's EOS and the model's generation EOS ids."""
    ids: list[int] = []
    eos = getattr(tokenizer, "eos_token_id", None)
    if isinstance(eos, int):
        ids.append(eos)
    gen = getattr(model, "generation_config", None)
    extra = getattr(gen, "eos_token_id", None) if gen is not None else None
    for i in extra if isinstance(extra, list) else [extra]:
        if isinstance(i, int) and i not in ids:
            ids.append(i)
    if not ids:
        raise ConfigError("the tokenizer names no end-of-sequence token")
    return ids


def token_bytes(tokenizer: Any, vocab: int, grammars: Any) -> list[bytes]:
    """The bytes of each token id (empty past the tokenizer's vocabulary)."""
    table = getattr(grammars, "token_bytes", None)
    if callable(table):
        out = list(table())
    else:
        import xgrammar as xgr

        info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab)
        out = [bytes(b) for b in info.decoded_vocab]
    return out + [b""] * (vocab - len(out))
