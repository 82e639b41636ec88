"""The ``local:`` chat model drives the agent's repair loop end to end on the CPU, with a tiny random
Qwen2 model: the replies are nonsense, but every one is a well-formed artifact, and the loop runs
(feedback goes back, attempts are counted). Also: the grammar of each call is the one its caller
gives (the formalizers pass theirs; the chat model reads no prompt to guess one), and
``formalist sample``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("xgrammar")

from langchain_core.messages import HumanMessage

from agent.agent import Agent
from agent.cli import main
from agent.config import load_config
from agent.errors import ArtifactError, ConfigError
from agent.llm.chat import Message, Output, Reply
from agent.llm.client import ChatClient
from agent.llm.grammar import Grammar
from agent.llm.local.chat_model import LocalChatModel
from agent.llm.local.testing import ENGINE_OPTIONS, TEST_BOUNDS, tiny_model_dir
from agent.types import Request
from conftest import agent_with
from formalizers.apis.formalizer import ApiFormalizer
from formalizers.apis.model import ApiCatalog
from formalizers.asp.formalizer import AspFormalizer, extract_program
from formalizers.asp.grammar import asp_grammar
from formalizers.asp.program import check_program
from formalizers.milp.formalizer import MilpFormalizer
from formalizers.milp.grammar import five_element_grammar, five_element_grammar_for
from formalizers.offline.milp_files import read_five_element
from formalizers.pddl.formalizer import PddlFormalizer
from formalizers.pddl.grammar import PddlGrammar
from formalizers.pddl.library import find
from formalizers.pddl.model import read_problem
from formalizers.routing.formalizer import RoutingFormalizer
from formalizers.routing.grammar import RoutingContext, routing_grammar
from formalizers.routing.spec import parse_spec
from solvers.base import Status

BAKERY = (
    "A bakery makes muffins and cakes. A muffin earns 2 dollars and a cake 5. Muffins take 1 hour "
    "of oven time and cakes 3; the oven runs 40 hours a week. How many of each should it bake?"
)
COLOURING = "Colour the regions a, b and c of a map red, green or blue so that neighbours differ."
DELIVERY = (
    "A van leaves the depot, delivers 2 crates to shop 1 and 3 to shop 2, and comes back; it "
    "carries 5 crates. Minimize the distance."
)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_model_dir(tmp_path_factory.getbasetemp())


def local_chat(model_dir: Path, **fields: Any) -> LocalChatModel:
    """The ``local:`` chat model over the tests' shared CPU engine, sampling at temperature 1."""
    kw: dict[str, Any] = {
        "model_path": str(model_dir),
        "bounds": TEST_BOUNDS,
        "engine_options": ENGINE_OPTIONS,
        "temperature": 1.0,
        "max_new_tokens": 300,
    }
    return LocalChatModel(**{**kw, **fields})


class Recording(LocalChatModel):
    """Keeps every conversation it is sent (to check the repair turns)."""

    seen: list[list[dict[str, str]]] = []

    def _generate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kw: Any) -> Any:
        self.seen.append([{"type": m.type, "content": str(m.content)} for m in messages])
        return super()._generate(messages, stop, run_manager, **kw)


# -- which grammar ---------------------------------------------------------------------------------


class Asked:
    """A ``Chat`` that keeps the ``output`` of every call and replies with nothing."""

    model_id = "asked"

    def __init__(self) -> None:
        self.outputs: list[Output | None] = []

    def complete(self, messages: list[Message], output: Output | None = None) -> Reply:
        self.outputs.append(output)
        return Reply("", self.model_id)

    def complete_n(
        self,
        messages: list[Message],
        n: int,
        temperature: float,
        seed: int = 0,
        output: Output | None = None,
        greedy: int = 0,
    ) -> list[Reply]:
        self.outputs.append(output)
        return [Reply("", self.model_id)] * n


def asked_for(formalizer: Any, chat: Asked, request: str) -> Output | None:
    """The ``output`` ``formalizer`` sends with its call for ``request`` (its reply, empty, does
    not read)."""
    with pytest.raises(ArtifactError):
        formalizer.formalize(request)
    return chat.outputs[-1]


