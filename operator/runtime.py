"""What the handlers share: settings, Redis, the progress store, Qdrant, the API client.

Built once in the startup handler and kept in kopf's memo, never at import time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from redis.asyncio import Redis

from kubeingest.names import Names
from kubeingest.operator.kube import Kube
from kubeingest.progress import ProgressStore
from kubeingest.qdrant_store import QdrantStore, open_client
from kubeingest.settings import OperatorSettings


@dataclass
class Runtime:
    settings: OperatorSettings
    redis: Redis
    names: Names
    progress: ProgressStore
    kube: Kube
    qdrant: QdrantStore | None
    phases: dict[str, str] = field(default_factory=dict)  # uid -> phase, for the jobs gauge

    @classmethod
    def create(cls, settings: OperatorSettings) -> Runtime:
        if settings.redis_url is None:
            raise RuntimeError("KUBEINGEST_REDIS_URL is required for the operator")
        redis = Redis.from_url(settings.redis_url.get_secret_value(), health_check_interval=30)
        names = Names(settings.stream_prefix)
        qdrant = None
        if settings.qdrant_url:
            key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
            qdrant = QdrantStore(open_client(url=settings.qdrant_url, path="", api_key=key))
        return cls(settings, redis, names, ProgressStore(redis, names),
                   Kube(settings.kube_api_url), qdrant)

    async def close(self) -> None:
        await self.redis.aclose()
        if self.qdrant is not None:
            await self.qdrant.close()
        self.kube.close()
