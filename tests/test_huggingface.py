"""``hf:`` models: the spec grammar, choosing a file, and the real Hugging Face cache
layout (built in a temp dir around the bundled Gemma file) read through
``huggingface_hub`` and loaded by the real llama-cpp-python.

``huggingface_hub`` reads ``HF_HOME``/``HF_HUB_CACHE``/``HF_HUB_OFFLINE`` when it is
imported, as it does for users, so the tests that use the cache run in a subprocess
with those variables set.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pytest_skills.backends import BackendError
from pytest_skills.backends.gguf import DEMO_MODEL_NAME
from pytest_skills.backends.huggingface import (
    choose_file,
    conventional_name,
    download_command,
)
from pytest_skills.models import (
    HFReference,
    SpecError,
    parse_hf_reference,
    parse_model_spec,
    request_for,
)
from tests.hf_layout import (
    REVISION,
    ROOT,
    gemma_model_file,
    hf_cache,
    hf_env,
    run_plugin,
    write_suite,
)

# -- grammar and choice (no cache) ------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("unsloth/GLM-4.7-Flash-GGUF:Q4_0", HFReference("unsloth/GLM-4.7-Flash-GGUF", "Q4_0")),
        ("google/gemma-3-270m-GGUF", HFReference("google/gemma-3-270m-GGUF")),
        (
            "owner/repo/Q4_K_M/model-00001-of-00002.gguf",
            HFReference("owner/repo", filename="Q4_K_M/model-00001-of-00002.gguf"),
        ),
    ],
)
def test_hf_references_parse(text: str, expected: HFReference) -> None:
    assert parse_hf_reference(text) == expected
    assert expected.text == text


@pytest.mark.parametrize(
    "spec", ["hf:justarepo", "hf:owner/repo/notes.txt", "hf:owner/repo/../x.gguf", "hf:a/b:Q4 0"]
)
def test_bad_hf_specs_say_how_to_write_one(spec: str) -> None:
    with pytest.raises(SpecError, match=r"hf:OWNER/REPO:QUANT|not valid"):
        parse_model_spec(spec)


def test_glm_alias_is_the_hf_reference_and_keys_name_repository_and_quant() -> None:
    spec = parse_model_spec("glm-4.7-flash")
    assert spec.resolved == "hf:unsloth/GLM-4.7-Flash-GGUF:Q4_0"
    assert spec.local
    request = request_for(spec, prompt="q")
    # No path: a replay on a machine without the file computes the same key.
    assert request.key_fields()["model"] == "unsloth/GLM-4.7-Flash-GGUF:Q4_0"
    assert request.prompt_format == "auto"
    assert conventional_name(spec.hf) == "GLM-4.7-Flash-Q4_0.gguf"  # type: ignore[arg-type]


def test_choosing_the_quantization() -> None:
    files = [
        "README.md",
        "GLM-4.7-Flash-Q4_K.gguf",
        "GLM-4.7-Flash-Q4_K_M.gguf",
        "mmproj-GLM-Q4_K_M.gguf",
        "Q8_0/GLM-4.7-Flash-Q8_0-00001-of-00002.gguf",
        "Q8_0/GLM-4.7-Flash-Q8_0-00002-of-00002.gguf",
    ]
    repo = "unsloth/GLM-4.7-Flash-GGUF"
    assert choose_file(HFReference(repo, "Q4_K"), files) == "GLM-4.7-Flash-Q4_K.gguf"
    assert choose_file(HFReference(repo, "q4_k_m"), files) == "GLM-4.7-Flash-Q4_K_M.gguf"
    assert choose_file(HFReference(repo, "Q8_0"), files) == files[4]  # the first shard
    assert choose_file(HFReference(repo), files) == "GLM-4.7-Flash-Q4_K_M.gguf"  # default
    assert choose_file(HFReference(repo, "Q2_K"), files) is None
    with pytest.raises(BackendError, match="several files"):
        choose_file(HFReference(repo, "Q4_K_M"), [*files, "GLM-4.7-Flash-UD-Q4_K_M.gguf"])


def test_download_commands() -> None:
    assert (
        download_command(HFReference("unsloth/GLM-4.7-Flash-GGUF", "Q4_0"))
        == 'hf download unsloth/GLM-4.7-Flash-GGUF --include "*Q4_0*.gguf"'
    )
    assert (
        download_command(HFReference("o/r", filename="sub/m.gguf")) == "hf download o/r sub/m.gguf"
    )


# -- the real cache layout, read through huggingface_hub ----------------------------------

LOCATE = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from pytest_skills.backends import BackendError
    from pytest_skills.backends.huggingface import locate_hf_gguf
    from pytest_skills.models import parse_hf_reference

    found = {}
    for text in sys.argv[2:]:
        try:
            path = locate_hf_gguf(parse_hf_reference(text), [Path(sys.argv[1])], download=False)
            found[text] = str(path)
        except BackendError as error:
            found[text] = "ERROR " + error.message
    print(json.dumps(found))
    """
)


def locate(home: Path, gguf_dir: Path, *texts: str, **env: str) -> dict[str, str]:
    done = subprocess.run(
        [sys.executable, "-c", LOCATE, str(gguf_dir), *texts],
        env=hf_env(home, PYTHONPATH=str(ROOT / "src"), **env),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return json.loads(done.stdout)


@pytest.mark.requires("huggingface_hub")
def test_models_are_found_in_the_hugging_face_cache(tmp_path: Path) -> None:
    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF not really")
    repo = hf_cache(
        tmp_path / "hf",
        "bartowski/Tiny-GGUF",
        {"Tiny-Q4_K_M.gguf": model, "Q8_0/Tiny-Q8_0.gguf": model},
    )
    snapshot = repo / "snapshots" / REVISION
    gguf_dir = tmp_path / "gguf"
    gguf_dir.mkdir()
    (gguf_dir / "Tiny-Q5_0.gguf").write_bytes(b"GGUF here")

    found = locate(
        tmp_path / "hf",
        gguf_dir,
        "bartowski/Tiny-GGUF:q4_k_m",
        "bartowski/Tiny-GGUF/Q8_0/Tiny-Q8_0.gguf",
        "bartowski/Tiny-GGUF:Q5_0",
        "bartowski/Tiny-GGUF:Q2_K",
    )
    assert found["bartowski/Tiny-GGUF:q4_k_m"] == str(snapshot / "Tiny-Q4_K_M.gguf")
    assert found["bartowski/Tiny-GGUF/Q8_0/Tiny-Q8_0.gguf"] == str(snapshot / "Q8_0/Tiny-Q8_0.gguf")
    # The GGUF directories come first, under the name such repositories use.
    assert found["bartowski/Tiny-GGUF:Q5_0"] == str((gguf_dir / "Tiny-Q5_0.gguf").resolve())
    missing = found["bartowski/Tiny-GGUF:Q2_K"]
    assert missing.startswith("ERROR GGUF model hf:bartowski/Tiny-GGUF:Q2_K is not on this machine")
    assert f"the Hugging Face cache, {tmp_path / 'hf' / 'hub'}" in missing
    assert '    hf download bartowski/Tiny-GGUF --include "*Q2_K*.gguf"' in missing.splitlines()


@pytest.mark.requires("huggingface_hub")
def test_hf_hub_cache_wins_over_hf_home_as_in_huggingface_hub(tmp_path: Path) -> None:
    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF")
    hf_cache(tmp_path / "elsewhere", "o/r-GGUF", {"r-Q4_0.gguf": model})
    found = locate(
        tmp_path / "empty-home",
        tmp_path,
        "o/r-GGUF:Q4_0",
        HF_HUB_CACHE=str(tmp_path / "elsewhere" / "hub"),
    )
    assert found["o/r-GGUF:Q4_0"].endswith("/snapshots/" + REVISION + "/r-Q4_0.gguf")


@pytest.mark.requires("huggingface_hub")
def test_downloading_offline_says_why_and_what_to_run(tmp_path: Path) -> None:
    script = LOCATE.replace("download=False", "download=True")
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path), "unsloth/GLM-4.7-Flash-GGUF:Q4_0"],
        env=hf_env(tmp_path, PYTHONPATH=str(ROOT / "src")),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    message = json.loads(done.stdout)["unsloth/GLM-4.7-Flash-GGUF:Q4_0"]
    assert "HF_HUB_OFFLINE forbids downloading it" in message
    assert 'hf download unsloth/GLM-4.7-Flash-GGUF --include "*Q4_0*.gguf"' in message


# -- the real model, through the plugin ---------------------------------------------------


@pytest.fixture(scope="module")
def gemma_file() -> Path:
    return gemma_model_file()


@pytest.mark.gguf
def test_an_hf_model_in_the_cache_runs_on_llama_cpp_and_replays_without_it(
    tmp_path: Path, gemma_file: Path
) -> None:
    hf_cache(tmp_path / "hf", "google/gemma-3-270m-GGUF", {DEMO_MODEL_NAME: gemma_file})
    suite = tmp_path / "suite"
    write_suite(suite)
    report = tmp_path / "report.json"
    spec = "hf:google/gemma-3-270m-GGUF:Q4_K_M"

    live = run_plugin(
        suite, hf_env(tmp_path / "hf"), "--skill-model", spec, f"--skill-report={report}"
    )
    assert live.returncode == 0, live.stdout + live.stderr
    results = json.loads(report.read_text())["results"]
    assert {r["reported_model"] for r in results} == {DEMO_MODEL_NAME}
    assert all(r["output"] and not r["cached"] for r in results)

    # Another machine: no model file, no Hugging Face cache; CI replays the answers.
    replay = run_plugin(
        suite,
        {**hf_env(tmp_path / "nothing-here"), "CI": "true"},
        "--skill-model",
        spec,
        "--skill-cache=replay",
        f"--skill-report={report}",
    )
    assert replay.returncode == 0, replay.stdout + replay.stderr
    replayed = json.loads(report.read_text())["results"]
    assert [r["output"] for r in replayed] == [r["output"] for r in results]
    assert all(r["cached"] for r in replayed)


@pytest.mark.requires("huggingface_hub")
def test_a_missing_hf_model_fails_its_items_with_the_download_command(tmp_path: Path) -> None:
    suite = tmp_path / "suite"
    write_suite(suite)
    done = run_plugin(suite, hf_env(tmp_path / "hf"), "--skill-model", "glm-4.7-flash")
    assert done.returncode == 1
    assert "glm-4.7-flash (hf:unsloth/GLM-4.7-Flash-GGUF:Q4_0)" in done.stdout
    assert 'hf download unsloth/GLM-4.7-Flash-GGUF --include "*Q4_0*.gguf"' in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
