"""Workspace access tokens: short-lived, minted by POST /org-workspaces/{id}/access-token, they authenticate
the workspace's management endpoints as that workspace.

A token is `epwa_` + a JWT (HS256, the api's signing secret) naming the workspace and the generation of its
secret. It lives TTL seconds; every use re-reads the workspace, so archiving it or rotating its secret ends
the token at once (a rotation with a grace period: when the grace ends).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import jwt

from eventplane.settings import Settings

PREFIX = "epwa_"
TTL = 900  # 15 minutes: long enough for a provisioning script, short enough that a leak expires
AUDIENCE = "eventplane-workspace"
# What the token grants on the workspace's endpoints, as an API key's scopes would (api/permissions.py).
SCOPES = ("workspace:read", "flags:read", "experiments:read")


@dataclass(frozen=True)
class Claims:
    workspace_id: uuid.UUID
    generation: int
    token_id: uuid.UUID


def mint(settings: Settings, workspace_id: uuid.UUID, generation: int) -> str:
    now = int(time.time())
    claims = {"aud": AUDIENCE, "sub": str(workspace_id), "gen": generation, "jti": str(uuid.uuid4()),
              "iat": now, "exp": now + TTL}  # fmt: skip
    return PREFIX + jwt.encode(claims, _key(settings), algorithm="HS256")


def decode(settings: Settings, token: str) -> Claims | None:
    """The claims of a valid, unexpired token; None otherwise."""
    if not token.startswith(PREFIX):
        return None
    try:
        claims = jwt.decode(token[len(PREFIX) :], _key(settings), algorithms=["HS256"], audience=AUDIENCE,
                            options={"require": ["exp", "sub", "gen", "jti"]})  # fmt: skip
        return Claims(uuid.UUID(str(claims["sub"])), int(claims["gen"]), uuid.UUID(str(claims["jti"])))
    except (jwt.InvalidTokenError, ValueError, TypeError):
        return None


def _key(settings: Settings) -> str:
    assert settings.jwt_secret is not None, "api/app.py's lifespan sets the JWT secret"
    return "workspace-token:" + str(settings.jwt_secret)
