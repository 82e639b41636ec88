"""The local decoding engine on the CPU with a tiny random Qwen2 model and the real Qwen vocabulary:
the static-cache decoder against Hugging Face's forward pass, seeds independent of batching, budgets,
stop strings, shared prefill, and special tokens that never come out."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("xgrammar")

from agent.llm.local.engine import Engine, GenerationRequest  # noqa: E402
from agent.llm.local.sampling import (  # noqa: E402
    FINISH_LENGTH,
    FINISH_STOP,
    FINISH_TIME,
    SamplingParams,
    choose_tokens,
    mix32,
    sample_seed,
    uniforms,
)
from agent.llm.local.testing import TEST_BOUNDS, tiny_engine, tiny_model_dir  # noqa: E402
from formalizers.asp.grammar import asp_grammar  # noqa: E402
from formalizers.milp.grammar import five_element_grammar  # noqa: E402

FIVE = five_element_grammar(TEST_BOUNDS)
SAMPLED = SamplingParams(n=6, temperature=1.0, seed=7, max_new_tokens=200)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.getbasetemp()


@pytest.fixture(scope="module")
def engine(root: Path) -> Engine:
    """The shared CPU engine of the tiny model (loaded once per test session)."""
    return tiny_engine(root)


@pytest.fixture(scope="module")
def prompt(engine: Engine) -> str:
    return engine.chat_prompt([{"role": "user", "content": "Write a small model."}])


# -- the decoder -----------------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ["qwen2", "llama"])
def test_the_static_cache_decoder_matches_the_hf_forward_pass(root: Path, arch: str) -> None:
    from transformers import AutoModelForCausalLM

    from agent.llm.local.decoder import StaticDecoder

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir(root, arch), dtype=torch.float32)
    dec = StaticDecoder(model.eval(), slots=4, max_len=64)
    ids = [151644, 872, 198, 9707, 1879, 0, 151645, 198, 151644, 77091, 198]
    follow = [5212, 64, 788]
    with torch.inference_mode():
        reference = model(torch.tensor([ids + follow])).logits[0, len(ids) - 1 :]
        dec.load(2, dec.prefill(ids[:-1]))
        got = []
        for j, tok in enumerate([ids[-1], *follow]):
            # Slot 2 decodes; the idle slots write at the scratch position and must not disturb it.
            tokens = torch.tensor([0, 0, tok, 0])
            positions = torch.tensor([63, 63, len(ids) - 1 + j, 63])
            got.append(dec.decode(tokens, positions, 64)[2])
    assert torch.allclose(torch.stack(got), reference, atol=1e-4, rtol=1e-4)


def test_the_chat_prompt_is_chatml(engine: Engine) -> None:
    text = engine.chat_prompt(
        [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}]
    )
    assert (
        text
        == "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n"
    )
    assert engine.encode(text)[0] == 151644  # <|im_start|> is one special token


# -- sampling --------------------------------------------------------------------------------------


def test_uniforms_are_the_documented_hash() -> None:
    seeds = torch.tensor([0, 1, 12345, 2**32 - 1])
    steps = torch.tensor([0, 5, 7, 99])
    got = uniforms(seeds, steps).tolist()
    for s, t, u in zip(seeds.tolist(), steps.tolist(), got, strict=True):
        h = mix32(mix32(s) ^ ((t * 0x9E3779B1) & 0xFFFFFFFF))
        assert u == (h >> 8) / (1 << 24)
    assert sample_seed(3, 0) != sample_seed(3, 1) != sample_seed(3, 1, retry=1)


def test_draws_follow_the_distribution_and_respect_the_mask() -> None:
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.2, 0.0001]])).repeat(4000, 1)
    allowed = torch.tensor([[True, True, True, False]]).repeat(4000, 1)
    ones = torch.ones(4000)
    seeds = torch.arange(4000)
    steps = torch.zeros(4000, dtype=torch.long)
    drawn = choose_tokens(logits, allowed, ones, ones, seeds, steps, use_top_p=False)
    freq = torch.bincount(drawn, minlength=4).float() / 4000
    assert freq[3] == 0
    assert torch.allclose(freq[:3], torch.tensor([0.5, 0.3, 0.2]), atol=0.03)
    # top-p 0.6 keeps the two most likely tokens; temperature 0 takes the argmax.
    nucleus = choose_tokens(logits, allowed, ones, ones * 0.6, seeds, steps, use_top_p=True)
    assert set(nucleus.tolist()) == {0, 1}
    greedy = choose_tokens(logits, allowed, ones * 0, ones, seeds, steps, use_top_p=False)
    assert set(greedy.tolist()) == {0}


def test_samples_do_not_depend_on_the_batch(engine: Engine, prompt: str) -> None:
    """The same seeds give the same tokens alone, together (6 samples), and mixed with another
    request's 9 samples; every step runs at the engine's one batch shape."""
    together = engine.sample(prompt, FIVE, SAMPLED)
    seeds = [s.seed for s in together]
    alone = [
        engine.generate(
            [GenerationRequest(prompt, FIVE, SamplingParams(**{**_kw(SAMPLED), "n": 1}), (seed,))]
        )[0][0]
        for seed in seeds[:3]
    ]
    other = GenerationRequest(
        engine.chat_prompt([{"role": "user", "content": "Something else entirely."}]),
        asp_grammar(TEST_BOUNDS),
        SamplingParams(n=9, temperature=1.0, seed=99, max_new_tokens=100),
    )
    mixed = engine.generate([other, GenerationRequest(prompt, FIVE, SAMPLED)])[1]
    assert set(engine.stats.batch_sizes) == {engine.max_batch}
    assert max(engine.stats.live_steps) == 15 and min(engine.stats.live_steps) < 15
    assert len({s.token_ids for s in together}) > 1  # the seeds really differ
    for a, b in zip(together, alone, strict=False):
        assert a.token_ids == b.token_ids
    for a, c in zip(together, mixed, strict=True):
        assert a.token_ids == c.token_ids


def test_a_shrinking_batch_moves_the_samples_down(root: Path, engine: Engine, prompt: str) -> None:
    """With ``batch_invariant`` off a step runs at the smallest power of two that holds the live
    samples, and survivors move into a smaller batch as others finish (their keys and values
    copied down). The tiny model's width is small enough for its kernels to agree at every batch
    size, so the samples are those of the invariant engine."""
    fast = tiny_engine(root, batch_invariant=False)
    assert fast is not engine
    other = GenerationRequest(
        engine.chat_prompt([{"role": "user", "content": "Something else entirely."}]),
        asp_grammar(TEST_BOUNDS),
        SamplingParams(n=9, temperature=1.0, seed=99, max_new_tokens=100),
    )
    got = fast.generate([other, GenerationRequest(prompt, FIVE, SAMPLED)])
    assert {16, 8}.issubset(fast.stats.batch_sizes) and min(fast.stats.batch_sizes) < 8
    want = engine.generate([other, GenerationRequest(prompt, FIVE, SAMPLED)])
    assert [[s.token_ids for s in r] for r in got] == [[s.token_ids for s in r] for r in want]


def test_samples_do_not_depend_on_the_batch_at_a_real_width(root: Path) -> None:
    """At Qwen2.5-0.5B's width (hidden 896, two of its layers, the real vocabulary) a row's
    logits differ in the last bits between 1 and 8 rows, and with ``batch_invariant`` off one of
    these 8 seeds gave another sample alone here (diverging at its 7th token on this machine's
    kernels). The default engine runs every step at one shape: each seed gives the same sample
    alone as among seven others, in free text (the whole output layer) and under a grammar."""
    from transformers import AutoModelForCausalLM

    from agent.llm.local.qwen_vocab import qwen2_config, qwen_tokenizer

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(qwen2_config("0.5b", num_hidden_layers=2))
    eng = Engine(model, qwen_tokenizer(), max_batch=8, max_len=256, threads=1, torch_threads=1)
    try:
        text = eng.chat_prompt([{"role": "user", "content": "Write a small model."}])
        cases = (
            (
                None,
                SamplingParams(n=8, temperature=1.0, seed=3, max_new_tokens=40, ignore_eos=True),
            ),
            (FIVE, SamplingParams(n=8, temperature=1.0, seed=5, max_new_tokens=48)),
        )
        for grammar, params in cases:
            together = eng.sample(text, grammar, params)
            assert len({s.token_ids for s in together}) == 8
            one = SamplingParams(**{**_kw(params), "n": 1})
            for s in together:
                alone = eng.generate([GenerationRequest(text, grammar, one, (s.seed,))])[0][0]
                assert alone.token_ids == s.token_ids
    finally:
        eng.close()


def _kw(p: SamplingParams) -> dict[str, Any]:
    return {k: getattr(p, k) for k in p.__dataclass_fields__}


def test_greedy_is_deterministic_and_tiny_top_p_is_greedy(engine: Engine, prompt: str) -> None:
    greedy = engine.sample(prompt, FIVE, SamplingParams(n=2, max_new_tokens=120))
    assert greedy[0].token_ids == greedy[1].token_ids
    narrow = engine.sample(
        prompt, FIVE, SamplingParams(n=2, temperature=1.0, top_p=1e-9, max_new_tokens=120)
    )
    assert narrow[0].token_ids == greedy[0].token_ids


def test_the_first_greedy_samples_are_the_greedy_reply_in_the_same_batch(
    engine: Engine, prompt: str
) -> None:
    alone = engine.sample(prompt, FIVE, SamplingParams(n=1, max_new_tokens=120))[0]
    mixed = engine.sample(prompt, FIVE, replace(SAMPLED, max_new_tokens=120, greedy=2))
    assert [s.token_ids for s in mixed[:2]] == [alone.token_ids] * 2
    # The rest are drawn at the temperature, as without greedy samples (seeds by index).
    drawn = engine.sample(prompt, FIVE, replace(SAMPLED, max_new_tokens=120))
    assert [s.token_ids for s in mixed[2:]] == [s.token_ids for s in drawn[2:]]
    assert len({s.token_ids for s in drawn}) > 1
    with pytest.raises(ValueError, match="greedy"):
        SamplingParams(n=2, greedy=3)


def test_one_prefill_is_shared_by_the_samples_of_a_prompt(
    engine: Engine, prompt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = engine.decoder.prefill

    def counting(ids: list[int], past: Any = None) -> Any:
        calls.append(len(ids) - (past.length if past is not None else 0))
        return real(ids, past)

    monkeypatch.setattr(engine.decoder, "prefill", counting)
    engine.clear_prefixes()  # other tests' prompts: each prompt here runs in full, once
    other = engine.chat_prompt([{"role": "user", "content": "Another request."}])
    params = SamplingParams(n=5, temperature=1.0, max_new_tokens=8)
    out = engine.generate(
        [GenerationRequest(prompt, None, params), GenerationRequest(other, None, params)]
    )
    assert [len(x) for x in out] == [5, 5]
    assert calls == [len(engine.encode(prompt)) - 1, len(engine.encode(other)) - 1]


# -- budgets and stops -----------------------------------------------------------------------------


def test_budgets_cut_samples_off_and_say_so(engine: Engine, prompt: str) -> None:
    short = engine.sample(prompt, FIVE, SamplingParams(n=3, temperature=1.0, max_new_tokens=4))
    assert all(s.cut_off and s.finish == FINISH_LENGTH and len(s.token_ids) == 4 for s in short)
    late = engine.sample(
        prompt, FIVE, SamplingParams(n=2, temperature=1.0, max_new_tokens=200, time_budget_s=1e-9)
    )
    # The budget was spent before they began: no token was drawn for them.
    assert all(s.cut_off and s.finish == FINISH_TIME and not s.token_ids for s in late)


def test_an_artifact_finished_on_the_last_budgeted_token_is_complete(
    engine: Engine, prompt: str
) -> None:
    """A budget of exactly a complete sample's length still gives the complete artifact (the
    grammar would take the stop token there); one token fewer cuts it off."""
    full = engine.sample(prompt, FIVE, SAMPLED)
    s = next(x for x in full if x.finish == "complete")
    n = len(s.token_ids)

    def again(budget: int) -> Any:
        params = SamplingParams(**{**_kw(SAMPLED), "n": 1, "max_new_tokens": budget})
        return engine.generate([GenerationRequest(prompt, FIVE, params, (s.seed,))])[0][0]

    exact, short = again(n), again(n - 1)
    assert exact.token_ids == s.token_ids and exact.finish == "complete" and not exact.cut_off
    FIVE.validate(exact.text)
    assert short.finish == FINISH_LENGTH and short.cut_off


def test_stop_strings_end_free_text(engine: Engine, prompt: str) -> None:
    out = engine.sample(
        prompt, None, SamplingParams(n=8, temperature=1.0, max_new_tokens=60, stop=("e",))
    )
    stopped = [s for s in out if s.finish == FINISH_STOP]
    assert stopped
    for s in stopped:
        # The text is cut where the stop string begins; the token that completed it is kept.
        assert "e" not in s.text and not s.cut_off
        written = b"".join(engine._token_bytes[t] for t in s.token_ids)
        assert written.startswith(s.text.encode()) and written[len(s.text.encode()) :][:1] == b"e"


def test_prompts_longer_than_the_cache_are_refused(engine: Engine) -> None:
    from agent.errors import ConfigError

    with pytest.raises(ConfigError, match="no room"):
        engine.sample(list(range(100, 100 + engine.max_len)))


# -- special tokens --------------------------------------------------------------------------------


def test_special_tokens_never_appear_even_when_the_model_prefers_them(root: Path) -> None:
    """A model whose output layer makes the 208 special tokens, two added tokens not marked
    special and the padding rows the most likely by far still never emits them: in free text (where only the stop token may end it) and
    under a grammar (xgrammar alone would take ``<|im_start|>`` as text inside a JSON string)."""
    from tokenizers import AddedToken
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = tiny_model_dir(root)
    tok = AutoTokenizer.from_pretrained(path)
    # Added tokens not marked special, as Qwen2.5 ships <tool_call> and <|fim_prefix|>.
    tok.add_tokens(
        [AddedToken("<tool_call>", special=False), AddedToken("<|fim_x|>", special=False)]
    )
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    model.config.tie_word_embeddings = False
    head = torch.nn.Linear(64, 151_936, bias=True)
    with torch.no_grad():
        head.weight.copy_(model.lm_head.weight)
        head.bias.zero_()
        head.bias[151_643:] = 50.0  # every special token and padding row
        head.bias[151_645] = -50.0  # ...but the stop token, so samples go on
    model.lm_head = head
    eng = Engine(model, tok, max_batch=16, max_len=256, threads=2)
    try:
        prompt = eng.chat_prompt([{"role": "user", "content": "hi"}])
        free = eng.sample(prompt, None, SamplingParams(n=8, temperature=1.0, max_new_tokens=40))
        held = eng.sample(prompt, FIVE, SamplingParams(n=8, temperature=1.0, max_new_tokens=200))
    finally:
        eng.close()
    for s in free + held:
        assert all(t < 151_643 for t in s.token_ids), s.token_ids
        assert "<|" not in s.text and "<tool_call>" not in s.text
    assert all(len(s.token_ids) == 40 for s in free)  # the stop token was unlikely; budget ends it


# -- on a GPU --------------------------------------------------------------------------------------

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.gpu
@needs_cuda
def test_cuda_graphs_decode_like_the_eager_path(root: Path) -> None:
    """On a GPU the decode and sampling steps replay CUDA graphs; greedy samples match the eager
    path token for token, and sampled ones follow their seeds across batch sizes."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = tiny_model_dir(root)
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.bfloat16).to("cuda")
    graphed = Engine(model, tok, max_batch=8, max_len=512, threads=2)
    eager = Engine(model, tok, max_batch=8, max_len=512, threads=2, graphs=False)
    try:
        prompt = graphed.chat_prompt([{"role": "user", "content": "Write a small model."}])
        greedy = SamplingParams(n=3, max_new_tokens=64)
        a = graphed.sample(prompt, FIVE, greedy)
        b = eager.sample(prompt, FIVE, greedy)
        assert [s.token_ids for s in a] == [s.token_ids for s in b]
        assert graphed.graphs is not None and graphed.graphs.graphs
        together = graphed.sample(prompt, FIVE, SAMPLED)
        alone = graphed.generate(
            [GenerationRequest(prompt, FIVE, SamplingParams(**{**_kw(SAMPLED), "n": 1}), (s.seed,))
             for s in together[:2]]
        )  # fmt: skip
        assert [x[0].token_ids for x in alone] == [s.token_ids for s in together[:2]]
        for s in together:
            assert all(t < 151_643 for t in s.token_ids)
            if not s.cut_off:
                FIVE.validate(s.text)
    finally:
        graphed.close()
        eager.close()
