"""Requests for calls made outside a planned :class:`~pytest_skills.nodes.SkillItem`:
the ``skill_model`` fixture's questions and the judge's gradings.

They are built exactly as planned requests are, so they share the cache's key rules
(a local model is named by its file name, never its path).
"""

from __future__ import annotations

from pathlib import Path

from pytest_skills.models import ModelSpec, Request, Sampling


def request_for(
    spec: ModelSpec,
    *,
    prompt: str,
    system: str | None = None,
    sampling: Sampling | None = None,
    trial: int = 0,
) -> Request:
    is_local = spec.provider == "gguf"
    return Request(
        provider=spec.provider,
        model=Path(spec.model).name if is_local else spec.model,
        base_url=spec.base_url,
        system=system,
        prompt=prompt,
        sampling=sampling or Sampling(),
        trial=trial,
        prompt_format="auto" if is_local else None,
    )


def with_files(text: str, files: tuple[tuple[str, str], ...]) -> str:
    """The user message: the text, then every file as a fenced block named by its file
    (the layout of a case's context files)."""
    parts = [text.rstrip()]
    for name, content in files:
        parts.append(f"File `{name}`:\n```\n{content.rstrip()}\n```")
    return "\n\n".join(parts)
