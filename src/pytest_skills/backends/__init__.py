"""Calling models: one module per backend, each importing its SDK only when it is built.

Replaying a cache therefore needs neither an SDK's key nor, for local models,
llama-cpp-python. Third-party backends implement :class:`Backend` and raise
:class:`BackendError`.
"""

from pytest_skills.backends.base import (
    Backend,
    BackendError,
    BackendOptions,
    MissingCredentialsError,
)

__all__ = ["Backend", "BackendError", "BackendOptions", "MissingCredentialsError"]
