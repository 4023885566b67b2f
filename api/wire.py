"""The API's request and response types. They validate requests and generate /openapi.json.

Request types forbid unknown fields: a body naming `role`, `owner` or `workspace_id` where the caller may
not set them is refused (400 VALIDATION_ERROR naming the field), never silently half-applied.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Generic, Literal, TypeVar

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from api.permissions import ALL as ALL_PERMISSIONS
from api.permissions import Role
from eventplane.plans import Plan
from eventplane.scopes import BUNDLES, SCOPES

T = TypeVar("T")

# Postgres cannot store NUL in text, so strings that reach the database refuse it here (a 400, not a 500).
NO_NUL = r"^[^\x00]*$"
# Explicit ranges, not \s: Python's \s also matches \x1c-\x1f, JSON Schema's (ECMA) does not.
Email = Annotated[str, Meta(min_length=3, max_length=254, pattern=r"^[^@\x00-\x20\x7f]+@[^@\x00-\x20\x7f]+$")]
LoginEmail = Annotated[str, Meta(max_length=254, pattern=NO_NUL)]
Password = Annotated[str, Meta(min_length=8, max_length=256)]
AnyPassword = Annotated[str, Meta(max_length=256)]
PersonName = Annotated[str, Meta(max_length=100, pattern=NO_NUL)]
Name = Annotated[str, Meta(min_length=1, max_length=100, pattern=NO_NUL)]
Slug = Annotated[str, Meta(min_length=1, max_length=50, pattern=r"^[a-z0-9-]+$")]
Description = Annotated[str, Meta(max_length=1000, pattern=NO_NUL)]
PermissionName = Annotated[str, Meta(extra_json_schema={"enum": sorted(ALL_PERMISSIONS)})]
PlanName = Literal["free", "pro", "enterprise"]
Token = Annotated[str, Meta(min_length=1, max_length=512)]
# The enum documents the names; api/api_keys.py checks them (its 400 lists the valid ones).
ScopeName = Annotated[str, Meta(max_length=64, extra_json_schema={"enum": sorted(SCOPES | set(BUNDLES))})]
ScopeList = Annotated[list[ScopeName], Meta(min_length=1, max_length=16)]
AwareDatetime = Annotated[dt.datetime, Meta(tz=True)]
# A JSON number (1304.0 is as good as 1304, as JSON Schema's `integer` would also say); fractions round up.
GraceSeconds = Annotated[float, Meta(ge=0, le=7 * 24 * 3600)]


class Input(Struct, forbid_unknown_fields=True, kw_only=True):
    """Base of request bodies."""


# Auth ---------------------------------------------------------------------------------------------------
class SignupIn(Input):
    email: Email
    password: Password
    name: PersonName = ""


class LoginIn(Input):
    email: LoginEmail
    password: AnyPassword
    # true: the refresh token goes into an httpOnly cookie instead of the body (the dashboard; api/auth_cookie.py)
    cookie: bool = False


class RefreshIn(Input):
    refresh_token: Token


class UserOut(Struct, kw_only=True):
    id: uuid.UUID
    email: str
    name: str
    email_verified: bool
    created_at: dt.datetime


class EmailTokenIn(Input):
    token: Token


class ForgotIn(Input):
    email: LoginEmail


class ResetIn(Input):
    token: Token
    password: Password


class PasswordChangeIn(Input):
    current_password: AnyPassword
    new_password: Password


class EmailChangeIn(Input):
    email: Email
    password: AnyPassword  # the current one: a stolen session alone cannot move the account


class AcceptedMailOut(Struct, kw_only=True):
    """The same answer whether or not the address has an account."""

    status: Literal["sent"] = "sent"


class SessionOut(Struct, kw_only=True):
    id: uuid.UUID
    created_at: dt.datetime
    last_used_at: dt.datetime
    expires_at: dt.datetime
    client: str  # the User-Agent that logged in
    current: bool  # the session of the access token of this request


class TokensOut(Struct, kw_only=True):
    access_token: str
    refresh_token: str | None  # null when it went into the dashboard's cookie instead
    token_type: Literal["bearer"] = "bearer"
    expires_in: int


# Workspaces ---------------------------------------------------------------------------------------------
class WorkspaceIn(Input):
    name: Name
    slug: Slug
    description: Description | None = None
    plan: PlanName = "free"
    # Operators only (x-admin-token): the instance its events live on; default the least loaded one.
    instance: Annotated[str, Meta(min_length=1, max_length=40, pattern=r"^[a-z0-9-]+$")] | None = None


class WorkspacePatch(Input):
    name: Name | UnsetType = UNSET
    slug: Slug | UnsetType = UNSET
    description: Description | UnsetType | None = UNSET
    plan: PlanName | UnsetType = UNSET  # OWNER only; a plan but the default needs x-admin-token (ADMIN_TOKEN)


class WorkspaceOut(Struct, kw_only=True):
    id: uuid.UUID
    name: str
    slug: str
    description: str | None
    plan: str
    is_active: bool
    max_experiments: int
    max_feature_flags: int
    max_members: int
    max_api_keys: int
    limits: Plan
    created_at: dt.datetime
    updated_at: dt.datetime
    # Only in a session's reads (GET /workspaces, /workspaces/{id}, /workspaces/current): the caller's role
    # here and the permissions it grants (api/permissions.py, the table every check uses), so a client shows
    # only what the server would allow. Absent for API keys and workspace tokens, which have scopes, not roles.
    role: Role | UnsetType = UNSET
    permissions: list[PermissionName] | UnsetType = UNSET


class Page(Struct, Generic[T], kw_only=True):
    """One page of a list; pass `next_cursor` back as `cursor` for the next (null: last page)."""

    items: list[T]
    next_cursor: str | None


# Members ------------------------------------------------------------------------------------------------
class MemberIn(Input):
    user_id: uuid.UUID
    role: Role


class MemberPatch(Input):
    role: Role


class TransferIn(Input):
    member_id: uuid.UUID


class MemberOut(Struct, kw_only=True):
    id: uuid.UUID
    user_id: uuid.UUID
    email: str
    name: str
    role: Role
    joined_at: dt.datetime


# Invitations --------------------------------------------------------------------------------------------
class InviteIn(Input):
    email: Email
    role: Role = Role.VIEWER


class InvitationOut(Struct, kw_only=True):
    id: uuid.UUID
    workspace_id: uuid.UUID
    workspace_name: str
    email: str
    role: Role
    created_at: dt.datetime
    expires_at: dt.datetime
    invited_by: InviterOut | None  # null once the inviter's account is gone


class InviterOut(Struct, kw_only=True):
    id: uuid.UUID
    email: str
    name: str


class InviteCreatedOut(InvitationOut, kw_only=True):
    token: str  # shown only in this response


class AcceptedOut(Struct, kw_only=True):
    workspace: WorkspaceOut
    member: MemberOut


# API keys -----------------------------------------------------------------------------------------------
class KeyIn(Input):
    name: Name
    scopes: ScopeList
    description: Description | None = None
    expires_at: AwareDatetime | None = None


class LegacyKeyIn(KeyIn):
    workspace_id: uuid.UUID | None = None


class KeyPatch(Input):
    name: Name | UnsetType = UNSET
    description: Description | UnsetType | None = UNSET
    scopes: ScopeList | UnsetType = UNSET


class LegacyKeyPatch(KeyPatch):
    workspace_id: uuid.UUID | None = None


class RotateIn(Input):
    grace_seconds: GraceSeconds = 0


class LegacyRotateIn(RotateIn):
    workspace_id: uuid.UUID | None = None


class KeyOut(Struct, kw_only=True):
    id: uuid.UUID
    workspace_id: uuid.UUID
    name: str
    description: str | None
    key_prefix: str
    scopes: list[str]
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    expires_at: dt.datetime | None
    is_active: bool


class KeyCreatedOut(Struct, kw_only=True):
    id: uuid.UUID
    workspace_id: uuid.UUID
    name: str
    description: str | None
    key: str  # shown only in this response
    key_prefix: str
    scopes: list[str]
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    expires_at: dt.datetime | None
    is_active: bool


class RotatedOut(KeyCreatedOut, kw_only=True):
    replaced_key_id: uuid.UUID
    replaced_key_expires_at: dt.datetime  # when the old key stops (now, or after the grace period)


# Usage and billing --------------------------------------------------------------------------------------
class UsageDay(Struct, kw_only=True):
    day: dt.date
    events: int
    by_type: dict[str, int]


class UsageOut(Struct, kw_only=True):
    workspace_id: uuid.UUID
    from_: dt.date = msgspec.field(name="from")
    to: dt.date
    total: int
    days: list[UsageDay]
    client_dropped: dict[str, int]  # events SDKs reported they dropped before sending, by reason


class LimitsUsed(Struct, kw_only=True):
    """What each plan limit counts now, across the workspace's org, as the limit checks count it."""

    members: int
    feature_flags: int
    experiments: int  # draft and running
    api_keys: int  # active


class LimitsOut(Struct, kw_only=True):
    workspace_id: uuid.UUID
    plan: str
    limits: Plan
    used: LimitsUsed


class BillingUsage(Struct, kw_only=True):
    events: int
    members: int
    active_api_keys: int


class BillingOut(Struct, kw_only=True):
    workspace_id: uuid.UUID
    plan: str
    limits: Plan
    period_start: dt.date
    period_end: dt.date  # exclusive
    usage: BillingUsage


# Errors -------------------------------------------------------------------------------------------------
class ErrorBody(Struct, kw_only=True):
    code: str
    message: str
    details: Any


class ErrorOut(Struct, kw_only=True):
    error: ErrorBody
