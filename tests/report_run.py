"""One run that every report test reads: two models, two trials, a judge, a hostile answer.

``anthropic:claude-haiku-4-5`` follows skills (the loopback's echo names the skill it
was given); ``openai:gpt-4.1-mini`` ignores them, so the skill helps one model and not
the other. The judge (``openai:judge-1``) passes an answer that names a skill.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import HAIKU, write_skill
from tests.loopback import Call, LoopbackServer, echo

GPT = "openai:gpt-4.1-mini"
JUDGE = "openai:judge-1"
MODELS = (HAIKU, GPT)
HOSTILE = (
    '<script>window.__pwned = 1</script></textarea></pre><img src=x onerror="window.__pwned = 2">'
)
HOSTILE_FILE = "</textarea><script>window.__pwned = 3</script>"
JUDGE_REASONING = "The answer names the skill it was given."

DEMO_CASES = f"""
    cases:
      - {{id: fixed, input: first question, expect: {{contains: "skill: demo"}}}}
      - {{id: plain, input: second question, expect: {{contains: echo}}}}
      - id: judged
        input: third question
        expect:
          judge: The answer names the skill it was given
      - id: hostile
        input: a hostile question
        context:
          files:
            evil.html: '{HOSTILE_FILE}'
        expect: {{contains: never said}}
"""
OTHER_CASES = """
    cases:
      - {id: other-fixed, input: fourth question, expect: {contains: "skill: other"}}
"""
#: Outcomes by (case, model), as the report must show them.
OUTCOMES = {
    ("fixed", HAIKU): "helped",
    ("fixed", GPT): "both-fail",
    ("plain", HAIKU): "both-pass",
    ("plain", GPT): "both-pass",
    ("judged", HAIKU): "helped",
    ("judged", GPT): "both-fail",
    ("hostile", HAIKU): "both-fail",
    ("hostile", GPT): "both-fail",
    ("other-fixed", HAIKU): "helped",
    ("other-fixed", GPT): "both-fail",
}


def respond(call: Call) -> str:
    if call.system and call.system.startswith("You grade"):
        answer = call.prompt.partition("## Answer to grade")[2]
        if "skill:" in answer:
            return f"{JUDGE_REASONING}\nVERDICT: PASS"
        return "The answer does not name a skill.\nVERDICT: FAIL"
    if "hostile" in call.prompt:
        return HOSTILE
    if call.api == "openai":
        return f"echo: {call.prompt}"
    return echo(call)


def write_project(root: Path) -> None:
    write_skill(root, "demo", DEMO_CASES)
    write_skill(root, "other", OTHER_CASES)


def options(*extra: str) -> list[str]:
    return [
        "-p",
        "no:cacheprovider",
        "--skill-model",
        HAIKU,
        "--skill-model",
        GPT,
        "--skill-judge-model",
        JUDGE,
        "--skill-trials",
        "2",
        *extra,
    ]


def run_project(root: Path, source_date_epoch: str) -> Path:
    """Run the project in its own pytest process; it writes ``report.html``,
    ``report.json`` and the workspace ``workspace/`` under ``root``."""
    write_project(root)
    with LoopbackServer(responder=respond) as server:
        env = {
            **os.environ,
            "ANTHROPIC_API_KEY": "test-key-0000",
            "ANTHROPIC_BASE_URL": server.url,
            "OPENAI_API_KEY": "test-key-1111",
            "OPENAI_BASE_URL": server.openai_url,
            "CI": "",
            "SOURCE_DATE_EPOCH": source_date_epoch,
            "PYTEST_ADDOPTS": "",
        }
        env.pop("GITHUB_STEP_SUMMARY", None)
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                *options("--skill-cache=off"),
                "--skill-html=report.html",
                "--skill-report=report.json",
                "--skill-workspace=workspace",
            ],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
    # Haiku passes 4 of 5 cases with the skill, the GPT model 1: five failures.
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-2000:]
    assert "5 failed, 5 passed" in result.stdout, result.stdout[-3000:]
    return root
