"""GGUF models from the Hugging Face Hub: ``hf:OWNER/REPO[:QUANT]`` and
``hf:OWNER/REPO/FILE.gguf``.

People fetch GGUFs with ``hf download OWNER/REPO`` (or llama.cpp's ``-hf
OWNER/REPO:QUANT``), which leaves them in the Hugging Face cache. A model is looked
for, in order: in the GGUF directories under its file name (for the ``:QUANT`` form,
the name such repositories use, ``REPO-QUANT.gguf`` without ``-GGUF``); in the Hugging
Face cache, through ``huggingface_hub``'s cache API, which honours ``HF_HOME`` and
``HF_HUB_CACHE`` and needs no network; and only when the user allows it
(``--skill-hf-download``), on the Hub. A model found nowhere fails with the exact
``hf download`` command that fetches it.

``huggingface_hub`` (the ``local`` extra) is imported only here, when a model is
located: replaying recorded answers needs neither it nor the file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pytest_skills.backends.base import BackendError
from pytest_skills.models import HFReference

INSTALL_HINT = 'pip install "pytest-skills[local]"'
#: llama.cpp's ``-hf`` picks this quantization when none is named, and so do we.
DEFAULT_QUANT = "Q4_K_M"
_BARE_STATUS_RE = re.compile(r"\d{3} (Client|Server) Error\.?")
_SHARD_RE = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$", re.IGNORECASE)


class HFModelNotFoundError(BackendError):
    """A Hugging Face model that is on neither the GGUF directories nor the cache."""

    def __init__(self, ref: HFReference, searched: Sequence[str], why: str = ""):
        self.ref = ref
        lines = [f"GGUF model hf:{ref.text} is not on this machine{why}. Looked in:"]
        lines += [f"  - {place}" for place in searched]
        lines += [
            "To fetch it into the Hugging Face cache:",
            f"    {download_command(ref)}",
            "or let pytest-skills download it: --skill-hf-download (ini skill_hf_download); "
            "or replay recorded answers with --skill-cache=replay",
        ]
        super().__init__("\n".join(lines), model_unavailable=True)


def download_command(ref: HFReference) -> str:
    """The ``hf`` command line that puts the model in the Hugging Face cache."""
    if ref.filename:
        return f"hf download {ref.repo} {ref.filename}"
    return f'hf download {ref.repo} --include "*{ref.quant or DEFAULT_QUANT}*.gguf"'


def conventional_name(ref: HFReference) -> str:
    """The file name a GGUF directory would hold the model under.

    GGUF repositories name their files after the repository: ``unsloth/GLM-4.7-Flash-GGUF``
    holds ``GLM-4.7-Flash-Q4_0.gguf``.
    """
    if ref.filename:
        return ref.filename.rpartition("/")[2]
    base = re.sub(r"-GGUF$", "", ref.repo.partition("/")[2], flags=re.IGNORECASE)
    return f"{base}-{ref.quant or DEFAULT_QUANT}.gguf"


def choose_file(ref: HFReference, files: Iterable[str]) -> str | None:
    """The repository file the reference names: the file itself, or the one GGUF of its
    quantization (the first shard of a split model). Raises when several match."""
    names = list(files)
    if ref.filename:
        return ref.filename if ref.filename in names else None
    ggufs = [
        name
        for name in names
        if name.lower().endswith(".gguf")
        and not name.rpartition("/")[2].lower().startswith("mmproj")
        and _first_shard(name)
    ]
    quant = (ref.quant or DEFAULT_QUANT).lower()
    # A quantization is a whole token of the name: Q4_K must not pick Q4_K_M.
    token = re.compile(rf"(?<![a-z0-9]){re.escape(quant)}(?![a-z0-9_])")
    matches = [name for name in ggufs if token.search(name.lower())]
    if ref.quant is None and not matches and len(ggufs) == 1:
        matches = ggufs  # a repository with one model file needs no quantization named
    if len(matches) > 1:
        raise BackendError(
            f"hf:{ref.text} matches several files: {', '.join(sorted(matches))}; "
            f"name one with hf:{ref.repo}/FILE.gguf",
            model_unavailable=True,
        )
    return matches[0] if matches else None


def _first_shard(name: str) -> bool:
    match = _SHARD_RE.search(name)
    return match is None or int(match.group(1)) == 1


def locate_hf_gguf(ref: HFReference, gguf_dirs: Sequence[Path], *, download: bool) -> Path:
    """An existing GGUF file for ``ref``; see the module's docstring for the order."""
    name = conventional_name(ref)
    searched = []
    for directory in gguf_dirs:
        directory = directory.expanduser().resolve()
        searched.append(f"{directory} (for {name})")
        if (directory / name).is_file():
            return directory / name
    hub = _import_hub()
    cache = Path(hub.constants.HF_HUB_CACHE)
    searched.append(f"the Hugging Face cache, {cache} (set by HF_HUB_CACHE or HF_HOME)")
    found = _from_cache(hub, ref)
    if found is not None:
        return found
    if not download:
        raise HFModelNotFoundError(ref, searched)
    if hub.constants.HF_HUB_OFFLINE:
        raise HFModelNotFoundError(ref, searched, ", and HF_HUB_OFFLINE forbids downloading it")
    return _download(hub, ref, searched)


