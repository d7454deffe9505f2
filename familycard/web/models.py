"""Response models: allow-lists, one per audience.

A model here is what an audience may receive, field by field. Analytics and social-worker models carry
pseudonyms, roles, ages and sexes, never an IIN, a name or a phone number; only :class:`Identity` (the
purpose-bound re-identification) and the citizen's own :class:`MyCard` carry identifying fields, and a
test scans every other model's schema for them.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class Problem(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    error: Problem


class SessionInfo(BaseModel):
    signed_in: bool
    kind: str | None = None
    role: str | None = None
    territory: str | None = None
    permissions: list[str] = Field(default_factory=list)
    purposes: list[str] = Field(default_factory=list)
    csrf: str | None = Field(default=None, description="Send back as X-CSRF-Token on every change")


class LevelCount(BaseModel):
    level: str
    families: int


class AreaLevels(BaseModel):
    area: str = Field(description="KATO prefix of the area")
    name: str
    families: int
    levels: list[LevelCount]


class Overview(BaseModel):
    territory: str
    territory_name: str
    snapshot: str
    families: int
    levels: list[LevelCount]
    areas: list[AreaLevels]


class FamilySummary(BaseModel):
    pseudonym: str
    level: str
    score: float
    area: str = Field(description="KATO code of the settlement")
    area_name: str
    rural: bool
    size: int
    adults: int
    minors: int
    targeted: bool
    uncertain_members: int


class FamilyList(BaseModel):
    territory: str
    snapshot: str
    total: int
    offset: int
    limit: int
    level: str | None
    families: list[FamilySummary]


class Member(BaseModel):
    pseudonym: str
    role: str
    age: int | None
    sex: str | None
    uncertain: bool


class SourceRef(BaseModel):
    feed: str
    record: str
    period: str
    member: str = Field(description="The member's role in the family")


class IndicatorShown(BaseModel):
    id: str
    domain: str
    name: str
    description: str
    value: float | None
    share: float = Field(description="Weight in the score")
    sources: list[SourceRef]
    checked: dict[str, str] = Field(
        description="Feeds whose lack of a record counts, with their last delivery"
    )


class SituationShown(BaseModel):
    id: str
    name: str
    legal_basis: str


class FamilyCard(BaseModel):
    pseudonym: str
    snapshot: str
    as_of: str
    methodology: str
    level: str
    level_name: str
    score: float
    area: str
    area_name: str
    rural: bool
    targeted: bool
    uncertain_members: int
    floor_reason: str | None
    purpose: str | None
    withheld: list[str] = Field(description="Sensitive categories not shown without a declared purpose")
    withheld_indicators: int
    members: list[Member]
    deprivations: list[IndicatorShown]
    situations: list[SituationShown]


class PersonIdentity(BaseModel):
    pseudonym: str
    role: str
    iin: str | None
    surname: str | None
    given_name: str | None
    patronymic: str | None
    birth_date: str | None
    sex: str | None
    phones: list[str]


class Identity(BaseModel):
    pseudonym: str
    purpose: str
    members: list[PersonIdentity]


class PurposeIn(BaseModel):
    purpose: str


class FeedQuality(BaseModel):
    feed: str
    agency: str
    last_period: str | None
    files_loaded: int
    files_rejected: int
    rows_read: int
    rows_rejected: int
    quarantine_open: int
    completeness: float | None
    validity: float | None
    uniqueness: float | None
    timely: float | None
    consistency: float | None


class QualityReport(BaseModel):
    snapshot: str
    feeds: list[FeedQuality]


class AuditRow(BaseModel):
    seq: int
    at: str
    actor: str
    role: str
    territory: str
    purpose: str
    action: str
    object_type: str
    object_id: str
    family: str = Field(description="Pseudonym of the family concerned (empty: none)")


class AuditPage(BaseModel):
    total: int
    rows: list[AuditRow]


class AuditCheck(BaseModel):
    rows: int
    ok: bool
    first_bad: int | None
    reason: str


class AccountOut(BaseModel):
    username: str
    display_name: str
    role: str
    territory: str
    measure: str | None
    active: bool
    locked: bool


class AccountIn(BaseModel):
    username: str = Field(min_length=2, max_length=64)
    display_name: str = Field(min_length=1, max_length=200)
    role: str
    territory: str = Field(default="", max_length=9)
    measure: str | None = Field(default=None, max_length=64)
    password: str = Field(min_length=12, max_length=200)


class AccountList(BaseModel):
    accounts: list[AccountOut]


class KeyVersion(BaseModel):
    version: int
    created: str
    retired: str | None
    current: bool


class KeyList(BaseModel):
    keys: list[KeyVersion]


class AccessSeen(BaseModel):
    at: str
    role: str
    purpose: str
    action: str


class MyCard(BaseModel):
    """The citizen's own card: their family's level and the reasons they may see."""

    snapshot: str
    level: str | None
    level_name: str | None
    score: float | None
    deprivations: list[IndicatorShown]
    situations: list[SituationShown]
    withheld_indicators: int
    accesses: list[AccessSeen]


class Health(BaseModel):
    status: str
    snapshot: str | None
    store: str
