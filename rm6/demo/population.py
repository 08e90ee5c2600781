"""Generate the demo's staff, customer accounts and members, with their habits."""

import random
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from rm6.demo import content

if TYPE_CHECKING:
    from faker import Faker
from rm6.demo.records import (
    DemoAccount,
    DemoConsent,
    DemoPerson,
    ascii_word,
    weighted,
)

# Faker locale, the time zones used there, and the share of accounts.
REGIONS = [
    ("en_US", ["America/New_York", "America/Chicago", "America/Los_Angeles"], 40),
    ("en_GB", ["Europe/London"], 12),
    ("de_DE", ["Europe/Berlin"], 10),
    ("fr_FR", ["Europe/Paris"], 7),
    ("nl_NL", ["Europe/Amsterdam"], 5),
    ("es_ES", ["Europe/Madrid"], 4),
    ("en_CA", ["America/Toronto", "America/Vancouver"], 6),
    ("en_AU", ["Australia/Sydney"], 6),
    ("en_IN", ["Asia/Kolkata"], 6),
    ("pt_BR", ["America/Sao_Paulo"], 4),
]
LOCALES = [locale for locale, _, _ in REGIONS]

# (segment, share of accounts, relative member count, ARR range in USD)
SEGMENTS = [
    ("smb", 50, 1.0, (6_000, 30_000)),
    ("mid_market", 35, 2.5, (30_000, 150_000)),
    ("enterprise", 15, 6.0, (150_000, 1_200_000)),
]
CS_TIERS = {
    "smb": [("tech_touch", 85), ("pooled", 15)],
    "mid_market": [("pooled", 70), ("high_touch", 20), ("tech_touch", 10)],
    "enterprise": [("high_touch", 90), ("pooled", 10)],
}
# Role: share of non-admin members, engagement, topic and reply multipliers.
ROLES = {
    "member": (82, 1.0, 1.0, 1.0),
    "contributor": (14, 1.8, 2.5, 4.0),
    "champion": (4, 3.0, 3.0, 8.0),
    "admin": (0, 1.3, 1.5, 1.5),
}
# Share of members by role who agree to be contacted for advocacy asks.
ADVOCACY_CONSENT_SHARES = {"champion": 0.9, "contributor": 0.3}
# The name of the demo staff superuser, which no generated person may take.
RESERVED_NAMES = [("Demo", "Admin")]
# Fresh names drawn for a person whose name is taken, before the name gets a
# middle initial instead.
MAX_NAME_DRAWS = 20
# One account in six, from the fourth on, is at risk: most of its people
# stopped, and the rest slowed down, 35 to 60 days before the seed. The first
# account, whose people the demo signs in as, never is.
AT_RISK_EVERY = 6
AT_RISK_OFFSET = 3
AT_RISK_CHURN_SHARE = 0.75


