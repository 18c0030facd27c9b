"""Every Redis stream, group and key name, spelled once.

Streams follow the seeds' `{service}:{action_type}` convention under a configurable prefix, so
several installations can share one Redis. Per-job keys carry the job id so deleting a job is a
bounded set of DEL calls, never a SCAN of the keyspace.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_PREFIX = "kubeingest"

EMBEDDING_SERVICE = "embedding_service"
INGESTION_SERVICE = "ingestion_service"

ACTION_EMBED_BATCH = "embedding.batch.process"
ACTION_EMBEDDING_RESULT = "ingestion.embedding_result"
# Control action on the results stream: delete a job's points (the sink owns Qdrant writes).
ACTION_JOB_PURGE = "ingestion.job.purge"

EMBEDDER_GROUP = "embedders"
SINK_GROUP = "ingestion-workers"

DEAD_SUFFIX = ":dead"


@dataclass(frozen=True)
class Names:
    """Names under one prefix; build it once from settings and pass it around."""

    prefix: str = DEFAULT_PREFIX

    def _p(self, name: str) -> str:
        return f"{self.prefix}:{name}" if self.prefix else name

    # -- streams -------------------------------------------------------------------------
    @property
    def embed_requests(self) -> str:
        return self._p(f"{EMBEDDING_SERVICE}:{ACTION_EMBED_BATCH}")

    @property
    def embedding_results(self) -> str:
        return self._p(f"{INGESTION_SERVICE}:{ACTION_EMBEDDING_RESULT}")

    @staticmethod
    def dead(stream: str) -> str:
        return stream + DEAD_SUFFIX

    # -- chunk context (the first seed's `chunk:{id}` pattern, one key per batch) ---------
    def batch_context(self, job_id: str, batch_id: str) -> str:
        """The context of every chunk of one request, keyed by its correlation_id: one SET
        and one GET per batch instead of per chunk (a third of the sink's Redis work)."""
        # The job id in the key lets delete find a job's pending context with one SCAN MATCH
        # over a keyspace that backpressure keeps small.
        return self._p(f"ctx:{job_id}:{batch_id}")

    def batch_context_pattern(self, job_id: str) -> str:
        return self._p(f"ctx:{job_id}:*")

    # -- the HTTP API's ingestion records (kubeingest api, local mode) --------------------
    def ingestion_record(self, job_id: str) -> str:
        """Hash: the API's record of one ingestion (tenant, spec, final status)."""
        return self._p(f"ingestion:{job_id}")

    def ingestion_index(self) -> str:
        """Sorted set of every ingestion id, by creation time."""
        return self._p("ingestions")

    def ingestion_tenant_index(self, tenant: str) -> str:
        """Sorted set of one tenant's ingestion ids, by creation time."""
        return self._p(f"ingestions:tenant:{tenant}")

    def ingestion_lease(self, job_id: str) -> str:
        """Which API process runs the job's fan-out (a token with a TTL it keeps renewing)."""
        return self._p(f"ingestion:{job_id}:owner")

    # -- per-job state -------------------------------------------------------------------
    def job_state(self, job_id: str) -> str:
        """Hash of counters and flags written by the producer and the sink."""
        return self._p(f"job:{job_id}")

    def job_done_bits(self, job_id: str) -> str:
        """Bitmap: bit `seq` set once chunk `seq` is stored in Qdrant (idempotent progress)."""
        return self._p(f"job:{job_id}:done")

    def job_failed_bits(self, job_id: str) -> str:
        """Bitmap: bit `seq` set when chunk `seq` failed for good."""
        return self._p(f"job:{job_id}:failed")

    def job_failed_documents(self, job_id: str) -> str:
        """List of JSON {document, reason}, capped; the full count is in the job hash."""
        return self._p(f"job:{job_id}:failed_documents")

    def job_errors(self, job_id: str) -> str:
        """Hash error_code -> failed chunk count."""
        return self._p(f"job:{job_id}:errors")

    def job_purged(self, job_id: str) -> str:
        """Set by a sink once a job's points are deleted from Qdrant (deletionPolicy Delete)."""
        return self._p(f"job:{job_id}:purged")

    def job_index(self) -> str:
        """Set of job ids with live state (for listing and cleanup)."""
        return self._p("jobs")

    def job_keys(self, job_id: str) -> list[str]:
        """Every per-job key, for cleanup on delete."""
        return [
            self.job_state(job_id),
            self.job_done_bits(job_id),
            self.job_failed_bits(job_id),
            self.job_failed_documents(job_id),
            self.job_errors(job_id),
        ]

