"""``--skill-batch``: the calls the cache cannot answer, sent as one provider batch per model.

Before the items run, a :class:`BatchPhase` takes the run's planned calls that no cache
entry answers and, under the ledger's lock:

1. looks at every batch the ledger lists for this run's models: an ended one has its
   answers recorded in the cache (they then replay like any other) and leaves the
   ledger; its errored, expired and canceled requests are said once, in this run, and
   are sent again by the next (live, or in a new batch);
2. sends what no batch holds yet as a new batch per model that has a batch API, and
   lists it in the ledger;
3. with ``wait``, looks again every ``poll`` seconds until this run's batches end, and
   collects them.

What it returns settles the calls still out: each item that needs one is skipped with
the reason, which names the batch. Models without a batch API (a local model, a generic
OpenAI-compatible server) and the turns of an agent loop (the on-demand arm) run live.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Sequence

from pytest_skills.backends.base import BackendError
from pytest_skills.backends.batches import BatchClient, BatchItem, BatchStatus, ItemState
from pytest_skills.execution.batch_ledger import BatchRecord, Ledger, Pending, now
from pytest_skills.execution.cache import CacheError, ResponseCache, fingerprint
from pytest_skills.execution.runner import Call, Outcome
from pytest_skills.models import ErrorKind, ModelSpec

#: The batch API of a model's backend, or None when it has none (the calls run live).
ClientFor = Callable[[ModelSpec], "BatchClient | None"]


#: Calls whose answers are not here yet, each with the outcome that says why.
Held = list[tuple[Call, Outcome]]


class BatchPhase:
    def __init__(
        self,
        *,
        cache: ResponseCache,
        ledger: Ledger,
        client_for: ClientFor,
        still_missing: Callable[[Sequence[Call]], Sequence[Call]],
        announce: Callable[[str], None],
        wait: bool = False,
        poll: float = 30.0,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        self.cache = cache
        self.ledger = ledger
        self.client_for = client_for
        self.still_missing = still_missing
        self.announce = announce
        self.wait = wait
        self.poll = poll
        self.sleep = sleep
        #: Batches collected by this run (they have left the ledger).
        self._ended: set[str] = set()

    def run(self, calls: Sequence[Call]) -> Held:
        held: Held = []
        batchable = [call for call in _unique(calls) if not call.request.tools]
        clients = {}
        for call in batchable:
            if call.spec.resolved not in clients:
                clients[call.spec.resolved] = self.client_for(call.spec)
        batchable = [call for call in batchable if clients[call.spec.resolved] is not None]
        if not batchable:
            return held
        with self.ledger.locked():
            # Under the lock, again: another worker may have collected them meanwhile.
            missing = {call.request.key: call for call in self.still_missing(batchable)}
            records, problems = self.ledger.records()
            for problem in problems:
                self.announce(problem)
            waiting: list[tuple[BatchRecord, BatchClient]] = []
            for record in records:
                if record.via != "api":
                    continue  # a file for vLLM's run-batch: --skill-batch-import reads it
                client = clients.get(record.model)
                if client is None:
                    continue  # another model's batch: the run that uses it collects it
                if not self._look(record, client, missing, held):
                    waiting.append((record, client))
            in_flight = {key for record, _ in waiting for key in record.requests}
            unsent = [call for key, call in missing.items() if key not in in_flight]
            for spec, group in _by_model(unsent):
                client = clients[spec.resolved]
                assert client is not None
                sent = self._send(spec, group, client, held)
                if sent is not None:
                    waiting.append((sent, client))
            if self.wait:
                self._wait(waiting, missing, held)
            for record, _ in waiting:
                if record.batch_id not in self._ended:
                    self._hold_pending(record, missing, held)
        return held

    # --- one batch ----------------------------------------------------------------------

    def _status(self, record: BatchRecord, client: BatchClient) -> BatchStatus | None:
        try:
            return client.status(record.batch_id)
        except BackendError as error:
            self.announce(
                f"batch {record.batch_id} ({record.name}) could not be looked at: {error}"
            )
            return None

    def _look(
        self,
        record: BatchRecord,
        client: BatchClient,
        missing: dict[str, Call],
        held: Held,
        status: BatchStatus | None = None,
    ) -> bool:
        """Collect ``record`` when it has ended; True when it has (it leaves the ledger)."""
        status = status or self._status(record, client)
        if status is None or not status.ended:
            return False
        try:
            items = list(client.results(record.batch_id))
        except BackendError as error:
            self.announce(
                f"batch {record.batch_id} ({record.name}) ended, but its results "
                f"could not be read: {error}; the next run tries again"
            )
            return False
        self._collect(record, items, missing, held)
        self.ledger.remove(record)
        self._ended.add(record.batch_id)
        return True

    def _collect(
        self,
        record: BatchRecord,
        items: Iterable[BatchItem],
        missing: dict[str, Call],
        held: Held,
    ) -> None:
        answered: set[str] = set()
        for item in items:
            pending = record.requests.get(item.custom_id)
            if pending is None or item.custom_id in answered:
                continue  # not a request of ours (or said twice): nothing to record
            answered.add(item.custom_id)
            self._settle(record, item, pending, missing, held)
        for key in record.requests.keys() - answered:
            lost = BatchItem(key, ItemState.ERRORED, error="the batch gave no held for it")
            self._settle(record, lost, record.requests[key], missing, held)

    def _settle(
        self,
        record: BatchRecord,
        item: BatchItem,
        pending: Pending,
        missing: dict[str, Call],
        held: Held,
    ) -> None:
        call = missing.pop(item.custom_id, None)
        if item.state is ItemState.SUCCEEDED and item.response is not None:
            response = dataclasses.replace(
                item.response, extra={**item.response.extra, "batch": record.batch_id}
            )
            try:
                self.cache.put_entry(
                    item.custom_id, pending.fields, response, pending.label, pending.arm
                )
            except CacheError as error:
                if call is not None:
                    held.append((call, Outcome(error=str(error), batch=record.batch_id)))
            return
        if call is not None:
            word = item.state.value
            reason = item.error or f"{word} by the provider"
            reason = reason.removeprefix(f"{word}: ")  # "expired in batch ...: expired: ..."
            held.append(
                (
                    call,
                    Outcome(
                        error=f"{word} in batch {record.batch_id}: {reason}; the next run sends "
                        "it again",
                        kind=ErrorKind.BATCH_FAILED,
                        batch=record.batch_id,
                    ),
                )
            )

    def _send(
        self, spec: ModelSpec, calls: list[Call], client: BatchClient, held: Held
    ) -> BatchRecord | None:
        try:
            batch_id = client.submit([(call.request.key, call.request) for call in calls])
        except BackendError as error:
            message = f"the batch for {spec.name} could not be sent: {error}"
            held += [(call, Outcome(error=message, kind=ErrorKind.CALL_FAILED)) for call in calls]
            return None
        record = BatchRecord(
            batch_id=batch_id,
            model=spec.resolved,
            name=spec.name,
            submitted_at=now(),
            requests={
                call.request.key: Pending(call.label, call.arm, fingerprint(call.request))
                for call in calls
            },
        )
        self.ledger.add(record)
        self.announce(f"sent {len(calls)} calls to {spec.name} as batch {batch_id}")
        return record

    def _hold_pending(self, record: BatchRecord, missing: dict[str, Call], held: Held) -> None:
        reason = (
            f"pending in batch {record.batch_id}, {len(record.requests)} calls; run again "
            "to collect"
        )
        for key in record.requests:
            call = missing.pop(key, None)
            if call is not None:
                held.append(
                    (
                        call,
                        Outcome(error=reason, kind=ErrorKind.BATCH_PENDING, batch=record.batch_id),
                    )
                )

    def _wait(
        self,
        waiting: list[tuple[BatchRecord, BatchClient]],
        missing: dict[str, Call],
        held: Held,
    ) -> None:
        said: dict[str, str] = {}
        out = [pair for pair in waiting if pair[0].batch_id not in self._ended]
        while out:
            self.sleep(self.poll)
            still = []
            for record, client in out:
                status = self._status(record, client)
                if status is not None:
                    line = progress_line(record, status)
                    if said.get(record.batch_id) != line:
                        said[record.batch_id] = line
                        self.announce(line)
                if status is None or not self._look(record, client, missing, held, status):
                    still.append((record, client))
            out = still


def progress_line(record: BatchRecord, status: BatchStatus) -> str:
    total = status.total or len(record.requests)
    state = "ended" if status.ended else "in progress"
    return f"batch {record.batch_id} ({record.name}): {status.done} of {total} done, {state}"


def _unique(calls: Iterable[Call]) -> list[Call]:
    return list({call.request.key: call for call in calls}.values())


def _by_model(calls: Iterable[Call]) -> list[tuple[ModelSpec, list[Call]]]:
    groups: dict[str, tuple[ModelSpec, list[Call]]] = {}
    for call in calls:
        groups.setdefault(call.spec.resolved, (call.spec, []))[1].append(call)
    return list(groups.values())
