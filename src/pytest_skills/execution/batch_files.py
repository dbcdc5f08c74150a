"""Batch files for servers without a batch API: vLLM's ``run-batch`` reads OpenAI's format.

``--skill-batch-export DIR`` writes the calls the cache cannot answer, one JSONL file per
``openai:`` model (the body of each line is what the live call would send), and lists
each file in the cache directory's ledger as a batch of its own (``via: file``). vLLM
answers it offline on a GPU::

    python -m vllm.entrypoints.openai.run_batch -i DIR/qwen3.jsonl -o qwen3.out.jsonl \\
        --model Qwen/Qwen3-8B

and ``--skill-batch-import qwen3.out.jsonl`` records the answers in the cache under the
keys the export listed, so the next run replays them.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path

from pytest_skills.backends.batches import ItemState
from pytest_skills.errors import SkillsError
from pytest_skills.execution.batch_ledger import BatchRecord, Ledger, Pending, now
from pytest_skills.execution.cache import CacheError, ResponseCache, fingerprint
from pytest_skills.execution.runner import Call

#: The largest output file read: as large as a provider's batch results may be.
MAX_OUTPUT_BYTES = 256 * 2**20


class BatchFileError(SkillsError):
    """A batch file that cannot be written or read; the message names it."""


def export(calls: Iterable[Call], directory: Path, ledger: Ledger) -> list[str]:
    """Write one batch file per ``openai:`` model of ``calls``; the lines to print."""
    from pytest_skills.backends.openai_batches import batch_lines
    from pytest_skills.backends.openai_wire import chat_body

    by_model: dict[str, list[Call]] = {}
    left_out: dict[str, int] = {}
    for call in {c.request.key: c for c in calls}.values():
        if call.spec.provider == "openai" and not call.request.tools:
            by_model.setdefault(call.spec.name, []).append(call)
        else:
            left_out[call.spec.name] = left_out.get(call.spec.name, 0) + 1
    lines = []
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise BatchFileError(f"cannot write batch files to {directory}: {error}") from None
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    for name, group in by_model.items():
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", name.split("@", 1)[0]).strip("-.") or "model"
        path = directory / f"{slug}.jsonl"
        text = batch_lines((c.request.key, chat_body(c.spec, c.request)) for c in group)
        try:
            path.write_text(text, encoding="utf-8")
        except OSError as error:
            raise BatchFileError(f"cannot write {path}: {error}") from None
        record = BatchRecord(
            batch_id=f"file-{slug}-{stamp}",
            model=group[0].spec.resolved,
            name=name,
            submitted_at=now(),
            requests={
                c.request.key: Pending(c.label, c.arm, fingerprint(c.request)) for c in group
            },
            via="file",
        )
        ledger.add(record)
        lines.append(f"wrote {len(group)} calls of {name} to {path} (batch {record.batch_id})")
    for name, count in left_out.items():
        lines.append(
            f"{count} calls of {name} left out: batch files are for openai: models, and "
            "the on-demand arm's turns need the answer before"
        )
    if not by_model and not left_out:
        lines.append("nothing to write: the cache answers every call of this run")
    return lines


def import_output(path: Path, ledger: Ledger, cache: ResponseCache) -> list[str]:
    """Record the answers of a batch output file for the requests an export listed."""
    from pytest_skills.backends.openai_batches import read_batch_output

    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_OUTPUT_BYTES + 1)
    except OSError as error:
        raise BatchFileError(f"cannot read {path}: {error.strerror or error}") from None
    if len(raw) > MAX_OUTPUT_BYTES:
        raise BatchFileError(f"{path} is larger than {MAX_OUTPUT_BYTES // 2**20} MB")
    text = raw.decode("utf-8", errors="replace")
    records, problems = ledger.records()
    files = [record for record in records if record.via == "file"]
    if not files:
        raise BatchFileError(
            f"no exported batch is listed in {ledger.directory}: write one with "
            "--skill-batch-export DIR first (with the same --skill-cache-dir)"
        )
    owner = {key: record for record in files for key in record.requests}
    recorded: dict[str, set[str]] = {}
    unknown = failed = broken = 0
    first_failure = first_broken = ""
    for item in read_batch_output(text, path.name):
        if not item.custom_id:  # a line that names no request
            broken += 1
            first_broken = first_broken or (item.error or "unreadable")
            continue
        record = owner.get(item.custom_id)
        if record is None:
            unknown += 1
            continue
        if item.state is not ItemState.SUCCEEDED or item.response is None:
            failed += 1
            first_failure = first_failure or (item.error or item.state.value)
            continue
        pending = record.requests[item.custom_id]
        response = dataclasses.replace(
            item.response, extra={**item.response.extra, "batch": record.batch_id}
        )
        try:
            cache.put_entry(item.custom_id, pending.fields, response, pending.label, pending.arm)
        except CacheError as error:
            raise BatchFileError(f"{path}: an answer was not recorded: {error}") from None
        recorded.setdefault(record.batch_id, set()).add(item.custom_id)
    lines = [*problems]
    for record in files:
        done = recorded.get(record.batch_id, set())
        if not done:
            continue
        _shrink(ledger, record, done)
        rest = len(record.requests) - len(done)
        lines.append(
            f"recorded {len(done)} answers of {record.name} from {path}"
            + (f"; {rest} of batch {record.batch_id} still to come" if rest else "")
        )
    if failed:
        lines.append(f"{failed} request(s) did not succeed (first: {first_failure})")
    if broken:
        lines.append(f"{broken} result line(s) could not be read (first: {first_broken})")
    if unknown:
        lines.append(f"{unknown} result(s) answer no exported request: left out")
    if not recorded:
        lines.append(f"no answer in {path} is for an exported request: nothing recorded")
    return lines


def _shrink(ledger: Ledger, record: BatchRecord, done: set[str]) -> None:
    """Take the answered requests out of ``record``; it leaves the ledger when empty."""
    rest = {key: p for key, p in record.requests.items() if key not in done}
    if rest:
        ledger.add(dataclasses.replace(record, requests=rest))
    else:
        ledger.remove(record)