def test_the_formalizers_pass_their_grammars() -> None:
    chat = Asked()
    milp = asked_for(MilpFormalizer(chat), chat, BAKERY)
    assert isinstance(milp, Grammar) and milp.id == five_element_grammar_for(BAKERY).id
    MilpFormalizer(chat).formalize_samples(BAKERY, 2)
    assert chat.outputs[-1].id == milp.id  # the same grammar for its samples
    asp = asked_for(AspFormalizer(chat), chat, COLOURING)
    assert isinstance(asp, Grammar) and asp.id == asp_grammar().id
    blocks = find("blocksworld")
    assert blocks is not None
    planning = asked_for(PddlFormalizer(chat, blocks), chat, "Stack b1 on b2.")
    assert isinstance(planning, PddlGrammar) and planning.domain.name == blocks.name
    given = asked_for(PddlFormalizer(chat, domain_text=blocks.text), chat, "Stack b1 on b2.")
    assert isinstance(given, PddlGrammar) and given.id == planning.id
    free = asked_for(PddlFormalizer(chat), chat, "Plan a trip with a new kind of vehicle.")
    assert isinstance(free, Grammar) and free.name == "pddl-any"
    broken = asked_for(PddlFormalizer(chat, domain_text="(define (domain"), chat, "Go.")
    assert broken is None  # a domain that does not read: free text, the reader says why
    routing = asked_for(RoutingFormalizer(chat), chat, DELIVERY)
    assert isinstance(routing, Grammar) and routing.name == "routing"
    ctx = RoutingContext(("depot", 1, 2), depots=("depot",))
    known = asked_for(RoutingFormalizer(chat, context=ctx), chat, DELIVERY)
    assert isinstance(known, Grammar) and known.id == routing_grammar(None, ctx).id
    catalog = ApiCatalog.model_validate(
        {"apis": [{"name": "weather", "inputs": ["city"], "outputs": ["forecast"]}]}
    )
    assert asked_for(ApiFormalizer(chat, catalog), chat, "Weather?") is None  # facts: free text


def test_the_local_model_applies_exactly_the_grammar_it_is_given(model_dir: Path) -> None:
    """No grammar is guessed from the prompt: the MILP formalizer's own conversation without a
    grammar gets free text, and a given grammar is applied whatever the conversation is."""
    chat = local_chat(model_dir, max_new_tokens=12, seed=2)
    milp = MilpFormalizer(ChatClient("x", chat)).messages(BAKERY)
    chat.invoke(milp)
    assert chat.last["grammar"] == "" and chat.last["valid"] is None
    chat = local_chat(model_dir, max_new_tokens=300, seed=2)
    reply = chat.invoke([HumanMessage(content="hello")], output=asp_grammar())
    assert chat.last["grammar"] == "asp" and chat.last["valid"] is True
    check_program(extract_program(str(reply.content)))
    reply = chat.invoke(milp, output=asp_grammar())  # the MILP prompt, the ASP grammar
    assert chat.last["grammar"] == "asp" and not chat.last["cut_off"]
    check_program(extract_program(str(reply.content)))
    # The engine's bounds apply to what it is given; what is not a grammar is refused.
    assert chat.grammar(five_element_grammar()).id == five_element_grammar(TEST_BOUNDS).id
    assert chat.grammar(None) is None
    with pytest.raises(TypeError, match="Grammar"):
        chat.grammar("milp")


# -- the repair loop -------------------------------------------------------------------------------


def test_the_repair_loop_runs_on_the_local_model(model_dir: Path) -> None:
    chat = Recording(**local_chat(model_dir).__dict__)
    chat.seen.clear()
    client = ChatClient(f"local:{model_dir}", chat)
    answer = agent_with(client, max_attempts=3).solve(Request(BAKERY, kind="milp"))
    assert chat.last["grammar"] == "five-element" and not chat.last["cut_off"]
    # Every reply is a well-formed five-element model, whatever it says.
    for attempt in answer.trace:
        read_five_element(attempt.reply, yaml_ok=False)
    # Nonsense does not solve the bakery: the loop sent the diagnosis back and tried again.
    assert answer.status is Status.ERROR and answer.attempts == 3
    assert [a.outcome for a in answer.trace] and all(a.feedback for a in answer.trace)
    repair = chat.seen[1]
    assert repair[-2]["type"] == "ai" and repair[-2]["content"] == answer.trace[0].reply
    assert answer.trace[0].feedback.splitlines()[0] in repair[-1]["content"]


def test_the_local_table_of_the_configuration_reaches_the_engine(
    model_dir: Path, tmp_path: Path
) -> None:
    """``[local]`` in formalist.toml sets the engine of an agent's ``local:`` model (and is part
    of the reply cache's key); a wrong setting is named before anything loads."""
    cfg_file = tmp_path / "formalist.toml"
    cfg_file.write_text(
        f'model = "local:{model_dir}"\ncache = ""\nmax_attempts = 2\n\n[local]\n'
        'device = "cpu"\ndtype = "float32"\nmax_len = 3000\nmax_batch = 2\n'
        "max_new_tokens = 24\nthreads = 1\ntorch_threads = 1\n",
        encoding="utf-8",
    )
    agent = Agent(config=load_config(cfg_file))
    client = agent.client
    assert client is not None and client.params["local"]["max_len"] == 3000
    chat = client.chat_model
    assert isinstance(chat, LocalChatModel) and chat.max_new_tokens == 24
    engine = chat.engine()
    assert (engine.max_len, engine.max_batch, engine.device.type) == (3000, 2, "cpu")
    answer = agent.solve(Request(BAKERY, kind="milp"))
    # 24 tokens cannot hold a five-element model: each reply is cut off, and the loop says so.
    assert answer.attempts == 2 and chat.last["cut_off"] and chat.last["tokens"] == 24
    assert answer.error and "cut off by its token budget after 24 tokens" in answer.error
    assert [a.outcome for a in answer.trace] == ["cut_off", "cut_off"]
    # A cache too short for the formalizer's prompt is a configuration error that says so.
    small = load_config(cfg_file).with_overrides(
        local={**load_config(cfg_file).local, "max_len": 512}
    )
    with pytest.raises(ConfigError, match=r"\[local\] max_len in formalist.toml"):
        Agent(config=small).solve(Request(BAKERY, kind="milp"))
    cfg_file.write_text('[local]\nmax_len = "long"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="max_len must be an integer"):
        load_config(cfg_file)
    cfg_file.write_text('[local]\ngpu = "yes"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown key 'gpu' in \\[local\\]"):
        load_config(cfg_file)


def test_an_asp_request_runs_through_clingo(model_dir: Path) -> None:
    client = ChatClient(f"local:{model_dir}", local_chat(model_dir, seed=3))
    answer = agent_with(client, max_attempts=2).solve(Request(COLOURING, kind="asp"))
    assert answer.attempts >= 1
    for attempt in answer.trace:
        check_program(extract_program(attempt.reply))  # well-formed and safe, every time
    assert answer.status in (Status.OPTIMAL, Status.FEASIBLE, Status.INFEASIBLE, Status.ERROR)


def test_a_routing_grammar_of_the_requests_locations_is_applied(model_dir: Path) -> None:
    chat = local_chat(model_dir, seed=1, max_new_tokens=1200)
    messages = RoutingFormalizer(ChatClient("x", chat)).messages(DELIVERY)
    ctx = RoutingContext(("depot", 1, 2), depots=("depot",), groups=())
    reply = chat.invoke(messages, output=routing_grammar(None, ctx))
    assert chat.last["grammar"] == "routing:3-locations" and not chat.last["cut_off"]
    data = json.loads(str(reply.content))
    assert [loc["id"] for loc in data["locations"]] == ["depot", 1, 2]
    assert [d["id"] for d in data["depots"]] == ["depot"]
    if chat.last["valid"]:
        parse_spec(data)


def test_a_cut_off_reply_is_marked(model_dir: Path) -> None:
    chat = local_chat(model_dir, max_new_tokens=5)
    messages = MilpFormalizer(ChatClient("x", chat)).messages(BAKERY)
    reply = chat.invoke(messages, output=five_element_grammar())
    assert reply.response_metadata["cut_off"] is True
    assert reply.response_metadata["finish"] == "length"
    assert reply.response_metadata["valid"] is False
    assert chat.last["tokens"] == 5


# -- formalist sample ------------------------------------------------------------------------------


ENGINE_ARGS = [
    "--device=cpu",
    f"--max-batch={ENGINE_OPTIONS['max_batch']}",
    f"--max-len={ENGINE_OPTIONS['max_len']}",
    f"--threads={ENGINE_OPTIONS['threads']}",
    f"--torch-threads={ENGINE_OPTIONS['torch_threads']}",
]
"""The tests' engine options as ``formalist sample`` flags (so the command reuses that engine)."""


def run_sample(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any]:
    code = main(["sample", *ENGINE_ARGS, *args])
    out = capsys.readouterr().out
    return code, json.loads(out) if out.lstrip().startswith("[") else out


def test_formalist_sample_prints_pddl_and_json_artifacts(
    model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ["--model", f"local:{model_dir}", "--json", "--n", "3"]
    bounds = [f"--bound=max_statements={TEST_BOUNDS.max_statements}", "--bound=max_name=8"]
    code, problems = run_sample(
        capsys, *common, *bounds, "--artifact", "pddl:blocksworld", "--objects", "b1 b2 b3"
    )
    assert code == 0 and len(problems) == 3
    blocks = find("blocksworld")
    assert blocks is not None
    for text in problems:
        assert set(read_problem(text, blocks.domain).objects) == {"b1", "b2", "b3"}
    code, models = run_sample(
        capsys, *common, "--bound=max_string=8", "--bound=max_items=2", "--bound=any_depth=1",
        "--artifact", "milp", "--seed", "4",
    )  # fmt: skip
    assert code == 0 and len(models) == 3
    for m in models:
        # A model, the questions the MILP prompt allows, or a cut-off sample.
        assert isinstance(m, dict) and ("cut_off" in m or "variables" in m or "questions" in m)


def test_formalist_sample_specialises_routing_to_the_locations(
    model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, entries = run_sample(
        capsys, "--model", f"local:{model_dir}", "--json", "--n", "3", "--max-tokens", "1200",
        "--bound=max_string=8", "--bound=max_items=2", "--bound=any_depth=1",
        "--artifact", "routing", "--locations", "depot,1,2", "--depots", "depot", "--groups", "",
        "--redraws", "8",
    )  # fmt: skip
    assert code == 0 and len(entries) == 3
    for spec in entries:
        assert [loc["id"] for loc in spec["locations"]] == ["depot", 1, 2]
        parse_spec(spec)


def test_formalist_sample_marks_cut_off_samples(
    model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, entries = run_sample(
        capsys, "--model", f"local:{model_dir}", "--json", "--n", "2",
        "--artifact", "asp", "--max-tokens", "3",
    )  # fmt: skip
    assert code == 0
    assert entries == [
        {"cut_off": True, "finish": "length", "text": e["text"], "seed": e["seed"]} for e in entries
    ]


def test_formalist_sample_refuses_bad_arguments(
    model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sample", "--model", "openai:gpt-4o", "--artifact", "milp"]) == 2
    assert main(["sample", "--model", f"local:{model_dir}", "--artifact", "sql"]) == 2
    assert main(["sample", "--model", f"local:{model_dir}", "--artifact", "pddl"]) == 2
    assert main(["sample", "--model", "local:x", "--artifact", "asp", "--bound", "zz=1"]) == 2
    local = ["sample", "--model", f"local:{model_dir}"]
    assert main([*local, "--artifact", "routing", "--depots", "1"]) == 2
    assert main([*local, "--artifact", "milp", "--locations", "1,2"]) == 2
    assert main([*local, "--artifact", "routing", "--locations", "1,1"]) == 2
    err = capsys.readouterr().err
    assert "local:PATH" in err and "unknown artifact" in err and "NAME=NUMBER" in err
    assert "need --locations" in err and "each id once" in err


def test_formalist_sample_takes_the_local_table_and_a_dtype(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from agent.cli import build_parser
    from agent.llm.local.cli import engine_options

    cfg = tmp_path / "sample.toml"
    cfg.write_text(
        '[local]\ndevice = "cpu"\nmax_batch = 32\nmax_len = 4096\nthreads = 1\n'
        'torch_threads = 1\nmax_new_tokens = 3\ndtype = "float16"\ngrammar_engine = "llguidance"\n',
        encoding="utf-8",
    )
    argv = ["sample", "--model", f"local:{model_dir}", "--artifact", "asp", "--config", str(cfg)]
    options, budget = engine_options(build_parser().parse_args([*argv, "--dtype", "float32"]))
    assert budget == 3
    assert options == {
        "device": "cpu", "max_batch": 32, "max_len": 4096, "threads": 1, "torch_threads": 1,
        "dtype": "float32", "grammar_engine_name": "llguidance",
    }  # fmt: skip
    # The flags win over the table; the table's budget (3 tokens) cuts every sample off.
    code, entries = run_sample(capsys, *argv[1:], "--dtype", "float32", "--json", "--n", "2")
    assert code == 0 and [e["finish"] for e in entries] == ["length", "length"]
    cfg.write_text('[local]\ndtype = "int8"\n', encoding="utf-8")
    assert main(argv) == 2
    assert "[local] dtype must be one of" in capsys.readouterr().err


def test_the_pddl_prompts_ask_for_what_the_grammar_allows() -> None:
    """The local model's PDDL grammars allow bare (define ...) forms only: no prompt that asks
    for a reply may ask for fenced blocks."""
    from importlib import resources

    folder = resources.files("formalizers.pddl").joinpath("prompts")
    for name in ("system.md", "repair.md", "domain_request.md"):
        text = folder.joinpath(name).read_text(encoding="utf-8")
        assert "```" not in text and "fenced" not in text, name
