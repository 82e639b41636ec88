"""Configuration: one TOML file, environment variables for endpoints and secrets, flags on top.

Looked up in order: the path in ``FORMALIST_CONFIG``, ``./formalist.toml``,
``~/.config/formalist/config.toml``. Keys (all optional)::

    model = "openai:gpt-4o-mini"      # or FORMALIST_MODEL
    base_url = "http://localhost:8000/v1"   # or FORMALIST_BASE_URL / OPENAI_BASE_URL
    max_attempts = 3
    time_limit = 60.0                 # seconds per solver call
    backend = "highs"                 # the milp kind's backend: or "pyomo"
    planner = "auto"                  # Fast Downward then SymK; or "fast-downward", "symk", "pyperplan"
    cache = "~/.cache/formalist/llm.sqlite"   # "" turns the response cache off
    record = ""                       # a JSONL file every model reply is appended to (for replay:)
    sessions = "~/.local/share/formalist/sessions.sqlite"   # chat sessions (formalist chat / serve)
    db = "postgresql://user:password@host:5432/formalist"   # sessions on PostgreSQL (wins over sessions)
    token = ""                        # or FORMALIST_TOKEN: bearer token `formalist serve` requires
    temperature = 0.0                 # the model's sampling temperature
    request_timeout = 120.0           # seconds per request to a served model (openai:), not local:

    [local]                           # the local: backend's engine (every key optional)
    device = "cuda"                   # or "cpu", "cuda:N"; default: cuda when present
    dtype = "bfloat16"                # or "float16", "float32"; default: bfloat16 on CUDA and on CPUs
                                      # with AVX-512 BF16 or AMX, else float32
    max_len = 16384                   # cache positions per sequence, prompt and reply together
    max_batch = 8                     # sequences decoded at once (the cache is max_batch x max_len)
    grammar_engine = "xgrammar"       # or "llguidance"
    max_new_tokens = 2048             # a reply's budget, in tokens (a reply cut off is named as one)
    time_budget_s = 300.0             # seconds one reply may sample; default: none (bench: the item limit)
    threads = 1                       # CPU threads that fill grammar masks; default: half the free cores
    torch_threads = 1                 # torch's CPU threads; default on the CPU: the cores free at load
    graphs = true                     # CUDA: decode steps as CUDA graphs (default true)
    compile = false                   # CUDA: torch.compile the decode step first (default false)
    models_dir = "~/.cache/formalist/models"   # converted .gguf models (or FORMALIST_MODELS_DIR)
    prefix_cache_mb = 1024            # prompt caches kept for prompts that begin alike (system, examples)
    batch_invariant = true            # every step at max_batch rows, so a seed's sample never depends
                                      # on its batch; default: on for CUDA, off on a CPU (8 rows cost
                                      # up to 3.5x one row there)
    int4 = true                       # decode with a .gguf file's 4-bit (Q4_K) weights as packed;
                                      # default: on a CPU in bfloat16, where the kernel exists

    [tools]                           # cached tools in the loop (every key optional)
    enabled = true                    # look for a cached tool that fits each request in words
    cache = "~/.cache/formalist/tools.sqlite"   # or FORMALIST_TOOLS_DB; shared by chat, serve, bench;
                                      # or a postgresql:// URL (the db of formalist serve, say)
    min_score = 0.1                   # TF-IDF similarity a tool needs to be shown to the model
    top_k = 3                         # at most this many candidates go to the model's yes/no
    propose_after = 5                 # this many verified requests of one class: propose a tool
    propose_similarity = 0.35         # how alike two requests must be to count as one class
    history = true                    # keep verified requests (the examples a tool is made from)

A ``local:`` reply is bounded by ``max_new_tokens``, not by ``request_timeout`` (the network timeout
of a served model). ``torch_threads`` defaults to ``engine.free_cpus()``: the cores this process may
use less those other processes keep busy when the engine is built, at least one (on a loaded
2-core machine torch's default of every core ran 3-6x slower than one thread).

``backend`` and ``planner`` name solver backends; which names each may take is said by the kinds'
registry (``agent.kinds``), which checks them when an agent is made (``agent.kinds.check_config``):
this module stays a leaf that imports no kind and no solver.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, cast

from agent.errors import ConfigError

DEFAULT_CACHE = "~/.cache/formalist/llm.sqlite"

LOCAL_DEFAULTS: dict[str, Any] = {"max_len": 16_384, "max_batch": 8}
"""The ``local:`` engine's settings unless ``[local]`` says otherwise: room for a formalizer's
few-shot prompt, a repair turn that quotes the previous reply, and a new reply; a batch that holds
the eight samples of a vote at once (a decode step reads the weights once for all its rows, so
eight cost little more per step than one; the KV cache is ``max_batch x max_len`` positions,
3.8 GB in bfloat16 for a 1.5B Qwen)."""

LOCAL_KEYS: dict[str, tuple[type, tuple[Any, ...]]] = {
    "device": (str, ()),
    "dtype": (str, ("bfloat16", "float16", "float32")),
    "max_len": (int, ()),
    "max_batch": (int, ()),
    "grammar_engine": (str, ("xgrammar", "llguidance")),
    "max_new_tokens": (int, ()),
    "threads": (int, ()),
    "torch_threads": (int, ()),
    "graphs": (bool, ()),
    "compile": (bool, ()),
    "models_dir": (str, ()),
    "prefix_cache_mb": (int, ()),
    "time_budget_s": (float, ()),
    "batch_invariant": (bool, ()),
    "int4": (bool, ()),
}
"""The keys of ``[local]``: each one's type and, where the choice is closed, its values."""