def _import_hub() -> Any:
    try:
        # Lazy: only locating an hf: model needs it. Its submodules load on first use;
        # `constants` (where it reads HF_HOME and friends) is not exported by name.
        import huggingface_hub
        import huggingface_hub.constants
    except ImportError as error:
        raise BackendError(
            f"hf: models are found through huggingface_hub, which is not importable "
            f"({error}): {INSTALL_HINT}, or replay recorded answers with --skill-cache=replay",
            model_unavailable=True,
        ) from None
    return huggingface_hub


def _from_cache(hub: Any, ref: HFReference) -> Path | None:
    """The file in the Hugging Face cache, at the revision ``main`` points to."""
    if ref.filename:
        cached = hub.try_to_load_from_cache(ref.repo, ref.filename)
        return Path(cached) if isinstance(cached, str) else None
    try:
        info = hub.scan_cache_dir()
    except hub.CacheNotFound:
        return None
    for repo in info.repos:
        if repo.repo_id != ref.repo or repo.repo_type != "model":
            continue
        # The revision `main` points to, else the newest one downloaded.
        revisions = sorted(repo.revisions, key=lambda r: ("main" in r.refs, r.last_modified))
        for revision in reversed(revisions):
            files = {
                file.file_path.relative_to(revision.snapshot_path).as_posix(): file.file_path
                for file in revision.files
            }
            chosen = choose_file(ref, files)
            if chosen is not None:
                return files[chosen]
    return None


def _download(hub: Any, ref: HFReference, searched: Sequence[str]) -> Path:
    """Fetch the file (every shard of a split model) into the Hugging Face cache.

    ``hf_hub_download`` shows its own progress bar per file, on stderr.
    """
    try:
        if ref.filename:
            chosen, files = ref.filename, [ref.filename]
        else:
            files = hub.HfApi().list_repo_files(ref.repo)
            found = choose_file(ref, files)
            if found is None:
                raise HFModelNotFoundError(ref, searched, f", and {ref.repo} has no such GGUF file")
            chosen = found
        paths = {name: hub.hf_hub_download(ref.repo, name) for name in _shards(chosen, files)}
    except BackendError:
        raise
    except Exception as error:  # network, missing repository or file, disk full
        raise BackendError(
            f"downloading hf:{ref.text} failed: {type(error).__name__}: {_what_failed(error)}\n"
            f"To fetch it by hand: {download_command(ref)}",
            model_unavailable=True,
        ) from None
    return Path(paths[chosen])


def _what_failed(error: Exception) -> str:
    """One line of a ``huggingface_hub`` error, which runs over several: the first line
    is often a bare status ("401 Client Error."), the next one says what was missing."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if not lines:
        return "(no message)"
    if len(lines) > 1 and _BARE_STATUS_RE.fullmatch(lines[0]):
        return f"{lines[0]} {lines[1]}"
    return lines[0]


def _shards(first: str, files: Iterable[str]) -> list[str]:
    """Every part of a split GGUF (``-00001-of-00003.gguf``), or the file alone."""
    match = _SHARD_RE.search(first)
    if match is None:
        return [first]
    stem = first[: match.start()]
    count = int(match.group(2))
    wanted = {f"{stem}-{index:05d}-of-{count:05d}.gguf".lower() for index in range(1, count + 1)}
    return [name for name in files if name.lower() in wanted] or [first]
