"""Generate the demo data set in memory, deterministically from one seed.

Nothing here touches the database. `Simulation.run` returns plain records
that `rm6.demo.writers` writes in bulk.
"""

import random
from datetime import datetime, timedelta

from rm6.demo.activity import Activity
from rm6.demo.population import LOCALES, Population
from rm6.demo.records import DemoDataSet, DemoEvent, DemoPerson


class Simulation:
    """One run of the generator. Call `run` once."""

    def __init__(
        self,
        *,
        accounts: int,
        members: int,
        days: int,
        seed: int,
        now: datetime,
        demo_sign_in_domain: str,
        id_prefix: str,
    ):
        from faker import Faker

        self.account_count = accounts
        self.member_count = members
        self.days = days
        self.now = now
        self.rng = random.Random(seed)
        fake = Faker(LOCALES)
        # One seed per locale: en_CA and en_AU draw from the en_US name lists,
        # so with a shared seed they repeat the en_US names in the same order.
        for locale in LOCALES:
            fake.seed_locale(locale, f"{seed}:{locale}")
        self.population = Population(
            rng=self.rng,
            fake=fake,
            now=now,
            days=days,
            sign_in_domain=demo_sign_in_domain,
            id_prefix=id_prefix,
        )

    def run(self) -> DemoDataSet:
        people = self.population
        staff = people.make_staff(account_count=self.account_count)
        accounts = people.make_accounts(
            count=self.account_count, staff_count=len(staff)
        )
        members = people.make_members(accounts, count=self.member_count)

        activity = Activity(
            rng=self.rng, now=self.now, days=self.days, first_account=accounts[0]
        )
        events: list[DemoEvent] = []
        view_requests: list[tuple[DemoPerson, datetime, int]] = []
        topics = activity.make_announcements(members[0], events)
        for person in members:
            activity.simulate_member(person, events, view_requests, topics)
            activity.set_lifecycle_stage(person)
            people.set_consents(person)
        topics.sort(key=lambda t: t.created_at)
        replies = activity.make_replies(topics, members, events)
        activity.make_views(topics, view_requests, events)
        # Drawn after everything else, so the activity above does not depend
        # on which questions end solved.
        activity.choose_solutions(topics, replies)
        events.sort(key=lambda e: e.occurred_at)

        return DemoDataSet(
            self.now - timedelta(days=self.days),
            staff,
            accounts,
            members,
            topics,
            replies,
            events,
        )
