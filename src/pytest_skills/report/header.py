"""The lines pytest prints under its own header: what this run will do."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_skills.arms import DEFAULT_ARMS, ArmKind
from pytest_skills.models import ALIASES_CHECKED, DEFAULT_ALIASES

if TYPE_CHECKING:
    from pytest_skills.settings import Settings


def header_lines(s: Settings) -> list[str]:
    """Models (as typed and resolved), reasoning, cache mode and why, concurrency, trials."""
    models = (
        ", ".join(f"{m.name} ({m.resolved})" if m.name != m.resolved else m.name for m in s.models)
        or "none (skill items skip)"
    )
    if any(DEFAULT_ALIASES.get(m.name) == m.resolved for m in s.models):
        models += f"; built-in aliases checked {ALIASES_CHECKED}"
    lines = [f"skills: models: {models}"]
    if s.arms != DEFAULT_ARMS:
        lines.append(f"skills: arms: {', '.join(arm.name for arm in s.arms)}")
    if s.reasoning:
        lines.append(f"skills: reasoning {s.reasoning.text}")
    # What each model is sent beyond the plain request, known before any call.
    if s.models:
        from pytest_skills.backends.builtin import describe_parameters
    on_demand = any(arm.kind is ArmKind.ON_DEMAND for arm in s.arms)
    for m in s.models:
        described = describe_parameters(m, s.reasoning)
        if described:
            lines.append(f"skills: {m.name}: {described}")
        if on_demand and m.local:
            lines.append(
                f"skills: {m.name}: the on-demand arm's tools go through a line protocol in "
                "the prompt (llama.cpp has no tool-call format for every GGUF chat template)"
            )
    if s.models:
        # Where upskill's command verifiers would run (checked by running bubblewrap).
        from pytest_skills.checks.sandbox import describe as describe_sandbox

        lines.append(f"skills: {describe_sandbox(s.sandbox_policy)}")
    if s.batch and s.models:
        lines.append(f"skills: {batch_line(s)}")
    lines.append(
        f"skills: cache {s.cache_mode} ({s.cache_mode_reason}) at {s.cache_dir}; "
        f"concurrency {s.concurrency}, trials {s.trials}" + ("" if s.baseline else ", no baseline")
    )
    return lines


def batch_line(s: Settings) -> str:
    """Which models' calls go to a batch API (``--skill-batch``) and which run live."""
    from pytest_skills.backends.batches import batch_api
    from pytest_skills.backends.builtin import PROVIDERS

    batched, live = [], []
    for m in s.models:
        api = batch_api(m)
        if api is not None:
            batched.append(f"{m.name} ({api})")
        elif m.provider in PROVIDERS:
            why = "a compatible server's" if m.base_url else "local"
            live.append(f"{m.name} ({why}: no batch API)")
        else:
            live.append(f"{m.name} (batched if its backend has a batch API)")
    wait = ", waiting for them to end" if s.batch_wait else ""
    parts = [f"batches: {', '.join(batched)}{wait}" if batched else "batches: none"]
    if live:
        parts.append(f"live: {', '.join(live)}")
    return "; ".join(parts)
