"""Which backend serves a model: the built-in providers, or a plugin's hook."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from pytest_skills.backends.base import Backend, BackendError
from pytest_skills.backends.builtin import PROVIDERS
from pytest_skills.models import ModelSpec
from pytest_skills.models.specs import did_you_mean

#: Asks the plugins (the ``pytest_skills_make_backend`` hook) for a backend.
MakeBackend = Callable[[ModelSpec], "Backend | None"]


class UnknownProviderError(BackendError):
    """A model names a provider that no built-in backend and no plugin serves."""


class BackendProvider:
    """Builds each model's backend when a call first needs it.

    Built-in providers are only checked by name at start-up (a replay needs neither a
    key nor an SDK); a plugin's provider is asked for its backend at once, and that
    backend is kept for the run.
    """

    def __init__(self, make: MakeBackend) -> None:
        self._make = make
        self._prebuilt: dict[str, Backend] = {}

    def check(self, specs: Iterable[ModelSpec]) -> None:
        """Raise :class:`UnknownProviderError` for a model nothing serves."""
        for spec in specs:
            if spec.provider in PROVIDERS or spec.resolved in self._prebuilt:
                continue
            backend = self._make(spec)
            if backend is None:
                raise UnknownProviderError(
                    f"no backend for provider {spec.provider!r} in {spec.name!r}"
                    f"{did_you_mean(spec.provider, PROVIDERS)}: use {_known()}, or add a "
                    "backend with the pytest_skills_make_backend hook"
                )
            self._prebuilt[spec.resolved] = backend

    def __call__(self, spec: ModelSpec) -> Backend:
        prebuilt = self._prebuilt.pop(spec.resolved, None)
        if prebuilt is not None:
            return prebuilt
        backend = self._make(spec)
        if backend is None:
            raise BackendError(
                f"no backend for provider {spec.provider!r} (model {spec.name!r}): use "
                f"{_known()} or add one with the pytest_skills_make_backend hook"
            )
        return backend


def _known() -> str:
    return ", ".join(provider + ":" for provider in PROVIDERS)
