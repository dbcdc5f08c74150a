"""Every :class:`Request`, built one way: a planned :class:`~pytest_skills.nodes.SkillItem`'s
calls, the ``skill_model`` fixture's questions and the judge's gradings, so all share the
cache's key rules (a local model is named by its file name, never its path).
"""

from __future__ import annotations

from pathlib import Path

from pytest_skills.models import ModelSpec, Request, Sampling


def cache_model(spec: ModelSpec) -> str:
    """The model as a cache key names it: a local model by its file name, never its path."""
    return Path(spec.model).name if spec.provider == "gguf" else spec.model


def request_for(
    spec: ModelSpec,
    *,
    prompt: str,
    system: str | None = None,
    sampling: Sampling | None = None,
    trial: int = 0,
) -> Request:
    return Request(
        provider=spec.provider,
        model=cache_model(spec),
        base_url=spec.base_url,
        system=system,
        prompt=prompt,
        sampling=sampling or Sampling(),
        trial=trial,
        prompt_format="auto" if spec.provider == "gguf" else None,
    )


def with_files(text: str, files: tuple[tuple[str, str], ...]) -> str:
    """The user message: the text, then every file as a fenced block named by its file
    (the layout of a case's context files)."""
    parts = [text.rstrip()]
    for name, content in files:
        parts.append(f"File `{name}`:\n```\n{content.rstrip()}\n```")
    return "\n\n".join(parts)
