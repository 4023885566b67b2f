"""The two steps every flag or experiment change ends with: inside its transaction, the audit entry and
the config version; after the commit, the push to the edges."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from redis.exceptions import RedisError

from api import audit
from api.flag_access import Actor
from api.limits import Conn
from api.state import Services
from eventplane import flagconfig

log = logging.getLogger("eventplane.api")


async def committing(conn: Conn, who: Actor, action: audit.Action, entity_type: str, key: str, before: Any,
                     after: Any) -> None:  # fmt: skip
    """Call inside the change's transaction."""
    await audit.record(conn, who, action, entity_type, key, before, after)
    await flagconfig.bump(conn, who.workspace_id)


async def published(svc: Services, workspace_id: uuid.UUID) -> None:
    """After the commit. The change is made whatever Redis says: without the push, edges and SDK pollers
    still see the new version when they next read it (the document's ETag moved), so a Redis failure is
    logged, not answered as an error for a change that happened."""
    try:
        await flagconfig.publish(svc.redis, svc.keys, workspace_id)
    except (RedisError, OSError) as exc:
        log.warning("flag config change of %s not published: %s", workspace_id, type(exc).__name__)
