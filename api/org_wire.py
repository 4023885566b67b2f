"""Request and response types of organizations, their members and tokens, and org workspaces."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

from msgspec import UNSET, Meta, Struct, UnsetType

from api.org_permissions import OrgRole
from api.wire import Email, GraceSeconds, Input, Name, PlanName, Slug
from eventplane.plans import Plan

OrgScope = Literal["workspaces:read", "workspaces:write", "workspaces:credentials"]
Credential = Annotated[str, Meta(min_length=1, max_length=200)]


class OrgIn(Input):
    name: Name
    plan: PlanName = "free"  # a plan but the default needs x-admin-token (ADMIN_TOKEN), as for workspaces


class OrgPatch(Input):
    name: Name | UnsetType = UNSET
    plan: PlanName | UnsetType = UNSET  # OWNER only, as above


class OrgOut(Struct, kw_only=True):
    id: uuid.UUID
    name: str
    plan: str
    limits: Plan
    max_workspaces: int
    workspaces: int
    created_at: dt.datetime
    updated_at: dt.datetime


class OrgMemberIn(Input):
    user_id: uuid.UUID
    role: OrgRole = OrgRole.MEMBER


class OrgMemberPatch(Input):
    role: OrgRole


class OrgMemberOut(Struct, kw_only=True):
    id: uuid.UUID
    user_id: uuid.UUID
    email: str
    role: OrgRole
    joined_at: dt.datetime


class OrgTokenIn(Input):
    name: Name
    scopes: Annotated[list[OrgScope], Meta(min_length=1, max_length=3)]


class OrgTokenOut(Struct, kw_only=True):
    id: uuid.UUID
    org_id: uuid.UUID
    name: str
    token_prefix: str
    scopes: list[str]
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None


class OrgTokenCreatedOut(OrgTokenOut, kw_only=True):
    token: str  # shown only in this response


class OrgWorkspaceIn(Input):
    name: Name
    org_id: uuid.UUID
    slug: Slug | None = None  # default: made from a random suffix


class OrgWorkspacePatch(Input):
    """Each part given replaces that part whole (eventplane/workspace_config.py validates it)."""

    name: Name | UnsetType = UNSET
    settings: dict[str, Any] | UnsetType = UNSET
    webhooks: list[Any] | UnsetType = UNSET  # [{url, event_types?, enabled?, id?}]
    public_keys: list[Any] | UnsetType = UNSET  # PEM strings or JWKs (ES256, RS256)


class OrgWorkspaceOut(Struct, kw_only=True):
    id: uuid.UUID
    org_id: uuid.UUID
    name: str
    slug: str
    key: str  # the public identifier
    is_active: bool
    has_secret: bool
    created_at: dt.datetime
    updated_at: dt.datetime


class OrgWorkspaceDetailOut(OrgWorkspaceOut, kw_only=True):
    """One workspace with its configuration (eventplane/workspace_config.py documents each part). A webhook
    added by this request carries its `signing_secret`, shown only in that response."""

    settings: dict[str, Any]
    webhooks: list[dict[str, Any]]
    public_keys: list[dict[str, Any]]


class OrgWorkspaceCreatedOut(OrgWorkspaceOut, kw_only=True):
    secret: str  # shown only in this response


class AccessTokenIn(Input):
    """Empty with org credentials; or the workspace's key and secret (then no other credential is needed)."""

    key: Credential | None = None
    secret: Credential | None = None


class AccessTokenOut(Struct, kw_only=True):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
    workspace_id: uuid.UUID
    scopes: list[str]


class RotateSecretIn(Input):
    grace_seconds: GraceSeconds = 0


class SecretOut(Struct, kw_only=True):
    workspace_id: uuid.UUID
    secret: str  # shown only in this response
    previous_secret_expires_at: dt.datetime | None  # when the old secret (and its tokens) stop; null: none


class OrgInviteIn(Input):
    email: Email
    role: OrgRole = OrgRole.MEMBER


class OrgInvitationOut(Struct, kw_only=True):
    id: uuid.UUID
    org_id: uuid.UUID
    email: str
    role: OrgRole
    created_at: dt.datetime
    expires_at: dt.datetime


class OrgInviteCreatedOut(OrgInvitationOut, kw_only=True):
    token: str  # shown only in this response
