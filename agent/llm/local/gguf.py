"""GGUF files (as Ollama, LM Studio and llama.cpp keep models) for the local backend.

transformers reads a GGUF file (``from_pretrained(folder, gguf_file=name)``, with the ``gguf``
package) and dequantizes its weights; that takes a minute or more for a 1.5B model, so the result
is converted once and cached as an ordinary checkpoint (``model.safetensors``, ``config.json`` and
the tokenizer files) in ``MODELS_DIR/<sha256 of the file>/``. A later load of the same file (or of
a copy of it under another name) loads that folder instead. ``save_pretrained`` refuses a model
loaded from GGUF, so the conversion builds a fresh model from the same configuration on the meta
device and assigns it the loaded state dict, which it then saves.

The weights are kept in float32 (the dequantized values exactly); ``Engine.from_pretrained`` loads
them in the engine's dtype.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

from agent.errors import ConfigError

log = logging.getLogger(__name__)

DEFAULT_MODELS_DIR = "~/.cache/formalist/models"
"""Where converted GGUF models (and ``formalist models pull``'s files) are kept unless
``FORMALIST_MODELS_DIR`` or ``[local] models_dir`` says otherwise."""

COMPLETE = "formalist-converted.json"
"""The file a finished conversion writes last: a folder without it is not used."""

FORMAT = 3
"""The version of a converted folder's layout: 2 marks the file's unused tokens as added tokens; 3
drops the GGUF ``quantization_config`` that transformers writes into ``config.json`` (the weights
saved are dense, and with it a later load takes the folder for packed GGUF weights and warns). A
folder of an older format is brought up to date on load."""

_HASHES = "hashes.json"
_LOCK = threading.Lock()


def models_dir(configured: str | os.PathLike[str] | None = None) -> Path:
    """The folder of converted models: ``configured``, else ``FORMALIST_MODELS_DIR``, else
    ``DEFAULT_MODELS_DIR``."""
    chosen = configured or os.environ.get("FORMALIST_MODELS_DIR") or DEFAULT_MODELS_DIR
    return Path(chosen).expanduser()


def is_gguf(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names a GGUF file (by its suffix; the file's magic is checked on load)."""
    return str(path).lower().endswith(".gguf")


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def file_sha256(path: Path, root: Path, known: str | None = None) -> str:
    """The sha256 of ``path``, remembered in ``root/hashes.json`` by the file's real path, size and
    modification time (hashing a 1 GB file on every load would cost seconds). ``known``: the hash
    the caller has just computed (it is remembered, not computed again)."""
    st = path.stat()
    key = str(path.resolve())
    stamp = [st.st_size, st.st_mtime_ns]
    index_path = root / _HASHES
    with _LOCK:
        try:
            index = json.loads(index_path.read_text(encoding="utf-8"))
            if not isinstance(index, dict):
                index = {}
        except (OSError, ValueError):
            index = {}
        entry = index.get(key)
        if isinstance(entry, dict) and entry.get("stamp") == stamp and entry.get("sha256"):
            return str(entry["sha256"])
        digest = known or sha256_file(path)
        index[key] = {"stamp": stamp, "sha256": digest}
        try:
            root.mkdir(parents=True, exist_ok=True)
            _write_atomic(index_path, json.dumps(index, indent=1))
        except OSError as e:  # a read-only cache still loads; it only hashes again next time
            log.warning("cannot remember the hash of %s in %s: %s", path, index_path, e)
        return digest


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _check_magic(path: Path) -> None:
    try:
        with path.open("rb") as f:
            magic = f.read(4)
    except OSError as e:
        raise ConfigError(f"cannot read the model file {path}: {e.strerror or e}") from e
    if magic != b"GGUF":
        raise ConfigError(f"{path} is not a GGUF file (it does not start with the GGUF magic)")


def converted_dir(
    path: str | os.PathLike[str],
    root: str | os.PathLike[str] | None = None,
    sha256: str | None = None,
) -> Path:
    """The folder of ``path``'s converted checkpoint, converting the GGUF file first unless a
    finished conversion of a file with the same sha256 is cached under ``root``
    (``models_dir``); ``sha256``: the file's hash where the caller has just checked it.
    ``ConfigError`` for a file that is missing or not GGUF, or that transformers cannot read."""
    src = Path(path).expanduser()
    if not src.is_file():
        raise ConfigError(f"no such model file: {src}")
    _check_magic(src)
    base = models_dir(root)
    digest = file_sha256(src, base, sha256)
    out = base / digest
    if (out / COMPLETE).is_file():
        log.info("%s: converted checkpoint cached in %s", src, out)
        if _format(out) < FORMAT:
            _upgrade(src, out)
        return out
    base.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=base, prefix=f".{digest[:16]}-"))
    try:
        _convert(src, work, digest)
        try:
            os.replace(work, out)
        except OSError:
            # Another process finished the same conversion first (or an unfinished folder is in
            # the way): use a finished one, else replace the unfinished one.
            if not (out / COMPLETE).is_file():
                shutil.rmtree(out, ignore_errors=True)
                os.replace(work, out)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    return out


