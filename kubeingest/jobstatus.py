"""Status arithmetic for IngestionJob: phase, counts and Kubernetes-style conditions.

In the core because two parts write the same status block: the operator (on the custom
resource) and the HTTP API (for ingestions it runs itself).

Plain functions over plain dicts, so the handlers stay thin and tests call these directly.
Conditions follow the API conventions and kstatus: `Succeeded` is the outcome, `Reconciling`
is True while work is under way, `Stalled` is True when the job cannot progress (invalid spec,
failed). `lastTransitionTime` changes only when a condition's status flips.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from kubeingest.progress import Progress

PENDING, RUNNING, SUCCEEDED, FAILED, SUSPENDED = (
    "Pending", "Running", "Succeeded", "Failed", "Suspended",
)
TERMINAL = frozenset({SUCCEEDED, FAILED})


def now_iso() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def condition(
    old: list[dict[str, Any]] | None, ctype: str, status: bool, reason: str, message: str,
    generation: int | None,
) -> dict[str, Any]:
    """A condition, keeping the previous lastTransitionTime unless the status flips."""
    value = "True" if status else "False"
    prev = next((c for c in old or [] if c.get("type") == ctype), None)
    ltt = prev["lastTransitionTime"] if prev and prev.get("status") == value else now_iso()
    return {"type": ctype, "status": value, "reason": reason, "message": message[:1000],
            "lastTransitionTime": ltt, "observedGeneration": generation}


def conditions_for(
    phase: str, reason: str, message: str, old: list[dict[str, Any]] | None,
    generation: int | None,
) -> list[dict[str, Any]]:
    """Suspended reads as all False: not done, not working, not stuck."""
    return [
        condition(old, "Succeeded", phase == SUCCEEDED, reason, message, generation),
        condition(old, "Reconciling", phase in (PENDING, RUNNING), reason, message, generation),
        condition(old, "Stalled", phase == FAILED, reason, message, generation),
    ]


def progress_status(
    p: Progress, *, failed_documents: int, elapsed_s: float | None
) -> dict[str, Any]:
    """The counts part of the status, from the job's progress in Redis."""
    total = p.chunks_total if p.chunks_total is not None else p.chunks_published
    rate = round(p.chunks_stored / elapsed_s, 2) if elapsed_s and elapsed_s > 0 else 0.0
    return {
        "documents": {"total": p.documents_total, "failed": p.documents_failed},
        "chunks": {"total": total, "published": p.chunks_published,
                   "embedded": p.chunks_stored, "failed": p.chunks_failed},
        "progress": f"{int(p.fraction * 100)}%",
        "chunksPerSecond": rate,
        "failedDocuments": [
            {"document": d.document[:512], "reason": d.reason[:512]}
            for d in p.failed_documents[:failed_documents]
        ],
    }


def outcome_message(phase: str, p: Progress) -> tuple[str, str]:
    """(reason, message) for a finished job."""
    total = p.chunks_total or 0
    errors = ", ".join(f"{n} {code}" for code, n in sorted(p.errors.items()))
    if phase == SUCCEEDED:
        msg = f"{p.chunks_stored}/{total} chunks stored"
        if p.chunks_failed:
            msg += f"; {p.chunks_failed} failed within the failure policy ({errors})"
        if p.documents_failed:
            msg += f"; {p.documents_failed} documents could not be read"
        return "Completed", msg
    if total == 0:
        return "NoDocuments", f"no chunks: {p.documents_failed} documents could not be read"
    return "TooManyFailures", (
        f"{p.chunks_failed}/{total} chunks failed ({errors}), more than the failure policy allows"
    )
