"""The local engine's speed on this CPU against Hugging Face ``generate``, on the same model, in one run.

It prints, and writes to a JSON report:

- the machine's memory bandwidth (a torch copy of a large array, read and write bytes counted, at
  the same thread count) and the load average when the run began and ended;
- the bytes a decode step reads (the weights, plus the keys and values of the context) and so the
  bandwidth limit on decode tokens per second;
- the engine's decode tokens/s at batch 1 and at ``k`` samples of one prompt, after a prompt of
  ``--prompt-tokens`` (the attention reads that context), and the fraction of the bandwidth limit;
- the output layer at ``k`` rows: one row at a time (the batch-invariant mode before) against one
  product over the engine's fixed batch shape (now);
- the engine's prefill tokens/s (cold), and a prompt whose first ``--shared-tokens`` (a system
  prompt and examples) were prefilled by an earlier request: its prefill time (prefix-cache hit);
- HF ``generate`` on the same model: prefill tokens/s and decode tokens/s at batch 1 (``--hf-k``:
  also at ``k``), and the ratios;
- with ``--llama-cpp DIR``: llama.cpp on the same .gguf file (the prebuilt binary of the npm
  package node-llama-cpp, installed in DIR; ``benchmarks/llama_cpp_node.mjs``): its prefill and
  decode rates and ours over them (PyPI has no prebuilt llama.cpp server);
- the estimate for one NL4Opt item (``--item-prompt`` prompt tokens, ``--item-reply`` reply
  tokens), one sample and ``k``, cold and with the shared prefix cached, against the targets
  (one sample under 90 s, ``k`` under twice that).

    PYTHONPATH=. python benchmarks/cpu_decode.py --model PATH|FILE.gguf [--dtype bfloat16]
        [--torch-threads N] [--prompt-tokens 2000] [--tokens 32] [--k 8] [--json cpu_decode.json]

``--model tiny`` runs a tiny random model (a smoke test: the figures mean nothing). Decode runs
free text of a fixed length (the stop token suppressed), so the figures are the forward pass and
the sampler, not a grammar's masks.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from agent.config import LOCAL_DEFAULTS
from agent.llm.local import packed
from agent.llm.local.engine import (
    CPU_BATCH_INVARIANT,
    Engine,
    GenerationRequest,
    cpu_has_bf16,
    free_cpus,
)
from agent.llm.local.gguf import is_gguf
from agent.llm.local.sampling import SamplingParams
from benchmarks.decode_speed import weight_bytes

TARGETS = {"item_1_sample_s": 90.0, "item_k_over_1_target": 2.0}
"""One NL4Opt item in under 90 s with one sample; ``k`` samples in under twice that (180 s)."""

FILLER = (
    "A plant makes chairs and tables on two machines with limited hours each week; each chair "
    "earns 40 dollars and takes 2 hours of cutting and 1 of finishing. "
)


def memory_bandwidth(mib: int = 512, repeats: int = 4) -> float:
    """Bytes/s of a large copy (read and write counted), the best of ``repeats``."""
    src = torch.ones(mib << 18, dtype=torch.float32)
    dst = torch.empty_like(src)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        dst.copy_(src)
        best = min(best, time.perf_counter() - t0)
    return 2 * src.numel() * src.element_size() / best


def load(model: str, dtype: torch.dtype | None, tmp: str) -> tuple[Any, Any, str]:
    """The model, its tokenizer and a description (``tiny``: random weights, 2 layers)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if model == "tiny":
        from agent.llm.local.qwen_vocab import save_random_model

        path = str(save_random_model(Path(tmp) / "tiny", "tiny", seed=0, arch="qwen2"))
    else:
        from agent.llm.local.gguf import converted_dir, is_gguf

        path = str(converted_dir(model)) if is_gguf(model) else model
    dtype = dtype or (torch.bfloat16 if cpu_has_bf16() else torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(path)
    hf = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).eval()
    return hf, tokenizer, path