def _convert(src: Path, out: Path, digest: str) -> None:
    """Dequantize ``src`` with transformers and save it as a float32 checkpoint in ``out``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(src.parent), src.name
    log.warning("converting %s (dequantizing its weights; done once per file)", src)
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        loaded: Any = AutoModelForCausalLM.from_pretrained(
            folder, gguf_file=name, dtype=torch.float32
        )
    except ImportError as e:
        raise ConfigError(
            f"reading GGUF files needs the gguf and accelerate packages (the [local] extra): {e}"
        ) from e
    except (OSError, ValueError, KeyError, RuntimeError, TypeError) as e:
        raise ConfigError(f"transformers cannot read the GGUF file {src}: {e}") from e
    config = loaded.config
    state = loaded.state_dict()
    with torch.device("meta"):
        model: Any = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(state, strict=False, assign=True)
    del loaded, state
    if model.config.tie_word_embeddings:
        model.tie_weights()
        missing = [k for k in missing if k != "lm_head.weight"]
    if missing or unexpected:
        raise ConfigError(
            f"the weights read from {src} do not fit its configuration "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    _mark_unused_tokens(src, tokenizer)
    # The weights saved are dense: the GGUF quantization settings the loaded config carries
    # would make a later load of this folder take it for packed GGUF weights.
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    _write_atomic(
        out / COMPLETE,
        json.dumps(
            {"source": str(src.resolve()), "sha256": digest, "dtype": "float32", "format": FORMAT}
        ),
    )


def _format(out: Path) -> int:
    try:
        return int(json.loads((out / COMPLETE).read_text(encoding="utf-8")).get("format", 1))
    except (OSError, ValueError, AttributeError, TypeError):
        return 1


def _upgrade(src: Path, out: Path) -> None:
    """Bring a conversion of an older format up to date, the weights kept: its tokenizer gets the
    file's unused tokens marked (format 2), its ``config.json`` loses the GGUF quantization
    settings (format 3)."""
    from transformers import AutoTokenizer

    old = _format(out)
    if old < 2:
        tokenizer = AutoTokenizer.from_pretrained(str(out))
        _mark_unused_tokens(src, tokenizer)
        tokenizer.save_pretrained(out)
    config_path = out / "config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    if config.pop("quantization_config", None) is not None:
        _write_atomic(config_path, json.dumps(config, indent=2, sort_keys=True) + "\n")
    info = json.loads((out / COMPLETE).read_text(encoding="utf-8"))
    _write_atomic(out / COMPLETE, json.dumps({**info, "format": FORMAT}))


def _mark_unused_tokens(src: Path, tokenizer: Any) -> None:
    """Register the ids the file marks UNUSED (llama.cpp's ``[PADn]`` rows past the real
    vocabulary) as special added tokens, ids unchanged: the engine never samples added tokens,
    whereas as plain vocabulary entries a grammar would let ``[PAD151700]`` into a string."""
    import gguf
    from tokenizers import AddedToken

    field = gguf.GGUFReader(str(src)).fields.get("tokenizer.ggml.token_type")
    if field is None:
        return
    types = [int(field.parts[i][0]) for i in field.data]
    unused = [i for i, t in enumerate(types) if t == gguf.TokenType.UNUSED and i < len(tokenizer)]
    if not unused:
        return
    before = len(tokenizer)
    names = tokenizer.convert_ids_to_tokens(unused)
    tokenizer.add_tokens(
        [AddedToken(n, special=True, normalized=False) for n in names], special_tokens=True
    )
    if len(tokenizer) != before:
        raise ConfigError(f"{src}: its unused tokens could not be marked without new ids")
