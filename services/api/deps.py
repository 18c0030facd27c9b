"""Request dependencies: settings, Redis, the caller's identity."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request, status
from redis.asyncio import Redis

from kubeingest.names import Names
from kubeingest.settings import ApiSettings


def get_settings(request: Request) -> ApiSettings:
    settings: ApiSettings = request.app.state.settings
    return settings


def get_redis(request: Request) -> Redis:
    redis: Redis = request.app.state.redis
    return redis


def get_names(settings: Annotated[ApiSettings, Depends(get_settings)]) -> Names:
    return Names(settings.stream_prefix)


@dataclass(frozen=True)
class Caller:
    """Who is calling: `tenant` is None for a key valid for every tenant (or no auth)."""

    tenant: str | None

    def may_act_for(self, tenant: str) -> bool:
        return self.tenant is None or self.tenant == tenant


def parse_api_keys(raw: str | None) -> dict[str, str | None]:
    """`key` or `tenant:key` entries, comma-separated -> {key: tenant or None}."""
    keys: dict[str, str | None] = {}
    for entry in (raw or "").split(","):
        entry = entry.strip()
        if not entry:
            continue
        tenant, sep, key = entry.rpartition(":")
        keys[key] = tenant if sep else None
    return keys


def get_caller(
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> Caller:
    return resolve_caller(request.app.state.api_keys, presented_key(authorization, x_api_key))


def presented_key(authorization: str | None, x_api_key: str | None,
                  query_key: str | None = None) -> str | None:
    """The key from `Authorization: Bearer`, `X-API-Key` or (streams only) `?api_key=`."""
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return x_api_key or query_key


def resolve_caller(keys: dict[str, str | None], presented: str | None) -> Caller:
    if not keys:
        return Caller(tenant=None)
    if not presented:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "missing API key (Authorization: Bearer <key>)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    for key, tenant in keys.items():
        # Constant-time comparison: the key must not leak through response timing.
        if secrets.compare_digest(key.encode(), presented.encode()):
            return Caller(tenant=tenant)
    raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid API key",
                        headers={"WWW-Authenticate": "Bearer"})


SettingsDep = Annotated[ApiSettings, Depends(get_settings)]
RedisDep = Annotated[Redis, Depends(get_redis)]
NamesDep = Annotated[Names, Depends(get_names)]
CallerDep = Annotated[Caller, Depends(get_caller)]