_KIND_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}

TOOLS_DEFAULTS: dict[str, Any] = {
    "enabled": True,
    "cache": "",
    "min_score": 0.1,
    "top_k": 3,
    "propose_after": 5,
    "propose_similarity": 0.35,
    "history": True,
}
"""The ``[tools]`` settings unless the table says otherwise (``cache`` empty: ``FORMALIST_TOOLS_DB``
or ``~/.cache/formalist/tools.sqlite``; a file, or a ``postgresql://`` URL)."""

_ANY_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_DB_URL = re.compile(r"^(postgres(ql)?(\+psycopg)?|sqlite)://", re.IGNORECASE)


def check_tools(options: Any) -> dict[str, Any]:
    """The ``[tools]`` table checked and completed with ``TOOLS_DEFAULTS`` (``ConfigError`` names
    the first wrong key)."""
    if not isinstance(options, dict):
        raise ConfigError(f"[tools] must be a table of settings, not {options!r}")
    out = dict(TOOLS_DEFAULTS)
    for key, value in options.items():
        if key not in TOOLS_DEFAULTS:
            raise ConfigError(
                f"unknown key {key!r} in [tools]; known: {', '.join(sorted(TOOLS_DEFAULTS))}"
            )
        want = type(TOOLS_DEFAULTS[key])
        accepted: tuple[type, ...] = (int, float) if want is float else (want,)
        if not isinstance(value, accepted) or (want is not bool and isinstance(value, bool)):
            raise ConfigError(f"[tools] {key} must be {_KIND_NAMES[want]}, not {value!r}")
        number = cast(float, value)
        if key in ("min_score", "propose_similarity") and not 0 <= number <= 1:
            raise ConfigError(f"[tools] {key} must be between 0 and 1, not {value}")
        if key in ("top_k", "propose_after") and number < 1:
            raise ConfigError(f"[tools] {key} must be at least 1, not {value}")
        if key == "cache" and _ANY_URL.match(str(value)) and not _DB_URL.match(str(value)):
            raise ConfigError(f"[tools] cache must be a file or a postgresql:// URL, not {value!r}")
        out[key] = value
    return out