def prompt_ids(engine: Engine, shared: int, total: int, tail: str) -> list[int]:
    """A chat prompt of about ``total`` tokens whose system message (about ``shared`` tokens) is
    the same for every ``tail``."""
    system = FILLER
    while len(engine.encode(system)) < shared:
        system += FILLER
    user = tail + " "
    while True:
        text = engine.chat_prompt(
            [{"role": "system", "content": system}, {"role": "user", "content": user}]
        )
        ids = engine.encode(text)
        if len(ids) >= total:
            return ids
        user += FILLER


def time_engine(
    engine: Engine, ids: list[int], n: int, tokens: int, cold: bool = True
) -> dict[str, Any]:
    """Prefill ``ids`` (``cold``: with no prompt cache kept), then ``n`` samples of ``tokens``
    each from it."""
    if cold:
        engine.clear_prefixes()
    params = SamplingParams(n=n, temperature=1.0, seed=1, max_new_tokens=tokens, ignore_eos=True)
    engine.generate([GenerationRequest(ids, None, params)])
    st = engine.stats
    out = {
        "prefill_tokens": st.prefill_tokens,
        "prefill_s": st.prefill_s,
        "prefill_tokens_per_s": st.prefill_tokens / st.prefill_s if st.prefill_s else None,
        "decode_s": st.decode_s,
        "steps": st.steps,
        "tokens": st.row_steps,
        "decode_tokens_per_s": st.row_steps / st.decode_s if st.decode_s else None,
        "ms_per_step": 1e3 * st.decode_s / st.steps if st.steps else None,
    }
    return out


def time_prefix_hit(engine: Engine, hit: list[int]) -> dict[str, Any]:
    """The prefill of ``hit``, which begins like a prompt the engine has kept."""
    one = SamplingParams(n=1, max_new_tokens=1, ignore_eos=True)
    engine.generate([GenerationRequest(hit, None, one)])
    st = engine.stats
    return {
        "prompt_tokens": len(hit),
        "reused_tokens": st.reused_tokens,
        "prefill_tokens": st.prefill_tokens,
        "prefill_s": st.prefill_s,
    }


def time_output_layer(engine: Engine, k: int, repeats: int = 3) -> dict[str, float]:
    """Milliseconds of the output layer for ``k`` rows: one row at a time, and one product over
    the engine's ``max_batch`` rows."""
    dec = engine.decoder
    hidden = torch.randn(engine.max_batch, dec.lm_head.weight.shape[1], dtype=dec.dtype)

    def best(fn: Any) -> float:
        fn()
        out = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            out = min(out, time.perf_counter() - t0)
        return 1e3 * out

    with torch.inference_mode():
        per_row = best(lambda: [dec.logits(hidden[r : r + 1]) for r in range(k)])
        batched = best(lambda: dec.logits(hidden))
    return {"per_row_ms": per_row, "batched_ms": batched, "rows": k}


def time_hf(model: Any, ids: list[int], batch: int, tokens: int, pad: int) -> dict[str, Any]:
    """HF ``generate`` (sampling, fixed length): prefill (one new token) and decode apart."""
    inputs = torch.tensor([ids] * batch)
    mask = torch.ones_like(inputs)

    def run(n: int) -> float:
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
            )
        return time.perf_counter() - t0

    # Best of three for each length: one stall in the one-token run on a shared machine can
    # outweigh a short decode, and the difference would go negative.
    prefill = min(run(1) for _ in range(3))
    total = min(run(tokens) for _ in range(3))
    per_step = (total - prefill) / max(tokens - 1, 1)
    return {
        "batch": batch,
        "prefill_s": prefill,
        "prefill_tokens_per_s": batch * len(ids) / prefill,
        # Below the timer's noise: no figure rather than a wrong one.
        "decode_tokens_per_s": batch / per_step if per_step > 0 else None,
        "ms_per_step": 1e3 * per_step if per_step > 0 else None,
    }


