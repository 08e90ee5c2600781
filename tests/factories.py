import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from apps.community.models import Reply, Space, Topic
from apps.lifecycle.models import ActivityEvent
from apps.membership.models import Account, Member
from apps.portal.models import OnboardingPath, OnboardingStep

PASSWORD = "correct-horse-battery"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@acme.test")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def save_password(self, create, extracted, **kwargs):
        if create:
            self.save(update_fields=["password"])


class StaffFactory(UserFactory):
    is_staff = True
    email = factory.LazyAttribute(lambda u: f"{u.username}@vendor.test")


class AccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Account

    name = factory.Sequence(lambda n: f"Account {n}")
    email_domains = factory.Sequence(lambda n: [f"account{n}.test"])
    segment = Account.Segment.MID_MARKET
    cs_tier = Account.CsTier.POOLED
    arr = 50000


class MemberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Member

    account = factory.SubFactory(AccountFactory)
    user = factory.SubFactory(
        UserFactory,
        email=factory.LazyAttribute(
            lambda u: (
                f"{u.username}@{u.factory_parent.account.email_domains[0]}"
                if u.factory_parent.account
                else f"{u.username}@nowhere.test"
            )
        ),
    )
    role = Member.Role.MEMBER
    time_zone = "UTC"


class SpaceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Space

    name = factory.Sequence(lambda n: f"Space {n}")
    slug = factory.Sequence(lambda n: f"space-{n}")
    visibility = Space.Visibility.MEMBERS


class TopicFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Topic

    space = factory.SubFactory(SpaceFactory)
    author = factory.SubFactory(MemberFactory)
    title = factory.Sequence(lambda n: f"Question number {n}")
    body = "How do I configure the export?"
    created_at = factory.LazyFunction(timezone.now)
    last_activity_at = factory.LazyAttribute(lambda t: t.created_at)


class ReplyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Reply

    topic = factory.SubFactory(TopicFactory)
    author = factory.SubFactory(MemberFactory)
    body = "Open Settings, then Export."
    created_at = factory.LazyFunction(timezone.now)


class ActivityEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ActivityEvent

    member = factory.SubFactory(MemberFactory)
    account = factory.LazyAttribute(lambda e: e.member.account)
    kind = "product.report_exported"
    occurred_at = factory.LazyFunction(timezone.now)


class OnboardingPathFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = OnboardingPath
        django_get_or_create = ("slug",)

    title = "Getting started"
    slug = "getting-started"
    is_published = True


class OnboardingStepFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = OnboardingStep

    path = factory.SubFactory(OnboardingPathFactory)
    title = factory.Sequence(lambda n: f"Step {n}")
    completion_kind = "community.question_posted"
    position = factory.Sequence(lambda n: n)
