"""Simulate the demo members' activity: sign-ins, product use and community posts.

A few rules make the dashboards look like those of a real customer base:
- engagement per member is log-normal, so a few members are very active and
  many are quiet, and champions and contributors are more active than members;
- weekdays are busy, weekends quiet, and late December and August slow;
- members are active in the working hours of their own time zone;
- new members are busier in their first two weeks, some members decline in
  their last months (at risk) and some stop altogether (churned).
"""

import bisect
import random
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from rm6.demo import content
from rm6.demo.records import (
    DemoAccount,
    DemoEvent,
    DemoPerson,
    DemoReply,
    DemoTopic,
    weighted,
)

PRODUCT_KINDS = [
    ("product.dashboard_viewed", 8),
    ("product.report_exported", 4),
    ("product.dashboard_created", 1.5),
    ("product.alert_configured", 0.8),
    ("product.user_invited", 0.4),
    ("product.integration_connected", 0.2),
]
# Share of each space among member topics; "team" only for the first account.
TOPIC_SPACES = [("questions", 60), ("integrations", 20), ("ideas", 15), ("team", 10)]
TOPIC_KINDS = {
    "questions": [("question", 1)],
    "integrations": [("question", 7), ("discussion", 3)],
    "ideas": [("idea", 1)],
    "team": [("discussion", 6), ("question", 4)],
    "announcements": [("announcement", 1)],
}
WEEKDAY_FACTORS = [1.0, 1.05, 1.05, 1.0, 0.8, 0.12, 0.1]
ONBOARDING_DAYS = 14
VIEW_LOOKBACK = timedelta(days=21)
ANNOUNCEMENT_EVERY_DAYS = 21
# The chance that the author of an answered question accepts an answer: high
# when the author came back to thank the repliers, lower otherwise, so about
# a third to a half of the answered questions end solved.
SOLVED_SHARE_AFTER_THANKS = 0.85
SOLVED_SHARE_WITHOUT_THANKS = 0.35


