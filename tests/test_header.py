"""The lines under pytest's header (report/header.py): what the run will do, said before
it does it."""

from __future__ import annotations

from pytest_skills.arms import BASELINE, ON_DEMAND, SKILL
from pytest_skills.models.specs import parse_model_spec
from pytest_skills.report.header import header_lines
from pytest_skills.settings import Settings


def specs(*texts: str) -> tuple:
    return tuple(parse_model_spec(text) for text in texts)


def test_batch_mode_names_the_batched_models_and_those_that_run_live() -> None:
    settings = Settings(
        models=specs(
            "anthropic:claude-haiku-4-5",
            "openai:gpt-4.1-mini",
            "openai:qwen3@http://127.0.0.1:8000/v1",
            "gguf:/models/gemma.gguf",
        ),
        batch=True,
    )
    lines = [line for line in header_lines(settings) if "batches:" in line]
    assert lines == [
        "skills: batches: anthropic:claude-haiku-4-5 (Anthropic Message Batches), "
        "openai:gpt-4.1-mini (OpenAI Batch API); live: "
        "openai:qwen3@http://127.0.0.1:8000/v1 (a compatible server's: no batch API), "
        "gguf:/models/gemma.gguf (local: no batch API)"
    ]
    assert not any("batches:" in line for line in header_lines(Settings(models=settings.models)))


def test_a_local_model_in_the_on_demand_arm_says_its_tools_go_through_the_prompt() -> None:
    models = specs("gguf:/models/gemma.gguf", "anthropic:claude-haiku-4-5")
    on_demand = header_lines(Settings(models=models, arms=(SKILL, BASELINE, ON_DEMAND)))
    protocol = [line for line in on_demand if "line protocol" in line]
    assert len(protocol) == 1 and protocol[0].startswith("skills: gguf:/models/gemma.gguf:")
    assert not any("line protocol" in line for line in header_lines(Settings(models=models)))