def check_local(options: Any) -> dict[str, Any]:
    """The ``[local]`` table checked (``ConfigError`` names the first wrong key)."""
    if not isinstance(options, dict):
        raise ConfigError(f"[local] must be a table of settings, not {options!r}")
    out = dict(options)
    for key, value in options.items():
        if key not in LOCAL_KEYS:
            raise ConfigError(
                f"unknown key {key!r} in [local]; known: {', '.join(sorted(LOCAL_KEYS))}"
            )
        kind, choices = LOCAL_KEYS[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = out[key] = float(value)  # TOML's 300 for 300.0
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ConfigError(f"[local] {key} must be {_KIND_NAMES[kind]}, not {value!r}")
        if isinstance(value, float) and not value > 0:
            raise ConfigError(f"[local] {key} must be a positive number, not {value!r}")
        if choices and value not in choices:
            raise ConfigError(f"[local] {key} must be one of {', '.join(choices)}, not {value!r}")
        if kind is int and isinstance(value, int) and value < 1:
            raise ConfigError(f"[local] {key} must be at least 1, not {value}")
        if key == "device" and not re.fullmatch(r"cpu|cuda(:\d+)?", str(value)):
            raise ConfigError(f"[local] device must be cpu, cuda or cuda:N, not {value!r}")
    return out


_FIELD_TYPES: dict[str, type] = {"str": str, "int": int, "float": float}
"""The types of ``Config``'s fields, by annotation (a TOML file may hold anything)."""


@dataclass(frozen=True, slots=True)
class Config:
    """Settings of one agent. ``model`` is a spec string (``openai:MODEL``, ``ollama:MODEL``,
    ``replay:FILE``, ``local:PATH``) or empty for no language model; ``local`` the ``[local]``
    table (``LOCAL_KEYS``), which ``local:`` models use."""

    model: str = ""
    base_url: str = ""
    max_attempts: int = 3
    time_limit: float = 60.0
    backend: str = "highs"
    planner: str = "auto"
    cache: str = DEFAULT_CACHE
    record: str = ""
    temperature: float = 0.0
    request_timeout: float = 120.0
    sessions: str = "~/.local/share/formalist/sessions.sqlite"
    db: str = ""
    token: str = ""
    max_body_bytes: int = 2_000_000
    local: dict[str, Any] = field(default_factory=dict)
    tools: dict[str, Any] = field(default_factory=dict)
    """The ``[tools]`` table, completed with ``TOOLS_DEFAULTS``."""

    def __post_init__(self) -> None:
        for f in fields(self):
            want = _FIELD_TYPES.get(str(f.type))
            if want is None:
                continue
            value = getattr(self, f.name)
            accepted = (int, float) if want is float else (want,)  # an integer is a number
            if not isinstance(value, accepted) or isinstance(value, bool):
                raise ConfigError(f"{f.name} must be {_KIND_NAMES[want]}, not {value!r}")
        object.__setattr__(self, "local", check_local(self.local))
        object.__setattr__(self, "tools", check_tools(self.tools))
        if not 1 <= self.max_attempts <= 50:
            raise ConfigError(f"max_attempts must be between 1 and 50, not {self.max_attempts}")
        if not 0 < self.time_limit <= 86_400:
            raise ConfigError(
                f"time_limit must be between 0 and 86400 seconds, not {self.time_limit}"
            )

    @property
    def sessions_db(self) -> str:
        """Where sessions are kept: ``db`` (a ``postgresql://`` URL or a file) when set, else
        the ``sessions`` file (SQLite)."""
        return self.db or self.sessions

    @property
    def tools_db(self) -> str:
        """Where the tool cache is kept: ``[tools] cache`` when set, else ``FORMALIST_TOOLS_DB``,
        else ``db`` when it is a PostgreSQL URL (sessions and tools in one database), else ``""``
        (``~/.cache/formalist/tools.sqlite``)."""
        explicit = str(self.tools.get("cache") or os.environ.get("FORMALIST_TOOLS_DB") or "")
        if explicit:
            return explicit
        return self.db if re.match(r"^postgres(ql)?(\+psycopg)?://", self.db, re.IGNORECASE) else ""

    def with_overrides(self, **kw: Any) -> Config:
        return replace(self, **{k: v for k, v in kw.items() if v is not None})


def _config_path() -> Path | None:
    env = os.environ.get("FORMALIST_CONFIG")
    if env:
        p = Path(env).expanduser()
        if not p.is_file():
            raise ConfigError(f"FORMALIST_CONFIG points to {p}, which is not a file")
        return p
    for p in (Path("formalist.toml"), Path("~/.config/formalist/config.toml").expanduser()):
        if p.is_file():
            return p
    return None


def load_config(path: str | Path | None = None) -> Config:
    """Read the configuration file (if any) and the environment."""
    data: dict[str, Any] = {}
    p = Path(path).expanduser() if path else _config_path()
    if p is not None:
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
            raise ConfigError(f"cannot read configuration {p}: {e}") from e
    known = {f.name for f in fields(Config)}
    unknown = set(data) - known
    if unknown:
        raise ConfigError(
            f"unknown key(s) in {p}: {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}"
        )
    env_model = os.environ.get("FORMALIST_MODEL")
    if env_model:
        data["model"] = env_model
    env_url = os.environ.get("FORMALIST_BASE_URL")
    if env_url:
        data["base_url"] = env_url
    env_token = os.environ.get("FORMALIST_TOKEN")
    if env_token:
        data["token"] = env_token
    try:
        return Config(**data)
    except TypeError as e:
        raise ConfigError(f"bad configuration in {p}: {e}") from e


HOW_TO_CONFIGURE = (
    "No language model is configured. Set one with --model SPEC, the FORMALIST_MODEL variable or "
    '`model = "..."` in formalist.toml. Specs: openai:MODEL (set OPENAI_API_KEY; any OpenAI-compatible '
    "server such as vLLM, SGLang, llama.cpp or Ollama's /v1 with FORMALIST_BASE_URL), ollama:MODEL, "
    "replay:FILE (recorded replies). Formal inputs need no model: five-element JSON/YAML, LP, MPS, "
    "PDDL, clingo programs, routing files (VRPLIB, TSPLIB, Solomon, JSON) and API requests."
)
