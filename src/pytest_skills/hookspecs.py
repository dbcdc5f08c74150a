"""Extension hooks. Implement them in a ``conftest.py`` or a plugin."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import pytest

    from pytest_skills.backends import Backend
    from pytest_skills.checks import CheckRegistry
    from pytest_skills.models import ModelSpec

hookspec = pluggy.HookspecMarker("pytest")


@hookspec(firstresult=True)
def pytest_skills_make_backend(spec: ModelSpec, config: pytest.Config) -> Backend | None:
    """Return a backend for ``spec``, or ``None`` to let the next plugin try.

    Called once per model and process, at run time, only when an answer is not in the
    cache. A backend has an ``exclusive`` attribute (True: one call at a time, in
    planned order, as for a model loaded in this process) and a
    ``complete(request) -> Response`` method; raise
    :class:`pytest_skills.backends.BackendError` (``retryable=True`` for rate limits
    and overload) instead of letting SDK errors escape. Example::

        from pytest_skills.backends import BackendError
        from pytest_skills.models import Response, Usage

        class ShoutBackend:
            exclusive = False

            def complete(self, request):
                return Response(text=request.prompt.upper(), usage=Usage(output_tokens=1))

        def pytest_skills_make_backend(spec, config):
            if spec.provider == "shout":
                return ShoutBackend()
            return None

    and then ``pytest --skill-model shout:anything``.

    Tools (the ``on-demand`` arm and trigger evals): a request may carry ``tools``
    (:class:`pytest_skills.models.Tool`: name, description, JSON Schema text) and
    ``turns``, the conversation after ``prompt`` (:class:`pytest_skills.models.Turn`:
    the model's text and ``tool_calls``, or a tool's result naming its ``call_id``).
    Send them in the provider's own format and return the model's calls in
    ``Response.tool_calls`` (:class:`pytest_skills.models.ToolCall`, arguments as the
    JSON text the model wrote); a reply without calls is the final answer. A backend
    that cannot call tools can ignore them: the model then answers without loading a
    skill, and the figures say so. A model without a tool format can follow
    :mod:`pytest_skills.backends.tool_text`'s line protocol.

    Batches (``--skill-batch``): a backend whose provider answers many requests as one
    job gives a ``batches`` attribute, a
    :class:`pytest_skills.backends.batches.BatchClient` (``submit`` pairs of custom id
    and request, then ``status``, ``results`` and ``cancel`` by batch id). Without one,
    its calls run live. Each result's ``Response`` should be what ``complete`` would
    have returned for the request.
    """


@hookspec
def pytest_skills_register_checks(registry: CheckRegistry) -> None:
    """Add check kinds usable under ``expect:``.

    ``registry.register(name, evaluate, validate=None, description="")``: ``validate``
    receives the value written in the file and returns it normalised, or raises
    ``ValueError`` (a collection error that names the file and line);
    ``evaluate(value, answer)`` returns a :class:`pytest_skills.checks.CheckResult`.
    Example::

        from pytest_skills.checks import CheckResult

        def _max_words(limit, answer):
            words = len(answer.split())
            return CheckResult("max_words", words <= limit, f"at most {limit} words",
                               f"{words} words")

        def pytest_skills_register_checks(registry):
            registry.register("max_words", _max_words, validate=int)

    and then ``expect: {max_words: 50}`` in a ``*.skill.yaml`` case.
    """