def time_llama_cpp(
    node_modules: str, model: str, threads: int, prompt: int, tokens: int
) -> dict[str, Any]:
    """llama.cpp (the prebuilt binary of the npm package node-llama-cpp, installed under
    ``node_modules``) on the same .gguf file: prefill of ``prompt`` tokens and greedy decode of
    ``tokens`` (``benchmarks/llama_cpp_node.mjs``)."""
    import subprocess

    script = Path(__file__).with_name("llama_cpp_node.mjs")
    env = {
        **os.environ,
        "NODE_PATH": node_modules,
        "MODEL": model,
        "THREADS": str(threads),
        "PROMPT_TOKENS": str(prompt),
        "TOKENS": str(tokens),
    }
    done = subprocess.run(
        ["node", str(script)], env=env, capture_output=True, text=True, timeout=1800, check=False
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        raise RuntimeError(f"llama.cpp run failed ({done.returncode}): {done.stderr[-500:]}")
    return dict(json.loads(lines[-1]))


def _loaded(fn: Any, *args: Any) -> dict[str, Any]:
    """``fn(*args)`` with the load average when it began and ended; printed as it ends (a long
    run shows its progress)."""
    before = os.getloadavg()[0]
    t0 = time.perf_counter()
    out = dict(fn(*args))
    out["load_average"] = [round(before, 2), round(os.getloadavg()[0], 2)]
    print(
        f"  {fn.__name__}: {time.perf_counter() - t0:.0f} s, load {out['load_average']}", flush=True
    )
    return out


def estimate(prefill_s: float, ms_per_step: float | None, reply: int) -> float | None:
    """Seconds for one item: its prefill and ``reply`` decode steps."""
    return None if ms_per_step is None else prefill_s + reply * ms_per_step / 1e3


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    ap.add_argument("--model", required=True, help="a model folder, a .gguf file, or 'tiny'")
    ap.add_argument("--dtype", choices=("bfloat16", "float32"), default=None)
    ap.add_argument("--torch-threads", type=int, default=None, dest="torch_threads")
    ap.add_argument("--prompt-tokens", type=int, default=2000, dest="prompt_tokens")
    ap.add_argument("--shared-tokens", type=int, default=1024, dest="shared_tokens")
    ap.add_argument("--tokens", type=int, default=32, help="decode tokens measured per sample")
    ap.add_argument("--k", type=int, default=8, help="samples of one prompt")
    ap.add_argument("--item-prompt", type=int, default=2000, dest="item_prompt")
    ap.add_argument("--item-reply", type=int, default=300, dest="item_reply")
    ap.add_argument("--max-batch", type=int, default=None, dest="max_batch")
    ap.add_argument("--no-hf", action="store_true", dest="no_hf")
    ap.add_argument("--hf-k", action="store_true", dest="hf_k", help="HF at k samples too")
    ap.add_argument("--json", default="cpu_decode.json")
    ap.add_argument(
        "--llama-cpp",
        dest="llama_cpp",
        metavar="DIR",
        help="also run llama.cpp on the same .gguf file, from node-llama-cpp's prebuilt binary "
        "installed in DIR (npm install --prefix DIR node-llama-cpp@3.22.1; needs node)",
    )
    ap.add_argument(
        "--no-int4",
        action="store_false",
        dest="int4",
        help="measure only the dense weights (by default a .gguf model is also measured with its "
        "4-bit weights packed, as the engine decodes it on a CPU with bfloat16)",
    )
    args = ap.parse_args(argv)
    if args.shared_tokens >= args.prompt_tokens:
        ap.error("--shared-tokens must be less than --prompt-tokens")
    if args.llama_cpp and not is_gguf(args.model):
        ap.error("--llama-cpp runs the same .gguf file: give --model FILE.gguf")
    threads = args.torch_threads or free_cpus()
    torch.set_num_threads(threads)
    report: dict[str, Any] = {
        "machine": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "torch_threads": threads,
        "load_average_start": os.getloadavg()[0],
        "cpu_bf16": cpu_has_bf16(),
        "args": vars(args),
    }
    bandwidth = memory_bandwidth()
    report["bandwidth_bytes_per_s"] = bandwidth
    dtype = getattr(torch, args.dtype) if args.dtype else None
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        model, tokenizer, path = load(args.model, dtype, tmp)
        gguf = args.model if is_gguf(args.model) else None
        report["load_s"] = time.perf_counter() - t0
        report["model"] = path
        report["dtype"] = str(next(model.parameters()).dtype).removeprefix("torch.")
        max_len = args.prompt_tokens + args.tokens + 256
        one_batch = args.max_batch or int(LOCAL_DEFAULTS["max_batch"])
        # As ``local:`` runs on a CPU (``CPU_BATCH_INVARIANT``): batch 1 decodes one row.
        opts = {
            "max_len": max_len,
            "threads": 1,
            "torch_threads": threads,
            "batch_invariant": CPU_BATCH_INVARIANT,
        }
        e1 = Engine(model, tokenizer, max_batch=one_batch, **opts)
        ek = Engine(model, tokenizer, max_batch=max(args.k, one_batch), **opts)
        try:
            ids = prompt_ids(e1, args.shared_tokens, args.prompt_tokens, "Problem A.")
            other = prompt_ids(e1, args.shared_tokens, args.prompt_tokens, "Problem B, other.")
            report["prompt_tokens"] = len(ids)
            wbytes = weight_bytes(model)
            kv = e1.decoder.kv_bytes_per_token * (len(ids) + args.tokens // 2)
            report["weight_bytes_per_step"] = wbytes
            report["kv_bytes_per_sample_step"] = kv
            time_engine(e1, ids[: min(len(ids), 300)], 1, 4)  # warm-up: first calls allocate
            # HF right after the engine's batch 1: on a shared machine the load moves within a
            # run, so the two are compared at about the same load (each row records its own).
            b1 = _loaded(time_engine, e1, ids, 1, args.tokens)
            pad = tokenizer.pad_token_id or tokenizer.eos_token_id or 0
            if not args.no_hf:
                report["hf_batch1"] = _loaded(time_hf, model, ids, 1, args.tokens, pad)
            # The k samples' engine shares the batch-1 engine's kept prompts (same model): its
            # prompt is a cache hit, and only its decode steps are measured.
            ek._prefixes = e1._prefixes
            bk = _loaded(time_engine, ek, ids, args.k, args.tokens, False)
            if args.hf_k and not args.no_hf:
                report["hf_k"] = _loaded(time_hf, model, ids, args.k, args.tokens, pad)
            rows = [(b1, 1, wbytes), (bk, args.k, wbytes)]
            why_not = packed.unavailable(gguf, "cpu", model.dtype)
            if args.int4 and not why_not:
                # The same engines with the file's 4-bit weights (``Engine.from_pretrained``'s
                # default on such a CPU): the dense rows above are the baseline.
                assert gguf is not None
                report["int4_layers"] = packed.pack_from_gguf(model, gguf)
                report["engine_batch1_dense"], report["engine_k_dense"] = b1, bk
                b1 = _loaded(time_engine, e1, ids, 1, args.tokens, False)
                bk = _loaded(time_engine, ek, ids, args.k, args.tokens, False)
                ibytes = wbytes - packed.packed_saving(model)
                report["int4_weight_bytes_per_step"] = ibytes
                rows += [(b1, 1, ibytes), (bk, args.k, ibytes)]
            else:
                report["int4_unavailable"] = why_not or "--no-int4"
            report["engine_batch1"] = b1
            report["engine_k"] = bk
            for row, n, read in rows:
                limit = bandwidth / (read + n * kv)  # steps per second the bandwidth allows
                row["bandwidth_limit_tokens_per_s"] = n * limit
                tps = row["decode_tokens_per_s"]
                row["fraction_of_bandwidth_limit"] = tps / (n * limit) if tps else None
            if args.llama_cpp and gguf is not None:
                report["llama_cpp"] = _loaded(
                    time_llama_cpp,
                    str(Path(args.llama_cpp).expanduser() / "node_modules"),
                    gguf,
                    threads,
                    len(ids),
                    args.tokens,
                )
            report["output_layer"] = _loaded(time_output_layer, ek, args.k)
            report["prefix_hit"] = _loaded(time_prefix_hit, e1, other)
        finally:
            e1.close()
            ek.close()
    del model
    gc.collect()
    report["load_average_end"] = os.getloadavg()[0]
    _derive(report, args)
    Path(args.json).write_text(json.dumps(report, indent=1, default=str))
    _print(report, args)
    return 0


def _derive(report: dict[str, Any], args: argparse.Namespace) -> None:
    b1, bk, hit = report["engine_batch1"], report["engine_k"], report["prefix_hit"]
    # The cold prefill was measured before the weights were packed (a prefill uses the dense
    # ones either way); the packed rows reuse its cache.
    cold_row = report.get("engine_batch1_dense", b1)
    prefill_rate = cold_row["prefill_tokens_per_s"] or 0.0
    cold = args.item_prompt / prefill_rate if prefill_rate else float("inf")
    # With the shared part cached, only the rest of the item's prompt runs.
    kept = hit["reused_tokens"] / max(hit["prompt_tokens"], 1)
    warm = args.item_prompt * (1 - kept) / prefill_rate if prefill_rate else float("inf")
    items = {
        "1_cold_s": estimate(cold, b1["ms_per_step"], args.item_reply),
        "1_prefix_hit_s": estimate(warm, b1["ms_per_step"], args.item_reply),
        "k_cold_s": estimate(cold, bk["ms_per_step"], args.item_reply),
        "k_prefix_hit_s": estimate(warm, bk["ms_per_step"], args.item_reply),
    }
    report["item_estimate"] = items
    ratios: dict[str, float | None] = {
        "k_step_over_1_step": _div(bk["ms_per_step"], b1["ms_per_step"]),
        "output_layer_per_row_over_batched": _div(
            report["output_layer"]["per_row_ms"], report["output_layer"]["batched_ms"]
        ),
    }
    hf = report.get("hf_batch1")
    if hf:
        ratios["decode_vs_hf_batch1"] = _div(b1["decode_tokens_per_s"], hf["decode_tokens_per_s"])
        ratios["prefill_vs_hf"] = _div(cold_row["prefill_tokens_per_s"], hf["prefill_tokens_per_s"])
    dense1, densek = report.get("engine_batch1_dense"), report.get("engine_k_dense")
    if dense1 and densek:
        ratios["int4_over_dense_batch1"] = _div(
            b1["decode_tokens_per_s"], dense1["decode_tokens_per_s"]
        )
        ratios["int4_over_dense_k"] = _div(bk["decode_tokens_per_s"], densek["decode_tokens_per_s"])
    lc = report.get("llama_cpp")
    if lc:
        ratios["decode_vs_llama_cpp"] = _div(b1["decode_tokens_per_s"], lc["decode_tokens_per_s"])
        ratios["prefill_vs_llama_cpp"] = _div(
            cold_row["prefill_tokens_per_s"], lc["prefill_tokens_per_s"]
        )
    hfk = report.get("hf_k")
    if hfk:
        ratios["decode_k_vs_hf_k"] = _div(bk["decode_tokens_per_s"], hfk["decode_tokens_per_s"])
    report["ratios"] = ratios
    one, k = items["1_cold_s"], items["k_cold_s"]
    report["targets"] = {
        "item_1_sample_under_90s": _verdict(one, TARGETS["item_1_sample_s"]),
        "item_k_under_twice_target": _verdict(
            k, TARGETS["item_1_sample_s"] * TARGETS["item_k_over_1_target"]
        ),
    }


def _div(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _verdict(value: float | None, limit: float) -> str:
    if value is None:
        return "not measured"
    return f"{'met' if value <= limit else 'missed'} ({value:.0f} s, target {limit:.0f} s)"


def _f(x: Any, spec: str = ".1f") -> str:
    return "-" if x is None else format(x, spec)


def _print(r: dict[str, Any], args: argparse.Namespace) -> None:
    b1, bk, hit, ol = r["engine_batch1"], r["engine_k"], r["prefix_hit"], r["output_layer"]
    print(
        f"model {r['model']} ({r['dtype']}), {r['torch_threads']} torch threads of {r['cpus']} "
        f"cpus, native bf16: {r['cpu_bf16']}; load average {r['load_average_start']:.2f} at "
        f"start, {r['load_average_end']:.2f} at end"
    )
    print(f"memory bandwidth            {r['bandwidth_bytes_per_s'] / 1e9:.1f} GB/s (copy)")
    print(
        f"bytes per decode step       {r['weight_bytes_per_step'] / 1e9:.2f} GB weights + "
        f"{r['kv_bytes_per_sample_step'] / 1e6:.0f} MB keys/values per sample "
        f"({r['prompt_tokens']} prompt tokens)"
    )
    if "int4_weight_bytes_per_step" in r:
        print(
            f"  with 4-bit weights        {r['int4_weight_bytes_per_step'] / 1e9:.2f} GB weights "
            f"({r['int4_layers']} layers packed from the .gguf file)"
        )
    else:
        print(f"4-bit weights               not measured: {r.get('int4_unavailable')}")
    shown = [("batch 1", b1), (f"k={args.k}", bk)]
    if "engine_batch1_dense" in r:
        shown = [
            ("batch 1 dense", r["engine_batch1_dense"]),
            (f"k={args.k} dense", r["engine_k_dense"]),
            ("batch 1 int4", b1),
            (f"k={args.k} int4", bk),
        ]
    for name, row in shown:
        print(
            f"engine decode {name:<13} {_f(row['decode_tokens_per_s'], '.2f')} tokens/s "
            f"({_f(row['ms_per_step'], '.0f')} ms/step; bandwidth limit "
            f"{row['bandwidth_limit_tokens_per_s']:.2f}, "
            f"{_f(row['fraction_of_bandwidth_limit'], '.0%')} of it; load {row['load_average']})"
        )
    print(
        f"output layer, {ol['rows']} rows       {ol['per_row_ms']:.0f} ms one row at a time, "
        f"{ol['batched_ms']:.0f} ms as one product"
    )
    cold = r.get("engine_batch1_dense", b1)
    print(
        f"engine prefill (cold)       {_f(cold['prefill_tokens_per_s'])} tokens/s "
        f"({cold['prefill_tokens']} tokens in {cold['prefill_s']:.1f} s)"
    )
    print(
        f"prefix-cache hit            {hit['prefill_s']:.2f} s ({hit['reused_tokens']} of "
        f"{hit['prompt_tokens']} tokens reused, {hit['prefill_tokens']} run)"
    )
    for key in ("hf_batch1", "hf_k"):
        hf = r.get(key)
        if hf:
            print(
                f"HF generate batch {hf['batch']:<3}       prefill "
                f"{_f(hf['prefill_tokens_per_s'])} tokens/s, decode "
                f"{_f(hf['decode_tokens_per_s'], '.2f')} tokens/s "
                f"({_f(hf['ms_per_step'], '.0f')} ms/step; load {hf['load_average']})"
            )
    lc = r.get("llama_cpp")
    if lc:
        print(
            f"llama.cpp (node-llama-cpp)  prefill {_f(lc['prefill_tokens_per_s'])} tokens/s, "
            f"decode {_f(lc['decode_tokens_per_s'], '.2f')} tokens/s "
            f"({_f(lc['ms_per_step'], '.0f')} ms/step, {lc['threads']} threads; "
            f"load {lc['load_average']})"
        )
    print(
        "ratios                      "
        + ", ".join(f"{k} {_f(v, '.2f')}" for k, v in r["ratios"].items())
    )
    it = r["item_estimate"]
    print(
        f"NL4Opt item ({args.item_prompt} + {args.item_reply} tokens): 1 sample "
        f"{_f(it['1_cold_s'], '.0f')} s cold, {_f(it['1_prefix_hit_s'], '.0f')} s with the shared "
        f"prefix cached; k={args.k}: {_f(it['k_cold_s'], '.0f')} s cold, "
        f"{_f(it['k_prefix_hit_s'], '.0f')} s cached"
    )
    for name, verdict in r["targets"].items():
        print(f"target {name}: {verdict}")


if __name__ == "__main__":
    sys.exit(main())