class Population:
    """The people of one simulation, drawn from its random generators."""

    def __init__(
        self,
        *,
        rng: random.Random,
        fake: "Faker",
        now: datetime,
        days: int,
        sign_in_domain: str,
        id_prefix: str,
    ):
        self.rng = rng
        self.fake = fake
        self.now = now
        self.days = days
        self.start = now - timedelta(days=days)
        self.sign_in_domain = sign_in_domain
        self.id_prefix = id_prefix
        self.used_emails: set[str] = set()
        self.used_names: set[str] = {
            _name_key(first, last) for first, last in RESERVED_NAMES
        }

    def _unique_email(self, local: str, domain: str) -> str:
        email = f"{local}@{domain}"
        number = 2
        while email in self.used_emails:
            email = f"{local}{number}@{domain}"
            number += 1
        self.used_emails.add(email)
        return email

    def _unique_name(self, locale: str) -> tuple[str, str]:
        """Return a (first, last) name no other demo person or staff user has.

        Display names identify people in the community and on the staff
        pages, so two demo people never share one. After MAX_NAME_DRAWS taken
        names in a row, a middle initial makes the last draw unique.
        """
        faker = self.fake[locale]
        for _ in range(MAX_NAME_DRAWS):
            first, last = faker.first_name(), faker.last_name()
            if _name_key(first, last) not in self.used_names:
                break
        else:
            base, number = first, 0
            while _name_key(first, last) in self.used_names:
                number += 1
                # "A." to "Z.", then plain numbers.
                middle = f"{chr(64 + number)}." if number <= 26 else str(number)
                first = f"{base} {middle}"
        self.used_names.add(_name_key(first, last))
        return first, last

    def _person(self, locale: str, domain: str, **fields) -> DemoPerson:
        first, last = self._unique_name(locale)
        email = self._unique_email(f"{ascii_word(first)}.{ascii_word(last)}", domain)
        return DemoPerson(email=email, first_name=first, last_name=last, **fields)

    def make_staff(self, *, account_count: int) -> list[DemoPerson]:
        """Return the customer success managers, about one per dozen accounts."""
        count = max(2, min(12, -(-account_count // 12)))
        return [
            self._person(
                "en_US",
                self.sign_in_domain,
                is_staff=True,
                joined_at=self.start - timedelta(days=400),
            )
            for _ in range(count)
        ]

    def make_accounts(self, *, count: int, staff_count: int) -> list[DemoAccount]:
        """Return `count` accounts, each owned by one of `staff_count` staff."""
        rng = self.rng
        today = self.now.date()
        names = content.company_names(count, rng)
        accounts = []
        for index, name in enumerate(names):
            locale, zones, _ = weighted(rng, [(r, r[2]) for r in REGIONS])
            segment, _, _, (low, high) = weighted(rng, [(s, s[1]) for s in SEGMENTS])
            slug = ascii_word(name.replace(" ", ""))
            domains = [f"{slug}.test"]
            if segment == "enterprise" and rng.random() < 0.5:
                domains.append(f"{slug}-{locale[-2:].lower()}.test")
            contract_start = today - timedelta(days=rng.randint(30, 4 * 365))
            accounts.append(
                DemoAccount(
                    name=name,
                    external_id=f"{self.id_prefix}a{index + 1:05d}",
                    email_domains=domains,
                    segment=segment,
                    cs_tier=weighted(rng, CS_TIERS[segment]),
                    arr=Decimal(round(rng.uniform(low, high), -2)),
                    contract_start=contract_start,
                    renewal_date=_next_anniversary(contract_start, today),
                    owner_index=rng.randrange(staff_count),
                    time_zone=rng.choice(zones),
                    locale=locale,
                    is_at_risk=index % AT_RISK_EVERY == AT_RISK_OFFSET,
                )
            )
            self._set_arr_history(accounts[-1], today)
        return accounts

    def _set_arr_history(self, account: DemoAccount, today: date) -> None:
        """Give the account an ARR value per contract year, ending at today's ARR.

        Most renewals expand, some stay flat and a few contract, so net
        revenue retention comes out a little above 100 %.
        """
        starts = [account.contract_start]
        while (next_start := _add_years(starts[-1], 1)) <= today:
            starts.append(next_start)
        arr = account.arr
        history = [(starts[-1], arr)]
        for start in reversed(starts[:-1]):
            change = weighted(
                self.rng,
                [
                    (self.rng.uniform(1.05, 1.35), 55),
                    (1.0, 30),
                    (self.rng.uniform(0.75, 0.95), 15),
                ],
            )
            arr = Decimal(round(float(arr) / change, -2))
            history.append((start, arr))
        account.arr_history = sorted(history)

    def _member_counts(self, accounts: list[DemoAccount], total: int) -> list[int]:
        """Split members over accounts by segment size, one admin per account.

        The first account gets at least three: its admin and the two demo
        sign-ins.
        """
        sizes = {s[0]: s[2] for s in SEGMENTS}
        weights = [sizes[a.segment] * self.rng.uniform(0.6, 1.4) for a in accounts]
        counts = [1] * len(accounts)
        counts[0] = 3
        spare = total - sum(counts)
        shares = [spare * w / sum(weights) for w in weights]
        for index, share in enumerate(shares):
            counts[index] += int(share)
        # Hand out what rounding down left over, largest remainders first.
        remainders = sorted(
            range(len(accounts)), key=lambda i: shares[i] - int(shares[i]), reverse=True
        )
        for index in remainders[: total - sum(counts)]:
            counts[index] += 1
        return counts

    def make_members(
        self, accounts: list[DemoAccount], *, count: int
    ) -> list[DemoPerson]:
        """Return `count` members spread over `accounts`, with their habits."""
        rng = self.rng
        members = []
        counts = self._member_counts(accounts, count)
        for account, account_count in zip(accounts, counts, strict=True):
            for position in range(account_count):
                if position == 0:
                    role = "admin"
                else:
                    role = weighted(rng, [(r, v[0]) for r, v in ROLES.items()])
                person = self._person(
                    account.locale,
                    account.email_domains[0],
                    account=account,
                    role=role,
                    external_id=f"{self.id_prefix}m{len(members) + 1:06d}",
                    time_zone=self._member_time_zone(account),
                )
                self._set_habits(person)
                members.append(person)

        # The first account's admin posts the announcements, so has been
        # around since before the history starts.
        # It is also the demo's account admin sign-in, who may open the
        # account's health page and its members' onboarding.
        announcer = members[0]
        announcer.joined_at = self.start - timedelta(days=300)
        announcer.churn_at = announcer.decline_at = None
        announcer.email = f"account-admin@{self.sign_in_domain}"
        announcer.has_demo_password = True

        # Its second and third members are the demo sign-ins: a new plain
        # member and a long-standing, very active champion.
        newcomer, champion = members[1], members[2]
        newcomer.email = f"member@{self.sign_in_domain}"
        newcomer.role = "member"
        newcomer.joined_at = self.now - timedelta(days=min(12, self.days))
        newcomer.engagement, newcomer.topic_rate = 3.0, 0.15
        champion.email = f"champion@{self.sign_in_domain}"
        champion.role = "champion"
        champion.joined_at = self.start - timedelta(days=200)
        champion.engagement, champion.topic_rate = 5.0, 0.2
        for person in (newcomer, champion):
            person.reply_weight = ROLES[person.role][3] * person.engagement
            person.churn_at = person.decline_at = None
            person.has_demo_password = True
        return members

    def _member_time_zone(self, account: DemoAccount) -> str:
        # Most people work where their company is, and some work remotely.
        if self.rng.random() < 0.8:
            return account.time_zone
        zones = weighted(self.rng, [(zones, share) for _, zones, share in REGIONS])
        return self.rng.choice(zones)

    def _set_habits(self, person: DemoPerson) -> None:
        rng = self.rng
        _, engagement, topics, replies = ROLES[person.role]
        if rng.random() < 0.55:
            person.joined_at = self.start - timedelta(days=rng.uniform(1, 700))
        else:
            person.joined_at = self.start + timedelta(days=rng.uniform(0, self.days))
        # Active days per week: median about 0.9, a long tail up to 5.5.
        person.engagement = min(5.5, 0.9 * engagement * rng.lognormvariate(0, 1.0))
        person.topic_rate = 0.06 * topics * rng.lognormvariate(0, 0.8)
        person.reply_weight = replies * person.engagement
        person.product_mean = rng.lognormvariate(0.3, 0.6)
        person.view_mean = 0.6 * (1 + topics)

        tenure = self.now - person.joined_at
        roll = rng.random()
        if roll < 0.05 and tenure > timedelta(days=90):
            person.churn_at = self.now - timedelta(days=rng.uniform(45, 80))
        elif roll < 0.15 and tenure > timedelta(days=60):
            person.decline_at = self.now - timedelta(days=rng.uniform(30, 75))
        if person.account is not None and person.account.is_at_risk:
            self._set_at_risk_habits(person)

    def _set_at_risk_habits(self, person: DemoPerson) -> None:
        # A generator of its own, seeded by the member, so that the at-risk
        # accounts leave every other member's simulated history as it was.
        rng = random.Random(person.external_id)
        if rng.random() < AT_RISK_CHURN_SHARE:
            person.churn_at = self.now - timedelta(days=rng.uniform(35, 60))
            person.decline_at = None
        else:
            person.churn_at = None
            person.decline_at = self.now - timedelta(days=rng.uniform(35, 60))

    def set_consents(self, person: DemoPerson) -> None:
        """Give the member the consents that people of their role tend to give.

        The demo sign-ins get theirs for sure: the member a marketing consent,
        the champion valid advocacy and story consents, so that advocacy asks
        can be shown with it.
        """
        rng = self.rng
        is_demo = person.has_demo_password
        is_champion = person.role == "champion"

        if is_demo or rng.random() < 0.6:
            consent = DemoConsent(
                "marketing_email",
                "sign_up",
                "Ticked “Send me product news” on the sign-up form.",
                person.joined_at,
            )
            if not is_demo and rng.random() < 0.08:
                consent.revoked_at = self._moment_between(person.joined_at, self.now)
                consent.revoked_source = "email_link"
            person.consents.append(consent)

        if rng.random() < 0.2:
            person.consents.append(
                DemoConsent(
                    "product_research",
                    "privacy_page",
                    "Switched on “Product research” on the privacy page.",
                    self._moment_between(person.joined_at, self.now),
                )
            )

        # Some advocacy consents were given over a year ago and have expired.
        advocacy_share = ADVOCACY_CONSENT_SHARES.get(person.role, 0.0)
        if (is_demo and is_champion) or rng.random() < advocacy_share:
            days_ago = 60 if is_demo else rng.uniform(10, 500)
            granted = max(person.joined_at, self.now - timedelta(days=days_ago))
            person.consents.append(
                DemoConsent(
                    "advocacy_contact",
                    "privacy_page",
                    "Switched on “Advocacy contact” on the privacy page, for a year.",
                    granted,
                    expires_on=_add_years(granted.date(), 1),
                )
            )

        if is_champion and (is_demo or rng.random() < 0.4):
            days_ago = 45 if is_demo else rng.uniform(10, 400)
            granted = max(person.joined_at, self.now - timedelta(days=days_ago))
            person.consents.append(
                DemoConsent(
                    "story_publication",
                    "email_link",
                    "Approved the story draft and its use on the website for two "
                    "years, through the signed link in the request email.",
                    granted,
                    expires_on=_add_years(granted.date(), 2),
                )
            )

    def _moment_between(self, start: datetime, end: datetime) -> datetime:
        return start + (end - start) * self.rng.random()


def _name_key(first: str, last: str) -> str:
    return " ".join(f"{first} {last}".split()).casefold()


def _next_anniversary(start: date, today: date) -> date:
    """Return the first anniversary of `start` after today (Feb 29 becomes Feb 28)."""
    year = today.year
    while True:
        try:
            candidate = start.replace(year=year)
        except ValueError:
            candidate = date(year, 2, 28)
        if candidate > today and candidate > start:
            return candidate
        year += 1


def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return date(day.year + years, 2, 28)
