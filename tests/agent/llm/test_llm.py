"""Model access: specs, the reply cache, recording and replay."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.agent import Agent
from agent.config import Config
from agent.errors import ConfigError
from agent.llm.cache import ResponseCache, request_key
from agent.llm.client import ChatClient
from agent.llm.replay import ReplayChatModel, ReplayExhausted, read_recording
from agent.llm.spec import build_chat_model, parse_spec
from agent.types import Request
from conftest import golden_json, scripted
from solvers.base import Status


@pytest.mark.parametrize(
    ("spec", "provider", "name"),
    [
        ("openai:gpt-4o-mini", "openai", "gpt-4o-mini"),
        ("ollama:qwen2.5:7b", "ollama", "qwen2.5:7b"),
        ("replay:/tmp/r.jsonl", "replay", "/tmp/r.jsonl"),
        ("local:Qwen/Qwen2.5-7B", "local", "Qwen/Qwen2.5-7B"),
    ],
)
def test_parse_spec(spec: str, provider: str, name: str) -> None:
    s = parse_spec(spec)
    assert (s.provider, s.name, s.id) == (provider, name, f"{provider}:{name}")


@pytest.mark.parametrize("bad", ["gpt-4", "bogus:model", "openai:", ""])
def test_bad_specs_are_config_errors(bad: str) -> None:
    with pytest.raises(ConfigError):
        parse_spec(bad)


def test_openai_spec_builds_a_client_for_a_local_server_without_contacting_it() -> None:
    chat = build_chat_model(parse_spec("openai:qwen2.5-7b"), base_url="http://127.0.0.1:9/v1")
    assert chat.model_name == "qwen2.5-7b"
    assert str(chat.openai_api_base).startswith("http://127.0.0.1:9")


def test_openai_without_key_or_url_explains() -> None:
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        build_chat_model(parse_spec("openai:gpt-4o"))


def test_local_spec_builds_the_local_chat_model_without_loading_it() -> None:
    chat = build_chat_model(parse_spec("local:/models/qwen"), temperature=0.5, timeout=30)
    assert type(chat).__name__ == "LocalChatModel"
    assert (chat.model_path, chat.temperature) == ("/models/qwen", 0.5)
    # The network timeout is not a local model's budget: its tokens are.
    assert chat.time_budget_s is None and chat.max_new_tokens == 2048


def test_a_cut_off_reply_is_named_as_one_and_never_cached(tmp_path: Path) -> None:
    from langchain_core.messages import AIMessage

    from agent.errors import ArtifactError, StopError

    class CutOff(ReplayChatModel):
        def _generate(self, messages, stop=None, run_manager=None, **kwargs):  # type: ignore[no-untyped-def]
            result = super()._generate(messages, stop, run_manager, **kwargs)
            text = result.generations[0].message.content
            meta = {"cut_off": True, "finish": self.finish, "tokens": 24}
            result.generations[0].message = AIMessage(content=text, response_metadata=meta)
            return result

        finish: str = "length"

    cache = ResponseCache(tmp_path / "c.sqlite")
    msgs = [{"role": "user", "content": "a model please"}]
    client = ChatClient("local:m", CutOff(replies=['{"variables": [', "x"]), cache)
    with pytest.raises(ArtifactError) as caught:
        client.complete(msgs)
    err = caught.value
    assert err.kind == "cut_off" and err.reply == '{"variables": ['
    assert "cut off by its token budget after 24 tokens" in err.feedback()
    assert len(cache) == 0
    timed = ChatClient("local:m", CutOff(replies=["{"], finish="time"))
    with pytest.raises(StopError, match="cut off by its time limit after 24 tokens"):
        timed.complete(msgs)
    cache.close()


def test_cache_hits_skip_the_model(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path / "c.sqlite")
    client = ChatClient("openai:fake", ReplayChatModel(replies=["first"]), cache)
    msgs = [{"role": "user", "content": "hello"}]
    assert client.complete(msgs).text == "first"
    assert (client.calls, client.cache_hits) == (1, 0)
    assert len(cache) == 1
    # a different message is a different key
    assert request_key("openai:fake", msgs, {}) != request_key(
        "openai:fake", [{"role": "user", "content": "hi"}], {}
    )
    cache.close()
    # a later run (a new client) is answered from the cache, which survives a restart
    again = ChatClient(
        "openai:fake", ReplayChatModel(replies=[]), ResponseCache(tmp_path / "c.sqlite")
    )
    assert again.complete(msgs).text == "first"
    assert (again.calls, again.cache_hits) == (0, 1)


def test_a_reply_with_a_lone_surrogate_is_stored_and_sent_back(tmp_path: Path) -> None:
    """JSON may escape a lone surrogate ("\\udbff"), which no UTF-8 text holds: the reply is kept
    with U+FFFD in its place, cached, recorded, and quoted back in the repair turn."""
    cache = ResponseCache(tmp_path / "c.sqlite")
    record = tmp_path / "r.jsonl"
    bad = json.loads('"{\\"x\\": \\udbff"')
    client = ChatClient("openai:fake", ReplayChatModel(replies=[bad] * 3), cache, record)
    reply = client.complete([{"role": "user", "content": "model it \udc00"}]).text
    assert reply == '{"x": \ufffd\ufffd\ufffd' and cache.get(next(iter(_keys(cache)))) == reply
    assert json.loads(record.read_text(encoding="utf-8"))["reply"] == reply
    answer = Agent(client, config=Config(cache="", max_attempts=2)).solve("a bakery", kind="milp")
    assert answer.status is Status.ERROR and answer.attempts == 2


def _keys(cache: ResponseCache) -> list[str]:
    return [r[0] for r in cache._db.execute("SELECT key FROM replies")]


def test_a_repeated_turn_is_not_answered_with_the_cached_failure(tmp_path: Path) -> None:
    """Attempts 2 and 3 of a repair can send identical messages; with a sampling model the third
    reply may differ, so the cache keeps one entry per occurrence."""
    bad = "not json"
    good = json.dumps(golden_json("knapsack.json"))
    cache_path = tmp_path / "c.sqlite"

    def run(replies: list[str]) -> tuple[object, int]:
        client = ChatClient(
            "openai:sampling",
            ReplayChatModel(replies=replies),
            ResponseCache(cache_path),
            params={"temperature": 0.7},
        )
        answer = Agent(client, config=Config(cache="", max_attempts=3)).solve(
            "Pack the boxes into a 15 kg bag."
        )
        return answer, client.calls

    first, calls = run([bad, bad, good])
    assert first.status is Status.OPTIMAL and calls == 3  # type: ignore[attr-defined]
    second, calls = run([])  # everything from the cache, in the same order
    assert second.status is Status.OPTIMAL and calls == 0  # type: ignore[attr-defined]


def test_the_cache_key_includes_the_server(tmp_path: Path) -> None:
    from agent.llm.spec import parse_spec

    a = ChatClient.from_spec(
        "openai:default", base_url="http://127.0.0.1:1/v1", cache_path=str(tmp_path / "c")
    )
    b = ChatClient.from_spec(
        "openai:default", base_url="http://127.0.0.1:2/v1", cache_path=str(tmp_path / "c")
    )
    assert parse_spec("openai:default").id == a.model_id == b.model_id
    assert a.endpoint != b.endpoint


def test_record_then_replay_reproduces_the_run(tmp_path: Path) -> None:
    record = tmp_path / "run.jsonl"
    broken = golden_json("knapsack.json")
    broken["constraints"][0]["expression"] = "sum(weight[b] * take[b] for b in BOXES) <= cap"
    live = ChatClient(
        "openai:scripted",
        ReplayChatModel(replies=[json.dumps(broken), json.dumps(golden_json("knapsack.json"))]),
        record=record,
    )
    # The knapsack's numbers are not the request's: reported, not repaired (one reply a turn).
    request = Request("Pack the boxes into a 15 kg bag.", extra={"grounding": "report"})
    first = Agent(live, config=Config(cache="")).solve(request)
    lines = [json.loads(line) for line in record.read_text().splitlines()]
    assert len(lines) == 2 and {"key", "model", "messages", "reply"} <= set(lines[0])
    assert read_recording(record) == [line["reply"] for line in lines]

    again = Agent(f"replay:{record}", config=Config(cache="")).solve(request)
    assert again.status is first.status is Status.OPTIMAL
    assert again.objective == first.objective == 15.0
    assert [a.outcome for a in again.trace] == [a.outcome for a in first.trace] == ["symbol", "ok"]


def test_replay_past_the_end_stops_the_request() -> None:
    client = scripted("not json")
    with pytest.raises(ReplayExhausted):
        Agent(client, config=Config(cache="", max_attempts=2)).solve(
            "Make chairs and tables for profit."
        )


@pytest.mark.parametrize("content", ["", "[1, 2]", '{"no_reply": 1}\n', "not json\n"])
def test_bad_recordings_are_config_errors(tmp_path: Path, content: str) -> None:
    p = tmp_path / "r.jsonl"
    p.write_text(content)
    if content == "":
        assert read_recording(p) == []
        return
    with pytest.raises(ConfigError):
        read_recording(p)


def test_few_shot_examples_are_chosen_per_request() -> None:
    from formalizers.milp.formalizer import MilpFormalizer, select_examples

    assert (
        select_examples("ship pallets from warehouses to stores at least cost", 1)[0].name
        == "transport"
    )
    assert select_examples("bake muffins and cakes with flour", 1)[0].name == "ratio_scalar"
    # The bundled examples, chosen by the request (the default is the bank's nearest).
    msgs = MilpFormalizer(scripted(), examples="fixed").messages(
        "ship pallets from warehouses to stores"
    )
    assert msgs[0]["role"] == "system" and "five-element" in msgs[0]["content"]
    assert msgs[-1]["content"].startswith("Request:\nship pallets")
    assert len(msgs) == 1 + 2 * 2 + 1


def test_config_file_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from agent.config import load_config

    cfg_file = tmp_path / "formalist.toml"
    cfg_file.write_text('model = "ollama:llama3"\nmax_attempts = 5\ntime_limit = 10\n')
    cfg = load_config(cfg_file)
    assert (cfg.model, cfg.max_attempts, cfg.time_limit) == ("ollama:llama3", 5, 10.0)
    monkeypatch.setenv("FORMALIST_MODEL", "openai:gpt-4o")
    assert load_config(cfg_file).model == "openai:gpt-4o"
    cfg_file.write_text('modle = "typo"\n')
    with pytest.raises(ConfigError, match="unknown key"):
        load_config(cfg_file)
    cfg_file.write_text("max_attempts = 0\n")
    with pytest.raises(ConfigError, match="max_attempts"):
        load_config(cfg_file)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("cache = 5", "cache must be a string, not 5"),
        ('max_attempts = "3"', "max_attempts must be an integer, not '3'"),
        ("time_limit = true", "time_limit must be a number, not True"),
    ],
)
def test_a_setting_of_the_wrong_type_is_named(tmp_path: Path, line: str, message: str) -> None:
    """TOML holds any type; a setting of the wrong one is a configuration error that names it
    (``cache = 5`` was taken, and failed later far from its cause)."""
    from agent.config import load_config

    cfg_file = tmp_path / "formalist.toml"
    cfg_file.write_text(line + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_config(cfg_file)


class _Reporting(ReplayChatModel):
    """Replays its replies with what a backend reports: ``meta`` as response metadata and
    ``usage`` as usage metadata (input, output tokens); all ``n`` samples in one call when
    ``samples_in_one_call``."""

    meta: dict = {}
    usage: tuple[int, int] = (0, 0)
    samples_in_one_call: bool = False

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):  # type: ignore[no-untyped-def]
        from langchain_core.messages import AIMessage
        from langchain_core.outputs import ChatGeneration, ChatResult

        gens = []
        for _ in range(int(kwargs.get("n", 1))):
            text = super()._generate(messages, stop, run_manager, **kwargs).generations[0].text
            i, o = self.usage
            message = AIMessage(
                content=text,
                response_metadata=dict(self.meta),
                usage_metadata={"input_tokens": i, "output_tokens": o, "total_tokens": i + o},
            )
            gens.append(ChatGeneration(message=message))
        return ChatResult(generations=gens)


def test_a_reply_says_what_its_backend_reported(tmp_path: Path) -> None:
    """Usage and finish come from the model's message; ``seconds`` is the call's time; a reply from
    the cache costs no tokens and says it was cached; the grammar given reaches the chat model as
    ``output`` and is part of the cache key and the recording."""
    from agent.llm.client import counting_usage
    from agent.llm.grammar import Grammar

    cache = ResponseCache(tmp_path / "c.sqlite")
    record = tmp_path / "r.jsonl"
    chat = _Reporting(replies=['{"a": 1}', "free"], meta={"finish_reason": "stop"}, usage=(30, 4))
    client = ChatClient("openai:fake", chat, cache, record)
    grammar = Grammar.json_schema({"type": "object"}, "obj")
    msgs = [{"role": "user", "content": "hi"}]
    with counting_usage() as usage:
        reply = client.complete(msgs, grammar)
        free = client.complete(msgs)
    assert (reply.text, reply.model, reply.grammar_id) == ('{"a": 1}', "openai:fake", grammar.id)
    assert reply.constrained and not reply.cut_off and not reply.cached and reply.finish == "stop"
    assert (reply.prompt_tokens, reply.completion_tokens) == (30, 4) and reply.seconds > 0
    assert (free.text, free.grammar_id, free.constrained) == ("free", "", False)
    assert (usage.prompt_tokens, usage.completion_tokens, usage.calls) == (60, 8, 2)
    assert chat.outputs == [grammar, None]
    lines = [json.loads(line) for line in record.read_text(encoding="utf-8").splitlines()]
    assert [line.get("grammar") for line in lines] == [grammar.id, None]
    again = ChatClient("openai:fake", ReplayChatModel(replies=[]), cache)
    hit = again.complete(msgs, grammar)
    assert hit.cached and hit.text == '{"a": 1}' and hit.grammar_id == grammar.id
    assert (hit.prompt_tokens, hit.completion_tokens, hit.seconds, hit.finish) == (
        0,
        0,
        0.0,
        "stop",
    )
    cache.close()


def test_samples_drawn_in_one_call_say_which_were_cut_off(tmp_path: Path) -> None:
    """The local engine returns cut-off samples as text, marked ``cut_off`` with its ``tokens``:
    ``complete_n`` hands them on marked (the reader says where they broke off), and the cache keeps
    the mark."""
    meta = {"cut_off": True, "finish": "length", "tokens": 300}
    chat = _Reporting(replies=["{", "{"], meta=meta, samples_in_one_call=True)
    cache = ResponseCache(tmp_path / "c.sqlite")
    client = ChatClient("local:m", chat, cache)
    msgs = [{"role": "user", "content": "a model please"}]
    drawn = client.complete_n(msgs, 2, 0.7, seed=3)
    assert client.calls == 1 and len(chat.calls) == 2
    assert [(r.cut_off, r.finish, r.completion_tokens) for r in drawn] == [
        (True, "length", 300)
    ] * 2
    assert all(r.seconds > 0 and not r.cached for r in drawn)
    cached = ChatClient("local:m", ReplayChatModel(replies=[]), cache).complete_n(msgs, 2, 0.7, 3)
    assert [(r.cached, r.cut_off, r.finish) for r in cached] == [(True, True, "length")] * 2
    cache.close()


def test_a_greedy_sample_is_the_reply_complete_would_give(tmp_path: Path) -> None:
    """The first ``greedy`` samples are asked at temperature 0 and cached under the key of an
    ordinary call at temperature 0: a later ``complete`` of the same messages costs no call. A
    cut-off sample so kept is drawn again by ``complete``, never handed on as a whole reply."""
    cache = ResponseCache(tmp_path / "c.sqlite")
    chat = _Reporting(replies=["greedy", "warm", "warmer", "fresh"])
    client = ChatClient("openai:fake", chat, cache, params={"temperature": 0.0})
    msgs = [{"role": "user", "content": "a model please"}]
    drawn = client.complete_n(msgs, 3, 0.7, seed=5, greedy=1)
    assert [r.text for r in drawn] == ["greedy", "warm", "warmer"] and client.calls == 1
    again = client.complete(msgs)
    assert (again.text, again.cached, client.calls) == ("greedy", True, 1)
    with pytest.raises(ValueError, match="greedy"):
        client.complete_n(msgs, 2, 0.7, greedy=3)
    meta = {"cut_off": True, "finish": "length", "tokens": 9}
    cut = _Reporting(replies=["{", "{", '{"whole": 1}'], meta=meta, samples_in_one_call=True)
    other = ChatClient("local:m", cut, cache, params={"temperature": 0.0})
    assert [r.cut_off for r in other.complete_n(msgs, 2, 0.7, greedy=1)] == [True, True]
    cut.meta = {}
    fresh = other.complete(msgs)
    assert (fresh.text, fresh.cached) == ('{"whole": 1}', False)
    cache.close()


def test_grammars_reach_each_backend_as_it_takes_them() -> None:
    """``output_kwargs``: OpenAI-compatible servers get a JSON schema as ``response_format``,
    Ollama as ``format``, neither an EBNF grammar (unconstrained, said so); the local engine and
    other chat models get the grammar itself."""
    from agent.llm.client import output_kwargs
    from agent.llm.grammar import Grammar

    schema = {"type": "object", "properties": {"x": {"type": "integer"}}}
    grammar = Grammar.json_schema(schema, "five element")
    ebnf = Grammar("asp", "ebnf", 'root ::= "a."', "asp")
    openai = build_chat_model(parse_spec("openai:m"), base_url="http://127.0.0.1:9/v1")
    ollama = build_chat_model(parse_spec("ollama:m"), base_url="http://127.0.0.1:9")
    sent = output_kwargs(openai, grammar)
    assert sent == (
        {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "five_element", "schema": schema, "strict": False},
            }
        },
        True,
    )
    assert output_kwargs(ollama, grammar) == ({"format": schema}, True)
    assert output_kwargs(openai, ebnf) == output_kwargs(ollama, ebnf) == ({}, False)
    assert output_kwargs(openai, None) == ({}, False)
    fake = ReplayChatModel(replies=[])
    assert output_kwargs(fake, ebnf) == ({"output": ebnf}, True)


def test_a_json_schema_grammar_is_the_schema_text() -> None:
    from agent.llm.grammar import Grammar

    schema = {"type": "object", "properties": {"b": {}, "a": {}}}
    g = Grammar.json_schema(schema, "args")
    assert (g.name, g.format, g.artifact) == ("args", "json_schema", "json")
    assert g.schema == schema and list(g.schema["properties"]) == ["b", "a"]  # order kept
    assert g.validate('{"a": 1}') == {"a": 1}
    assert g.id == Grammar.json_schema(dict(schema), "other").id  # the language, not the name
    assert g.id != Grammar.json_schema({"type": "array"}, "args").id
    assert Grammar("x", "ebnf", "root ::= x", "x").schema is None
    with pytest.raises(TypeError):
        Grammar.json_schema(["not", "a", "schema"], "x")  # type: ignore[arg-type]


def test_a_cache_written_before_reply_metadata_is_read_and_upgraded(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE replies (key TEXT PRIMARY KEY, model TEXT NOT NULL, reply TEXT NOT NULL, "
        "created REAL NOT NULL)"
    )
    db.execute("INSERT INTO replies VALUES ('k', 'openai:m', 'old reply', 0)")
    db.commit()
    db.close()
    cache = ResponseCache(path)
    assert cache.get("k") == "old reply" and cache.entry("k") == ("old reply", {})
    cache.put("k2", "openai:m", "new", {"finish": "stop"})
    assert cache.entry("k2") == ("new", {"finish": "stop"}) and len(cache) == 2
    cache.close()
    assert ResponseCache(path).entry("k2") == ("new", {"finish": "stop"})


def test_a_local_models_budgets_are_not_part_of_the_cache_key(tmp_path: Path) -> None:
    """A bench run with another --item-timeout (the local time budget) or token budget reuses
    the replies; a dtype does not."""
    pytest.importorskip("torch")
    path = tmp_path / "m.gguf"

    def params(**local: object) -> dict[str, object]:
        return ChatClient.from_spec(f"local:{path}", cache_path="", local=local).params

    base = params(torch_threads=2)
    assert params(torch_threads=2, time_budget_s=240) == base
    assert params(torch_threads=2, time_budget_s=400, max_new_tokens=512) == base
    assert params(torch_threads=2, dtype="float32") != base
    assert params(time_budget_s=400) == params() == {"temperature": 0.0}
