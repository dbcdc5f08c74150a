"""Why an answer has no verdict: one kind, from the runner's outcome to the report."""

from __future__ import annotations

from enum import Enum


class ErrorKind(str, Enum):
    """The kind of a failed call or grading. The values are what reports write."""

    #: The model cannot be called at all (no key, no file, no backend): one fix for all calls.
    MODEL_UNAVAILABLE = "model"
    #: A replay found no recorded answer: one re-recording run fixes them all.
    REPLAY_MISS = "replay miss"
    #: The recorded entry was refused as unreadable: recording again replaces it.
    UNREADABLE_ENTRY = "unreadable entry"
    #: This call failed (after retries): a provider error, a timeout.
    CALL_FAILED = "call"
    #: The answer came, but a check could not grade it (e.g. the judge's call failed).
    NOT_GRADED = "grading"
    #: The call waits in a provider batch (``--skill-batch``): a later run collects it.
    BATCH_PENDING = "batch pending"
    #: The call errored, expired or was canceled in a provider batch: sent again later.
    BATCH_FAILED = "batch failed"

    @property
    def noun(self) -> str:
        """How a count of this kind is said in the problems summary."""
        return _NOUNS[self]

    @property
    def shared(self) -> bool:
        """One cause for many calls: items say it briefly, the summary says the fix once."""
        return self in (
            ErrorKind.MODEL_UNAVAILABLE,
            ErrorKind.REPLAY_MISS,
            ErrorKind.UNREADABLE_ENTRY,
            ErrorKind.BATCH_PENDING,
        )

    @property
    def batched(self) -> bool:
        """The answer is a provider batch's to give: the item is skipped, not failed."""
        return self in (ErrorKind.BATCH_PENDING, ErrorKind.BATCH_FAILED)


_NOUNS = {
    ErrorKind.MODEL_UNAVAILABLE: "call(s) not made",
    ErrorKind.REPLAY_MISS: "answer(s) not in the cache",
    ErrorKind.UNREADABLE_ENTRY: "cache entry(ies) unreadable",
    ErrorKind.CALL_FAILED: "call(s) failed",
    ErrorKind.NOT_GRADED: "answer(s) not graded",
    ErrorKind.BATCH_PENDING: "call(s) pending in a batch",
    ErrorKind.BATCH_FAILED: "call(s) failed in a batch",
}
