from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.widgets import AutocompleteSelect
from django.db.models import Count, QuerySet
from django.forms import BaseInlineFormSet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from apps.membership.models import (
    Account,
    AccountAffiliation,
    AccountArr,
    AccountIdentityProvider,
    AuditEntry,
    ConsentGrant,
    ConsentPurpose,
    Member,
)
from apps.membership.services import assign_member_account

# Rows the account page lists inline; the rest are one click away in the
# member changelist, filtered to the account.
ACCOUNT_MEMBERS_SHOWN = 20


class ReadOnlyAdmin(admin.ModelAdmin):
    """Staff read these rows; only services and workers write them."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class RenewalWindowFilter(admin.SimpleListFilter):
    """Accounts whose renewal falls in a window that customer success plans for."""

    title = "renewal"
    parameter_name = "renewal"

    WINDOWS = {"30": 30, "90": 90, "180": 180, "365": 365}

    def lookups(self, request, model_admin):
        return [
            ("overdue", "Overdue"),
            ("30", "In the next 30 days"),
            ("90", "In the next 90 days"),
            ("180", "In the next 180 days"),
            ("365", "In the next year"),
            ("none", "No renewal date"),
        ]

    def queryset(self, request, queryset):
        today = timezone.localdate()
        if self.value() == "overdue":
            return queryset.filter(renewal_date__lt=today)
        if self.value() == "none":
            return queryset.filter(renewal_date__isnull=True)
        if self.value() in self.WINDOWS:
            until = today + timedelta(days=self.WINDOWS[self.value()])
            return queryset.filter(renewal_date__gte=today, renewal_date__lte=until)
        return queryset


class LimitedMemberFormSet(BaseInlineFormSet):
    """An inline formset that lists only the first account members."""

    def get_queryset(self):
        if not hasattr(self, "_limited_queryset"):
            self._limited_queryset = list(
                super().get_queryset()[:ACCOUNT_MEMBERS_SHOWN]
            )
        return self._limited_queryset


class AccountMemberInline(admin.TabularInline):
    """A read-only summary of an account's members; edit them on their own page."""

    model = Member
    formset = LimitedMemberFormSet
    fields = ["email", "display_name", "role", "lifecycle_stage", "created_at"]
    readonly_fields = fields
    ordering = ["user__email"]
    show_change_link = True
    can_delete = False
    extra = 0
    verbose_name_plural = f"members (first {ACCOUNT_MEMBERS_SHOWN} by email)"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Member]:
        return super().get_queryset(request).select_related("user")

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="email")
    def email(self, member: Member) -> str:
        return member.user.email


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "segment",
        "cs_tier",
        "arr",
        "renewal_date",
        "owner",
        "member_count",
    ]
    list_select_related = ["owner"]
    list_filter = [
        "segment",
        "cs_tier",
        "owner",
        RenewalWindowFilter,
        "is_sso_required",
    ]
    search_fields = ["name", "external_id", "email_domains"]
    date_hierarchy = "renewal_date"
    raw_id_fields = ["owner"]
    autocomplete_fields = ["parent"]
    readonly_fields = ["member_count", "created_at", "updated_at"]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "name",
                    "external_id",
                    "email_domains",
                    "owner",
                    "parent",
                    "is_sso_required",
                ]
            },
        ),
        (
            "Contract",
            {"fields": ["segment", "cs_tier", "arr", "contract_start", "renewal_date"]},
        ),
        (None, {"fields": ["time_zone", "member_count", "created_at", "updated_at"]}),
    ]
    inlines = [AccountMemberInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Account]:
        return super().get_queryset(request).annotate(member_total=Count("members"))

    @admin.display(description="members", ordering="member_total")
    def member_count(self, account: Account) -> str:
        url = reverse("admin:membership_member_changelist")
        return format_html(
            '<a href="{}?account__id__exact={}">{}</a>',
            url,
            account.pk,
            account.member_total,
        )