class Activity:
    """The activity of one simulation, drawn from its random generator."""

    def __init__(
        self,
        *,
        rng: random.Random,
        now: datetime,
        days: int,
        first_account: DemoAccount,
    ):
        self.rng = rng
        self.now = now
        self.start = now - timedelta(days=days)
        self.first_account = first_account
        self.zones: dict[str, ZoneInfo] = {}
        # Titles of member topics so far, which later topics avoid repeating.
        self.topic_titles: set[str] = set()

    def _day_factor(self, day: date) -> float:
        factor = WEEKDAY_FACTORS[day.weekday()]
        if (day.month == 12 and day.day >= 20) or (day.month == 1 and day.day <= 2):
            factor *= 0.4
        elif day.month == 8:
            factor *= 0.8
        return factor

    def _zone(self, name: str) -> ZoneInfo:
        if name not in self.zones:
            self.zones[name] = ZoneInfo(name)
        return self.zones[name]

    def simulate_member(
        self,
        person: DemoPerson,
        events: list[DemoEvent],
        view_requests: list[tuple[DemoPerson, datetime, int]],
        topics: list[DemoTopic],
    ) -> None:
        """Add a member's sign-ins, product use, topics and view requests.

        Views wait in `view_requests` until every member is simulated, because
        a visit can view topics of members simulated later.
        """
        rng = self.rng
        zone = self._zone(person.time_zone)
        base = person.engagement / sum(WEEKDAY_FACTORS)
        first_day = max(self.start, person.joined_at).date()
        last = min(self.now, person.churn_at or self.now)
        product_kinds, product_weights = zip(*PRODUCT_KINDS, strict=True)

        day = first_day
        while day <= last.date():
            chance = base * self._day_factor(day)
            if (day - person.joined_at.date()).days < ONBOARDING_DAYS:
                chance *= 1.8
            if person.decline_at and day >= person.decline_at.date():
                chance *= 0.15
            if rng.random() >= min(0.95, chance):
                day += timedelta(days=1)
                continue

            hour = min(18, max(7, int(rng.gauss(11, 2.5))))
            local = datetime(day.year, day.month, day.day, hour, rng.randrange(60))
            moment = local.replace(tzinfo=zone).astimezone(UTC)
            day += timedelta(days=1)
            if not (person.joined_at <= moment <= last):
                continue
            person.active_times.append(moment)
            events.append(self._sign_in(person, moment))

            for _ in range(int(rng.expovariate(1 / person.product_mean))):
                moment_used = moment + timedelta(minutes=rng.randint(1, 120))
                kind = rng.choices(product_kinds, weights=product_weights)[0]
                events.append(
                    DemoEvent(
                        person,
                        kind,
                        min(moment_used, last),
                        properties=_usage(kind, rng),
                    )
                )
            views = int(rng.expovariate(1 / person.view_mean))
            if views:
                view_requests.append((person, moment, views))
            if rng.random() < person.topic_rate:
                posted = min(last, moment + timedelta(minutes=rng.randint(5, 90)))
                self._post_topic(person, posted, topics, events)

    def _sign_in(self, person: DemoPerson, moment: datetime) -> DemoEvent:
        # A monthly newsletter on the first days of each month brings some
        # members back, and its links carry the campaign.
        if moment.day <= 3 and self.rng.random() < 0.3:
            campaign = f"newsletter-{moment:%Y-%m}"
            return DemoEvent(
                person,
                "membership.signed_in",
                moment,
                campaign_id=campaign,
                utm_source="newsletter",
                utm_medium="email",
                utm_campaign=campaign,
            )
        return DemoEvent(person, "membership.signed_in", moment)

    def _post_topic(
        self,
        person: DemoPerson,
        posted: datetime,
        topics: list[DemoTopic],
        events: list[DemoEvent],
    ) -> None:
        spaces = TOPIC_SPACES
        if person.account is not self.first_account:
            spaces = [s for s in TOPIC_SPACES if s[0] != "team"]
        space_key = weighted(self.rng, spaces)
        kind = weighted(self.rng, TOPIC_KINDS[space_key])
        title, body = content.topic_text(space_key, self.rng, taken=self.topic_titles)
        topic = DemoTopic(space_key, person, kind, title, body, posted, posted)
        topics.append(topic)

        # The kinds post_topic records.
        if kind == "question":
            event_kind = "community.question_posted"
        else:
            event_kind = "community.topic_posted"
        events.append(
            DemoEvent(
                person,
                event_kind,
                posted,
                subject=topic,
                properties={"topic_kind": kind},
            )
        )

    def make_announcements(
        self, author: DemoPerson, events: list[DemoEvent]
    ) -> list[DemoTopic]:
        """Return announcements by `author`, one every three weeks.

        Posting announcements takes an account admin, because staff users have
        no member to post as.
        """
        topics = []
        moment = self.start + timedelta(days=3)
        while moment < self.now:
            title, body = content.topic_text("announcements", self.rng)
            posted = moment.replace(hour=15, minute=0, second=0, microsecond=0)
            moment += timedelta(days=ANNOUNCEMENT_EVERY_DAYS)
            if posted >= self.now or not author.is_around(posted):
                continue
            topic = DemoTopic(
                "announcements", author, "announcement", title, body, posted, posted
            )
            topics.append(topic)
            events.append(
                DemoEvent(
                    author,
                    "community.topic_posted",
                    posted,
                    subject=topic,
                    properties={"topic_kind": "announcement"},
                )
            )
        return topics

    def _reply_total(self, kind: str) -> int:
        rng = self.rng
        if kind == "question":
            return 0 if rng.random() < 0.14 else 1 + int(rng.expovariate(1 / 2))
        if kind == "idea":
            return rng.choice([0, 0, 1, 1, 2, 3, 5])
        if kind == "discussion":
            return 1 + int(rng.expovariate(1 / 3))
        return int(rng.expovariate(1 / 1.5))

    def make_replies(
        self,
        topics: list[DemoTopic],
        members: list[DemoPerson],
        events: list[DemoEvent],
    ) -> list[DemoReply]:
        """Return replies to `topics` and add their events.

        Only members of the first account reply in its private space.
        """
        rng = self.rng
        audiences = {}
        for key, people in (
            ("all", members),
            ("team", [m for m in members if m.account is self.first_account]),
        ):
            weights = [m.reply_weight for m in people]
            audiences[key] = (people, _cumulative(weights))

        replies = []
        for topic in topics:
            people, cum_weights = audiences[
                "team" if topic.space_key == "team" else "all"
            ]
            moment = topic.created_at
            for _ in range(self._reply_total(topic.kind)):
                # Replies follow each other after a few hours, some after days.
                moment += timedelta(hours=rng.lognormvariate(1.5, 1.2))
                if moment > self.now:
                    break
                author = self._pick_replier(topic, moment, people, cum_weights)
                if author is None:
                    continue
                is_own_topic = author is topic.author
                reply = DemoReply(
                    topic,
                    author,
                    content.reply_text(is_own_topic=is_own_topic, rng=rng),
                    moment,
                )
                replies.append(reply)
                topic.reply_count += 1
                topic.last_activity_at = moment
                events.append(
                    DemoEvent(
                        author,
                        "community.reply_posted",
                        moment,
                        subject=reply,
                        properties={"is_own_topic": is_own_topic},
                    )
                )
        return replies

    def _pick_replier(
        self,
        topic: DemoTopic,
        moment: datetime,
        people: list[DemoPerson],
        cum_weights: list[float],
    ) -> DemoPerson | None:
        # Authors come back to their own topic now and then to say thanks.
        if topic.author and topic.reply_count and self.rng.random() < 0.15:
            return topic.author if topic.author.is_around(moment) else None
        for _ in range(6):
            candidate = self.rng.choices(people, cum_weights=cum_weights)[0]
            if candidate is not topic.author and candidate.is_around(moment):
                return candidate
        return None

    def choose_solutions(
        self, topics: list[DemoTopic], replies: list[DemoReply]
    ) -> None:
        """Pick the accepted reply of some answered questions, and when.

        Only the question's author accepts here, and only a reply by someone
        else. An author who thanked the repliers accepts the last answer
        before the thanks, at the time of the thanks. Otherwise the author
        accepts one of the answers some hours after it was posted.
        """
        rng = self.rng
        replies_by_topic: dict[int, list[DemoReply]] = {}
        for reply in replies:
            replies_by_topic.setdefault(id(reply.topic), []).append(reply)

        for topic in topics:
            if topic.kind != "question" or topic.author is None:
                continue
            thread = sorted(replies_by_topic.get(id(topic), []), key=_reply_time)
            answers = [r for r in thread if r.author is not topic.author]
            if not answers:
                continue
            thanks = next(
                (
                    r
                    for r in thread
                    if r.author is topic.author and r.created_at > answers[0].created_at
                ),
                None,
            )
            if thanks is not None:
                if rng.random() >= SOLVED_SHARE_AFTER_THANKS:
                    continue
                accepted = [r for r in answers if r.created_at < thanks.created_at][-1]
                solved_at = thanks.created_at
            else:
                if rng.random() >= SOLVED_SHARE_WITHOUT_THANKS:
                    continue
                accepted = rng.choice(answers)
                delay = timedelta(hours=rng.lognormvariate(1.0, 1.0))
                solved_at = min(self.now, accepted.created_at + delay)
            if not topic.author.is_around(solved_at):
                continue
            topic.accepted_reply = accepted
            topic.solved_at = solved_at

    def make_views(
        self,
        topics: list[DemoTopic],
        view_requests: list[tuple[DemoPerson, datetime, int]],
        events: list[DemoEvent],
    ) -> None:
        """Add view events for topics posted in the three weeks before each visit.

        `topics` must be sorted by creation time.
        """
        times = [t.created_at for t in topics]
        for person, moment, count in view_requests:
            low = bisect.bisect_left(times, moment - VIEW_LOOKBACK)
            high = bisect.bisect_right(times, moment)
            if low == high:
                continue
            for _ in range(count):
                topic = topics[self.rng.randrange(low, high)]
                if (
                    topic.space_key == "team"
                    and person.account is not self.first_account
                ):
                    continue
                viewed = moment + timedelta(minutes=self.rng.randint(1, 60))
                if viewed > self.now or not person.is_around(viewed):
                    continue
                events.append(
                    DemoEvent(person, "community.topic_viewed", viewed, subject=topic)
                )

    def set_lifecycle_stage(self, person: DemoPerson) -> None:
        """Set the member's stage from their join date and simulated activity."""
        recent = self.now - timedelta(days=30)
        active_60 = sum(t >= self.now - timedelta(days=60) for t in person.active_times)
        if person.joined_at >= recent:
            person.lifecycle_stage = "onboarding"
        elif person.churn_at:
            person.lifecycle_stage = "churned"
        elif person.decline_at or not any(t >= recent for t in person.active_times):
            person.lifecycle_stage = "at_risk"
        elif active_60 >= 12:
            person.lifecycle_stage = "established"
        else:
            person.lifecycle_stage = "adopting"


def _cumulative(weights: list[float]) -> list[float]:
    total = 0.0
    cumulative = []
    for weight in weights:
        total += weight
        cumulative.append(total)
    return cumulative


def _usage(kind: str, rng: random.Random) -> dict:
    if kind == "product.report_exported":
        return {"format": rng.choice(["csv", "csv", "xlsx", "pdf"])}
    if kind == "product.dashboard_created":
        return {"widgets": rng.randint(2, 12)}
    return {}


def _reply_time(reply: DemoReply) -> datetime:
    return reply.created_at
