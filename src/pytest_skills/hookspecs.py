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