class AwaitingAccountFilter(admin.SimpleListFilter):
    """The review queue: members whose email domain matched no account."""

    title = "account review"
    parameter_name = "awaiting_account"

    def lookups(self, request, model_admin):
        return [("yes", "Awaiting an account"), ("no", "Has an account")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(account__isnull=True)
        if self.value() == "no":
            return queryset.filter(account__isnull=False)
        return queryset


class MemberStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [
            ("active", "Active"),
            ("deactivated", "Deactivated"),
            ("anonymised", "Anonymised"),
        ]

    def queryset(self, request, queryset):
        if self.value() == "active":
            return queryset.filter(deactivated_at__isnull=True)
        if self.value() == "deactivated":
            return queryset.filter(deactivated_at__isnull=False)
        if self.value() == "anonymised":
            return queryset.filter(anonymised_at__isnull=False)
        return queryset


class AssignAccountActionForm(admin.helpers.ActionForm):
    """The changelist action bar, with the account to assign members to."""

    account = forms.ModelChoiceField(
        queryset=Account.objects.all(),
        required=False,
        widget=AutocompleteSelect(Member._meta.get_field("account"), admin.site),
        help_text="For the action “Assign to account”.",
    )


@admin.register(Member)
class MemberAdmin(admin.ModelAdmin):
    list_display = [
        "email",
        "name",
        "account",
        "role",
        "lifecycle_stage",
        "score",
        "band",
        "created_at",
    ]
    list_select_related = ["user", "account", "health_score"]
    list_filter = [
        AwaitingAccountFilter,
        "role",
        "lifecycle_stage",
        "account__segment",
        "health_score__band",
        MemberStatusFilter,
    ]
    search_fields = ["user__email", "display_name", "account__name"]
    date_hierarchy = "created_at"
    raw_id_fields = ["user"]
    autocomplete_fields = ["account"]
    readonly_fields = [
        "created_at",
        "score",
        "band",
        "first_signed_in_at",
        "last_signed_in_at",
        "anonymised_at",
    ]
    action_form = AssignAccountActionForm
    actions = ["assign_to_account"]

    @admin.display(description="email", ordering="user__email")
    def email(self, member: Member) -> str:
        return member.user.email

    # Not named health_score: the admin would show the reverse relation of
    # that name instead of calling the method.
    @admin.display(description="health score", ordering="health_score__score")
    def score(self, member: Member) -> int | None:
        score = _current_health_score(member)
        return score.score if score else None

    @admin.display(description="health band", ordering="health_score__band")
    def band(self, member: Member) -> str | None:
        score = _current_health_score(member)
        return score.get_band_display() if score else None

    @admin.action(description="Assign to account", permissions=["change"])
    def assign_to_account(self, request: HttpRequest, queryset: QuerySet[Member]):
        account_id = request.POST.get("account")
        account = Account.objects.filter(pk=account_id).first() if account_id else None
        if account is None:
            self.message_user(
                request,
                "No account selected: choose one in the Account box next to the "
                "action, then run “Assign to account” again.",
                messages.ERROR,
            )
            return

        members = list(queryset)
        for member in members:
            assign_member_account(member=member, account=account)

        self.message_user(
            request,
            f"Assigned {len(members)} member(s) to {account.name}.",
            messages.SUCCESS,
        )


def _current_health_score(member: Member):
    # The reverse one-to-one comes from select_related, which caches a missing
    # score too, so this costs no query per row.
    try:
        return member.health_score
    except Member.health_score.RelatedObjectDoesNotExist:
        return None


@admin.register(AccountAffiliation)
class AccountAffiliationAdmin(admin.ModelAdmin):
    list_display = ["member", "account", "relationship", "created_at"]
    list_select_related = ["member__user", "account"]
    list_filter = ["relationship"]
    search_fields = ["member__user__email", "member__display_name", "account__name"]
    autocomplete_fields = ["member", "account"]


@admin.register(AccountArr)
class AccountArrAdmin(admin.ModelAdmin):
    list_display = ["account", "effective_on", "arr", "source", "recorded_at"]
    list_select_related = ["account"]
    list_filter = ["source", "account__segment"]
    search_fields = ["account__name", "account__external_id"]
    date_hierarchy = "effective_on"
    autocomplete_fields = ["account"]


@admin.register(AccountIdentityProvider)
class AccountIdentityProviderAdmin(admin.ModelAdmin):
    list_display = ["account", "social_app", "provider"]
    list_select_related = ["account", "social_app"]
    search_fields = ["account__name", "social_app__name", "social_app__provider"]
    autocomplete_fields = ["account"]
    raw_id_fields = ["social_app"]

    @admin.display(description="provider", ordering="social_app__provider")
    def provider(self, link: AccountIdentityProvider) -> str:
        return link.social_app.provider


@admin.register(ConsentPurpose)
class ConsentPurposeAdmin(admin.ModelAdmin):
    list_display = ["name", "key", "is_active", "position"]
    list_editable = ["is_active", "position"]
    search_fields = ["name", "key"]
    prepopulated_fields = {"key": ["name"]}


class ConsentStateFilter(admin.SimpleListFilter):
    """Grants by whether they allow contact now, as consent checks see them."""

    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("valid", "Valid"), ("expired", "Expired"), ("revoked", "Revoked")]

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "valid":
            return queryset.filter(revoked_at__isnull=True).exclude(expires_at__lte=now)
        if self.value() == "expired":
            return queryset.filter(revoked_at__isnull=True, expires_at__lte=now)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


@admin.register(ConsentGrant)
class ConsentGrantAdmin(ReadOnlyAdmin):
    """Consent evidence: never edited here, so it stays what the member gave."""

    list_display = [
        "member",
        "purpose",
        "source",
        "granted_at",
        "expires_at",
        "revoked_at",
    ]
    list_select_related = ["member__user", "purpose"]
    list_filter = [ConsentStateFilter, "purpose", "source", "granted_at"]
    search_fields = ["member__user__email", "member__display_name"]
    date_hierarchy = "granted_at"


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "action", "actor", "member", "account"]
    list_select_related = ["actor", "member__user", "account"]
    list_filter = ["action", "created_at"]
    search_fields = ["action", "member__user__email", "account__name"]
    date_hierarchy = "created_at"
    show_full_result_count = False
