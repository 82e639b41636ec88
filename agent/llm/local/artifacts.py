"""Sampled artifacts: samples under a grammar, checked by the project's own parser.

A sample is returned as an artifact only when it is complete (the grammar's stop token ended it)
and its grammar's validator accepts it. A cut-off sample (token or time budget) is reported, never
returned. A complete sample the validator rejects is reported too, with the reason: a grammar states
the syntax and the schema, while some rules are beyond any grammar (a set's members must differ), so
``redraws`` lets such a sample be drawn again with the next seed of its index.

A staged grammar (``agent.llm.grammar.Staged``: PDDL without known objects) is drawn in two
phases: the first under ``first()``; then, read back by ``then(text)``, the rest under the grammar
it returns, the prompt continued by the text it returns (so the model sees what it declared). The
whole text is checked by the staged grammar's ``validate``. Nothing here knows a formal language.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

from agent.llm.grammar import Grammar, Staged
from agent.llm.local.engine import Engine, GenerationRequest
from agent.llm.local.sampling import (
    FINISH_COMPLETE,
    FINISH_LENGTH,
    FINISH_TIME,
    Sample,
    SamplingParams,
    sample_seed,
)


@dataclass(frozen=True, slots=True)
class SampledArtifact:
    """A complete, valid sample and the artifact its grammar's validator parsed from it."""

    sample: Sample
    artifact: Any


@dataclass(slots=True)
class ArtifactSamples:
    """The outcome of sampling ``n`` artifacts: ``artifacts`` (complete and valid, by sample
    index), ``cut_off`` (budget ran out: reported, not artifacts), ``invalid`` (complete, rejected
    by the validator: the sample and the reason; a redrawn sample's earlier draws are here too)."""

    artifacts: list[SampledArtifact] = field(default_factory=list)
    cut_off: list[Sample] = field(default_factory=list)
    invalid: list[tuple[Sample, str]] = field(default_factory=list)

    def to_json(self, as_json: bool) -> list[Any]:
        """One entry per sample index, in order: the artifact (parsed JSON when ``as_json``, else
        its text), or an object marking a cut-off or invalid sample."""
        final: dict[int, Any] = {}
        for a in self.artifacts:
            final[a.sample.index] = _artifact_json(a.sample.text, as_json)
        for s in self.cut_off:
            final[s.index] = {"cut_off": True, "finish": s.finish, "text": s.text, "seed": s.seed}
        last_invalid = {s.index: (s, why) for s, why in self.invalid}
        for i, (s, why) in last_invalid.items():
            final.setdefault(i, {"invalid": why, "text": s.text, "seed": s.seed})
        return [final[i] for i in sorted(final)]


def _artifact_json(text: str, as_json: bool) -> Any:
    if not as_json:
        return text
    import json

    return json.loads(text)


def sample_artifacts(
    engine: Engine,
    prompt: str,
    target: Grammar | Staged,
    params: SamplingParams,
    redraws: int = 0,
) -> ArtifactSamples:
    """``params.n`` samples of ``prompt`` under ``target`` (a grammar, or a staged grammar drawn
    in two phases), each checked by the grammar's validator; an invalid sample is drawn again,
    with a new seed, up to ``redraws`` times."""
    out = ArtifactSamples()
    todo = [(i, sample_seed(params.seed, i)) for i in range(params.n)]
    for attempt in range(redraws + 1):
        if not todo:
            break
        # A redraw is at the temperature: a greedy sample drawn again would be the same one.
        first = params if attempt == 0 else replace(params, greedy=0)
        samples = _draw(engine, prompt, target, first, todo)
        retry: list[tuple[int, int]] = []
        for s in samples:
            if s.cut_off or s.finish != FINISH_COMPLETE:
                out.cut_off.append(s)
                continue
            try:
                artifact = target.validate(s.text)
            except Exception as e:  # the validators raise ArtifactError, ValueError...
                out.invalid.append((s, _reason(e)))
                retry.append((s.index, sample_seed(params.seed, s.index, attempt + 1)))
                continue
            out.artifacts.append(SampledArtifact(s, artifact))
        todo = retry
    out.artifacts.sort(key=lambda a: a.sample.index)
    return out


def _reason(e: Exception) -> str:
    feedback = getattr(e, "feedback", None)
    return feedback() if callable(feedback) else f"{type(e).__name__}: {e}"


def _draw(
    engine: Engine,
    prompt: str,
    target: Grammar | Staged,
    params: SamplingParams,
    todo: list[tuple[int, int]],
) -> list[Sample]:
    """One sample per ``(index, seed)`` in ``todo``."""
    seeds = tuple(seed for _, seed in todo)
    n_params = replace(params, n=len(todo))
    if isinstance(target, Grammar):
        got = engine.generate([GenerationRequest(prompt, target, n_params, seeds)])[0]
        return [replace(s, index=i) for (i, _), s in zip(todo, got, strict=True)]
    t0 = time.perf_counter()
    heads = engine.generate([GenerationRequest(prompt, target.first(), n_params, seeds)])[0]
    left = (
        None if params.time_budget_s is None else params.time_budget_s - (time.perf_counter() - t0)
    )
    out: list[Sample | None] = [None] * len(todo)
    second: list[tuple[int, str, GenerationRequest]] = []
    for k, ((i, seed), h) in enumerate(zip(todo, heads, strict=True)):
        if h.cut_off or h.finish != FINISH_COMPLETE:
            out[k] = replace(h, index=i, cut_off=True)
            continue
        head, rest_grammar = target.then(h.text)
        budget = params.max_new_tokens - len(h.token_ids)
        if budget < 1 or (left is not None and left <= 0):
            finish = FINISH_LENGTH if budget < 1 else FINISH_TIME
            out[k] = replace(h, index=i, cut_off=True, finish=finish)
            continue
        # The second phase gets what the first left of both budgets.
        rest = replace(
            n_params.of_sample(k), n=1, greedy=0, max_new_tokens=budget, time_budget_s=left
        )
        second.append((k, head, GenerationRequest(prompt + head, rest_grammar, rest, (seed,))))
    tails = engine.generate([r for _, _, r in second]) if second else []
    for (k, head, _), got in zip(second, tails, strict=True):
        t = got[0]
        i = todo[k][0]
        ids = tuple(engine.encode(head)) + t.token_ids
        out[k] = replace(t, text=head + t.text, token_ids=ids, index=i)
    return [s for s in out if s is not None]
