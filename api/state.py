"""What the lifespan opens and every handler uses, as one typed object on `app.state.services`."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
from redis.asyncio import Redis
from starlette.requests import Request

from api.instances import InstanceData
from api.passwords import Passwords
from eventplane.redis_names import RedisNames
from eventplane.settings import Settings


@dataclass(frozen=True)
class Services:
    settings: Settings
    pool: asyncpg.Pool
    redis: Redis
    keys: RedisNames
    passwords: Passwords
    data: InstanceData  # event data: pools of the workspaces' instances (api/instances.py)


def services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc
