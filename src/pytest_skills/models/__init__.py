"""Calling models, the data: specs as the user names them, requests and responses."""

from pytest_skills.models.outcomes import ErrorKind
from pytest_skills.models.requests import (
    CACHE_SCHEMA_VERSION,
    EFFORTS,
    REASONING_HELP,
    Reasoning,
    Request,
    Response,
    Sampling,
    Usage,
    cache_model,
    parse_reasoning,
    request_for,
)
from pytest_skills.models.specs import (
    ALIASES_CHECKED,
    DEFAULT_ALIASES,
    HFReference,
    ModelSpec,
    SpecError,
    parse_aliases,
    parse_hf_reference,
    parse_model_spec,
)

__all__ = [
    "ALIASES_CHECKED",
    "CACHE_SCHEMA_VERSION",
    "DEFAULT_ALIASES",
    "EFFORTS",
    "REASONING_HELP",
    "ErrorKind",
    "HFReference",
    "ModelSpec",
    "Reasoning",
    "Request",
    "Response",
    "Sampling",
    "SpecError",
    "Usage",
    "cache_model",
    "parse_aliases",
    "parse_hf_reference",
    "parse_model_spec",
    "parse_reasoning",
    "request_for",
]
