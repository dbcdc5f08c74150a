"""Warn when replayed local answers came from another GGUF file or llama.cpp build.

Greedy decoding is deterministic for one model file and one llama-cpp-python build;
either changing changes answers. Each replayed local answer carries both; a run where
they differ from what is installed here says so once per model, without loading
anything: replay must keep working where the model is absent.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pytest_skills.backends import BackendError, BackendOptions
from pytest_skills.backends.gguf import Announce, file_sha256
from pytest_skills.backends.llama_cpp import installed_llama_cpp_version, model_file
from pytest_skills.models import ModelSpec, Response

RERECORD = "re-record with --skill-cache=refresh if the answers should follow it"


class GGUFFingerprints:
    """Compares a replayed answer's recorded file checksum and llama.cpp version with
    what is installed here."""

    def __init__(self, gguf_dirs: Sequence[Path], announce: Announce | None = None):
        self.gguf_dirs = tuple(gguf_dirs)
        self.announce = announce
        self._checked: set[str] = set()

    def warning(self, spec: ModelSpec, response: Response) -> str | None:
        if not spec.local or not response.cached or spec.resolved in self._checked:
            return None
        self._checked.add(spec.resolved)
        notes = [note for note in (self._file_note(spec, response), _build_note(response)) if note]
        return f"{spec.name}: " + "; ".join(notes) + f"; {RERECORD}" if notes else None

    def _file_note(self, spec: ModelSpec, response: Response) -> str | None:
        recorded = response.extra.get("gguf_sha256")
        if not recorded:
            return None
        try:
            options = BackendOptions(gguf_dirs=self.gguf_dirs, announce=self.announce)
            path = model_file(spec, options)
            actual = file_sha256(path)
        except (BackendError, OSError):
            return None
        if actual == recorded:
            return None
        return (
            f"{path} (sha256 {actual[:12]}) differs from the file the cached answers came "
            f"from ({str(recorded)[:12]})"
        )


def _build_note(response: Response) -> str | None:
    recorded = response.extra.get("llama_cpp_version")
    installed = installed_llama_cpp_version()
    if not recorded or not installed or recorded == installed:
        return None
    return (
        f"the cached answers were recorded with llama-cpp-python {recorded}, "
        f"{installed} is installed"
    )
