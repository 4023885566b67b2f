"""What the lifespan opens and every handler uses, as one typed object on `app.state.services`."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
from argon2 import PasswordHasher
from redis.asyncio import Redis
from starlette.requests import Request

from eventplane.queue import Keys
from eventplane.settings import Settings


@dataclass(frozen=True)
class Services:
    settings: Settings
    pool: asyncpg.Pool
    redis: Redis
    keys: Keys
    hasher: PasswordHasher


def services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc
