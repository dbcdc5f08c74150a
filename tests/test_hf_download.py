"""Downloading ``hf:`` models: the real ``huggingface_hub``, pointed with ``HF_ENDPOINT``
at a loopback Hub (``tests/hf_hub.py``) that speaks the Hub's HTTP API, fetches the
bundled Gemma file into a Hugging Face cache in a temp dir, and the plugin runs it on
the real llama-cpp-python.

``huggingface_hub`` reads ``HF_ENDPOINT``, ``HF_HOME`` and ``HF_HUB_OFFLINE`` when it is
imported, so the plugin runs in a subprocess with them set. ``HF_HUB_DISABLE_XET`` is
not needed: the loopback repositories are LFS-backed (no ``X-Xet-*`` headers), so the
client downloads over plain HTTP as it does from such repositories on huggingface.co.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_skills.backends.gguf import DEMO_MODEL_NAME, file_sha256
from pytest_skills.backends.huggingface import download_command
from pytest_skills.models import parse_hf_reference
from tests.hf_hub import COMMIT, LoopbackHub
from tests.hf_layout import ROOT, gemma_model_file, hf_env, run_plugin, write_suite
from tests.test_huggingface import LOCATE

REPO = "google/gemma-3-270m-GGUF"
SPEC = f"hf:{REPO}:Q4_K_M"
#: Another quantization and a README: the download must take the Q4_K_M file alone.
OTHER_FILES = {"gemma-3-270m-Q8_0.gguf": b"GGUF not this one", "README.md": b"# Gemma 3 270M\n"}
COMMAND = f'hf download {REPO} --include "*Q4_K_M*.gguf"'

# Downloads go through the real huggingface_hub (the `local` extra).
pytestmark = pytest.mark.requires("huggingface_hub")


@pytest.fixture(scope="module")
def gemma_file() -> Path:
    return gemma_model_file()


def online_env(home: Path, hub: LoopbackHub) -> dict[str, str]:
    return hf_env(home, offline=False, HF_ENDPOINT=hub.url)


def seen(hub: LoopbackHub) -> list[tuple[str, str, str]]:
    return [(request.server, request.method, request.path) for request in hub.requests]


@pytest.mark.gguf
@pytest.mark.slow  # a download and a live run: the slow step of .ci/run
def test_a_model_downloaded_from_the_hub_runs_and_is_then_found_in_the_cache(
    tmp_path: Path, gemma_file: Path
) -> None:
    suite = tmp_path / "suite"
    write_suite(suite)
    report = tmp_path / "report.json"
    home = tmp_path / "hf"
    sha = file_sha256(gemma_file)
    run_args = ("--skill-model", SPEC, "--skill-cache=off", f"--skill-report={report}")

    with LoopbackHub({REPO: {DEMO_MODEL_NAME: gemma_file, **OTHER_FILES}}) as hub:
        live = run_plugin(suite, online_env(home, hub), *run_args, "--skill-hf-download")
        assert live.returncode == 0, live.stdout + live.stderr
        assert seen(hub) == [
            ("hub", "GET", "/api/agent-harnesses"),
            ("hub", "GET", f"/api/models/{REPO}/tree/main"),
            ("hub", "HEAD", f"/{REPO}/resolve/main/{DEMO_MODEL_NAME}"),
            ("cdn", "GET", f"/{sha}"),
        ]
        assert hub.requests[1].query["recursive"] == "true"

        # The layout `hf download` leaves: a blob named by the sha256, a snapshot link.
        repo_dir = home / "hub" / "models--google--gemma-3-270m-GGUF"
        snapshot = repo_dir / "snapshots" / COMMIT / DEMO_MODEL_NAME
        assert snapshot.is_symlink()
        assert snapshot.resolve() == (repo_dir / "blobs" / sha).resolve()
        assert file_sha256(snapshot.resolve()) == sha
        assert (repo_dir / "refs" / "main").read_text() == COMMIT
        assert sorted(p.name for p in (repo_dir / "snapshots" / COMMIT).iterdir()) == [
            DEMO_MODEL_NAME
        ]
        results = json.loads(report.read_text())["results"]
        assert len(results) == 2  # the case with and without the skill
        assert {r["reported_model"] for r in results} == {DEMO_MODEL_NAME}
        assert all(r["output"] and not r["cached"] and r["passed"] for r in results)

        # Downloads still allowed, the Hub still up: the cache answers before the Hub.
        before = len(hub.requests)
        again = run_plugin(suite, online_env(home, hub), *run_args, "--skill-hf-download")
        assert again.returncode == 0, again.stdout + again.stderr
        assert len(hub.requests) == before

    # No Hub at all, and huggingface_hub told so: the cached file runs.
    offline = run_plugin(suite, hf_env(home), *run_args)
    assert offline.returncode == 0, offline.stdout + offline.stderr
    assert all(r["output"] for r in json.loads(report.read_text())["results"])


def test_without_the_download_option_the_hub_is_never_asked(tmp_path: Path) -> None:
    suite = tmp_path / "suite"
    write_suite(suite)
    with LoopbackHub({REPO: {"gemma-3-270m-Q4_K_M.gguf": b"GGUF", **OTHER_FILES}}) as hub:
        done = run_plugin(suite, online_env(tmp_path / "hf", hub), "--skill-model", SPEC)
    assert hub.requests == []
    assert done.returncode == 1
    assert f"GGUF model {SPEC} is not on this machine" in done.stdout
    assert done.stdout.count(COMMAND) == 1  # once for the model, not once per item
    assert "Traceback" not in done.stdout + done.stderr


@pytest.mark.parametrize(
    ("spec", "failing", "reason"),
    [
        (
            "hf:nobody/missing-GGUF:Q4_K_M",
            None,
            "RepositoryNotFoundError: 401 Client Error. Repository Not Found for url: ",
        ),
        (
            f"hf:{REPO}/gemma-3-270m-Q2_K.gguf",
            None,
            "RemoteEntryNotFoundError: 404 Client Error. Entry Not Found for url: ",
        ),
        (SPEC, "cdn", "HfHubHTTPError: Server error '500 Internal Server Error' for url "),
    ],
    ids=["no-repository", "no-file", "cdn-500"],
)
def test_a_hub_error_is_one_line_with_the_command_to_run_by_hand(
    tmp_path: Path, spec: str, failing: str | None, reason: str
) -> None:
    suite = tmp_path / "suite"
    write_suite(suite)
    home = tmp_path / "hf"
    with LoopbackHub({REPO: {"gemma-3-270m-Q4_K_M.gguf": b"GGUF", **OTHER_FILES}}) as hub:
        if failing:
            hub.fail(failing, 500)
        done = run_plugin(
            suite, online_env(home, hub), "--skill-model", spec, "--skill-hf-download"
        )
        assert hub.requests, "the Hub was never asked"
    assert done.returncode == 1
    output = done.stdout + done.stderr
    assert "Traceback" not in output
    # The item's one line says what failed; the summary says it once, with the command.
    failure = next(line for line in done.stdout.splitlines() if f"downloading {spec} fail" in line)
    assert reason in failure
    command = download_command(parse_hf_reference(spec.removeprefix("hf:")))
    assert done.stdout.count(f"To fetch it by hand: {command}\n") == 1
    # A failed download leaves no partial blob behind.
    assert not list(home.glob("hub/*/blobs/*"))


def test_every_part_of_a_split_model_is_downloaded(tmp_path: Path) -> None:
    parts = {f"Q8_0/M-Q8_0-0000{i}-of-00002.gguf": b"GGUF part %d" % i for i in (1, 2)}
    script = LOCATE.replace("download=False", "download=True")
    with LoopbackHub({"o/M-GGUF": {**parts, "M-Q4_K_M.gguf": b"GGUF"}}) as hub:
        done = subprocess.run(
            [sys.executable, "-c", script, str(tmp_path), "o/M-GGUF:Q8_0"],
            env=online_env(tmp_path / "hf", hub) | {"PYTHONPATH": str(ROOT / "src")},
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
    found = Path(json.loads(done.stdout)["o/M-GGUF:Q8_0"])
    assert found.name == "M-Q8_0-00001-of-00002.gguf"  # llama.cpp loads the rest beside it
    for name, data in parts.items():
        assert (found.parent.parent / name).read_bytes() == data
    assert sorted(r.path for r in hub.requests if r.method == "HEAD") == [
        f"/o/M-GGUF/resolve/main/{name}" for name in sorted(parts)
    ]
