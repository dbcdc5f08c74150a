"""Secret values in the environment: kept off disk and out of every report.

A secret is the value (8 characters or more) of any variable whose name holds KEY,
TOKEN, SECRET, PASSWORD, PASS, CREDENTIAL, AUTH (not as part of AUTHOR) or COOKIE, and
the credentials inside any variable's URL value (``https://user:password@host``,
``?api-key=...``), such as ``OPENAI_BASE_URL``'s. Read :func:`secret_values` once, on
the main thread: iterating ``os.environ`` while pytest sets ``PYTEST_CURRENT_TEST`` on
another thread can fail.
"""

from __future__ import annotations

import os
import re
import urllib.parse
from collections.abc import Mapping
from typing import Any

SECRET_NAME_PARTS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "CREDENTIAL", "AUTH", "COOKIE")
#: Names that hold a part above without being secret: GIT_AUTHOR_NAME is no credential.
_NOT_SECRET = re.compile(r"AUTHOR(?!IZ)")
#: PASS as a word of the name (DB_PASS, PGPASS, PASSWD, PASSPHRASE), not inside another
#: word (PASSENGER_APP_ENV, COMPASS_HOME, BYPASS_CACHE).
_PASS_WORD = re.compile(r"(^|_)[A-Z]*PASS(WD|PHRASE)?($|_)")
#: Shorter values ("1", "true") would match everywhere and say nothing about secrets.
MIN_SECRET_LENGTH = 8


def is_secret_name(name: str) -> bool:
    upper = _NOT_SECRET.sub("", name.upper())
    return any(part in upper for part in SECRET_NAME_PARTS) or bool(_PASS_WORD.search(upper))


def secret_values(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    environ = os.environ if environ is None else environ
    found = {
        name: value
        for name, value in environ.items()
        if is_secret_name(name) and len(value) >= MIN_SECRET_LENGTH
    }
    for name, value in environ.items():
        if "://" in value and name not in found:
            found.update(url_secrets(value, name))
    return found


def url_secrets(url: str, name: str) -> dict[str, str]:
    """The credentials in ``url`` (its password, user name with a password, and query
    values), named after ``name``, in the forms they may be shown (as written, decoded)."""
    try:
        parts = urllib.parse.urlsplit(url.strip())
        user, password = parts.username, parts.password
        query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    except ValueError:
        return {}
    # A user name alone can be the credential (https://TOKEN@host), so it counts too.
    values = [("password", password or ""), ("user", user or "")]
    values += [(f"query {key}", value) for key, value in query]
    found: dict[str, str] = {}
    for label, value in values:
        # As written in the URL, and decoded (as a client sends it, or an error shows it).
        for suffix, form in (("", value), (" decoded", urllib.parse.unquote(value))):
            if len(form) >= MIN_SECRET_LENGTH and form not in found.values():
                found[f"{name} {label}{suffix}"] = form
    return found


def find_secret(text: str, secrets: Mapping[str, str]) -> str | None:
    """The name of a secret variable whose value appears in ``text``, if any.

    ``secrets`` is what :func:`secret_values` returned on the main thread; this may run
    on any thread, so it never reads the environment itself.
    """
    for name, value in secrets.items():
        if value in text:
            return name
    return None


def redact(text: str, secrets: Mapping[str, str]) -> str:
    """``text`` with the value of every secret variable replaced by its name.

    Reports and JUnit properties are files too: an answer that repeats a key must
    not carry it there. ``secrets``: as for :func:`find_secret`.
    """
    # Longest first: a secret that contains another must not be left half shown.
    for name, value in sorted(secrets.items(), key=lambda item: -len(item[1])):
        text = text.replace(value, f"[redacted ${name}]")
    return text


def redact_data(data: Any, secrets: Mapping[str, str]) -> Any:
    """``data`` (JSON-like: dicts, lists, strings, numbers) with every string redacted."""
    if not secrets:
        return data
    if isinstance(data, str):
        return redact(data, secrets)
    if isinstance(data, dict):
        return {redact_data(k, secrets): redact_data(v, secrets) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [redact_data(item, secrets) for item in data]
    return data


class Redactor:
    """Takes the secret values read when the run started out of any text or data.

    Made once, on the main thread (see :func:`secret_values`); used from any thread.
    """

    def __init__(self, secrets: Mapping[str, str] | None = None) -> None:
        self.secrets: Mapping[str, str] = secret_values() if secrets is None else secrets

    def __call__(self, text: str) -> str:
        return redact(text, self.secrets) if self.secrets else text

    def data(self, data: Any) -> Any:
        """JSON-like ``data`` with every string redacted."""
        return redact_data(data, self.secrets)
