"""Plain records of the demo data set, built in memory before any write."""

import random
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal


@dataclass(eq=False)
class DemoAccount:
    name: str
    external_id: str
    email_domains: list[str]
    segment: str
    cs_tier: str
    arr: Decimal
    contract_start: date
    renewal_date: date
    owner_index: int
    time_zone: str
    locale: str
    # (effective_on, ARR) at the contract start and each renewal since.
    arr_history: list[tuple[date, Decimal]] = field(default_factory=list)
    # Most of its people went quiet a month or two ago, so its health score
    # is low: the accounts a customer-success team would act on.
    is_at_risk: bool = False
    # Set by the writer from the contract start and the members' join times.
    created_at: datetime | None = None
    pk: int | None = None


@dataclass(eq=False)
class DemoConsent:
    purpose_key: str
    source: str
    evidence: str
    granted_at: datetime
    expires_on: date | None = None
    revoked_at: datetime | None = None
    revoked_source: str = ""


@dataclass(eq=False)
class DemoPerson:
    """A member (with `account`) or a staff user (without) of the demo."""

    email: str
    first_name: str
    last_name: str
    account: DemoAccount | None = None
    external_id: str = ""
    role: str = "member"
    time_zone: str = "UTC"
    joined_at: datetime | None = None
    engagement: float = 0.0
    topic_rate: float = 0.0
    reply_weight: float = 0.0
    product_mean: float = 0.0
    view_mean: float = 0.0
    churn_at: datetime | None = None
    decline_at: datetime | None = None
    is_staff: bool = False
    has_demo_password: bool = False
    lifecycle_stage: str = "onboarding"
    active_times: list[datetime] = field(default_factory=list)
    consents: list[DemoConsent] = field(default_factory=list)
    user_pk: int | None = None
    pk: int | None = None

    @property
    def display_name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    def is_around(self, moment: datetime) -> bool:
        """Return whether the member had joined and not churned at `moment`."""
        return self.joined_at <= moment and (
            self.churn_at is None or moment < self.churn_at
        )


@dataclass(eq=False)
class DemoTopic:
    space_key: str
    author: DemoPerson | None
    kind: str
    title: str
    body: str
    created_at: datetime
    last_activity_at: datetime
    reply_count: int = 0
    # The reply the author accepted as the question's solution, and when.
    accepted_reply: "DemoReply | None" = None
    solved_at: datetime | None = None
    pk: int | None = None


@dataclass(eq=False)
class DemoReply:
    topic: DemoTopic
    author: DemoPerson
    body: str
    created_at: datetime
    pk: int | None = None


@dataclass(eq=False)
class DemoEvent:
    """An activity event; `subject` is a topic or reply, resolved to its pk late."""

    person: DemoPerson
    kind: str
    occurred_at: datetime
    subject: DemoTopic | DemoReply | None = None
    properties: dict = field(default_factory=dict)
    campaign_id: str = ""
    utm_source: str = ""
    utm_medium: str = ""
    utm_campaign: str = ""


@dataclass
class DemoDataSet:
    history_start: datetime
    staff: list[DemoPerson]
    accounts: list[DemoAccount]
    members: list[DemoPerson]
    topics: list[DemoTopic]
    replies: list[DemoReply]
    events: list[DemoEvent]


def ascii_word(text: str) -> str:
    """Return `text` as lower-case ASCII letters, for the local part of an email."""
    decomposed = unicodedata.normalize("NFKD", text)
    letters = [c for c in decomposed.lower() if "a" <= c <= "z"]
    return "".join(letters) or "user"


def weighted(rng: random.Random, pairs):
    """Return one value of (value, weight) pairs, picked in proportion to weight."""
    values, weights = zip(*pairs, strict=True)
    return rng.choices(values, weights=weights)[0]
