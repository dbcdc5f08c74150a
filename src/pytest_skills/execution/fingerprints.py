"""Warn when replayed local answers came from a different GGUF file than the one here."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pytest_skills.backends import BackendError
from pytest_skills.backends.gguf import file_sha256, locate_gguf
from pytest_skills.models import ModelSpec, Response


class GGUFFingerprints:
    """Compares a replayed answer's recorded file checksum with the local file's.

    Checked once per model, and only when the file can be found without effort:
    replay must keep working where the model is absent.
    """

    def __init__(self, gguf_dirs: Sequence[Path]):
        self.gguf_dirs = tuple(gguf_dirs)
        self._checked: set[str] = set()

    def warning(self, spec: ModelSpec, response: Response) -> str | None:
        recorded = response.extra.get("gguf_sha256")
        if spec.provider != "gguf" or not response.cached or not recorded:
            return None
        if spec.resolved in self._checked:
            return None
        self._checked.add(spec.resolved)
        try:
            path = locate_gguf(spec.model, self.gguf_dirs)
            actual = file_sha256(path)
        except (BackendError, OSError):
            return None
        if actual == recorded:
            return None
        return (
            f"{spec.name}: {path} (sha256 {actual[:12]}) differs from the file the cached "
            f"answers came from ({recorded[:12]}); re-record with --skill-cache=refresh if "
            "the model changed"
        )
