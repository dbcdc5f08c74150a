"""Calling models, the data: specs as the user names them, requests and responses."""

from pytest_skills.models.requests import (
    CACHE_SCHEMA_VERSION,
    Request,
    Response,
    Sampling,
    Usage,
    cache_model,
    request_for,
)
from pytest_skills.models.specs import (
    DEFAULT_ALIASES,
    ModelSpec,
    SpecError,
    parse_aliases,
    parse_model_spec,
)

__all__ = [
    "CACHE_SCHEMA_VERSION",
    "DEFAULT_ALIASES",
    "ModelSpec",
    "Request",
    "Response",
    "Sampling",
    "SpecError",
    "Usage",
    "cache_model",
    "parse_aliases",
    "parse_model_spec",
    "request_for",
]
