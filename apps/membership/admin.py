import logging
from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.widgets import AutocompleteSelect
from django.db.models import Count, QuerySet
from django.forms import BaseInlineFormSet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from apps.membership.admin_links import list_admin_links
from apps.membership.admin_sso import AccountIdentityProviderInline
from apps.membership.admin_tools import CsvImportMixin, MemberMergeMixin
from apps.membership.models import (
    Account,
    AccountAffiliation,
    AccountArr,
    AuditEntry,
    ConsentGrant,
    ConsentPurpose,
    DataSourceRun,
    Member,
)
from apps.membership.selectors.accounts import list_profile_match_rates
from apps.membership.services import assign_member_account, imports, sync_role_groups
from apps.membership.services.access import deactivate_member
from apps.membership.services.accounts import (
    ACCOUNT_FIELDS,
    add_affiliation,
    check_account,
    check_arr_effective_on,
    clean_arr,
    create_account_from_review,
    record_arr,
    remove_affiliation,
    save_account,
)
from apps.membership.services.roles import change_member_role
from rm6.errors import DomainError

logger = logging.getLogger(__name__)

# The account page lists this many members inline. The member changelist,
# filtered to the account, lists them all.
ACCOUNT_MEMBERS_SHOWN = 20


class ReadOnlyAdmin(admin.ModelAdmin):
    """Staff read these rows, and only services and workers write them."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


def render_related_pages(model: str, obj) -> str:
    """Return the links other apps registered for this admin page, as HTML."""
    if obj is None or obj.pk is None:
        return "Shown once saved."
    links = list_admin_links(model, obj)
    if not links:
        return "None"
    return format_html_join(
        ", ", '<a href="{}">{}</a>', ((url, label) for label, url in links)
    )


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
    """An inline formset limited to the first ACCOUNT_MEMBERS_SHOWN members."""

    def get_queryset(self):
        if not hasattr(self, "_limited_queryset"):
            self._limited_queryset = list(
                super().get_queryset()[:ACCOUNT_MEMBERS_SHOWN]
            )
        return self._limited_queryset


class AccountMemberInline(admin.TabularInline):
    """A read-only summary of an account's members, each edited on its own page."""

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


class AccountArrInline(admin.TabularInline):
    """The account's ARR history, newest first, recorded only through record_arr."""

    model = AccountArr
    fields = ["effective_on", "arr", "source", "recorded_at"]
    readonly_fields = fields
    ordering = ["-effective_on"]
    can_delete = False
    extra = 0
    verbose_name_plural = "ARR history (the ARR field above records today's value)"

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


def _add_domain_error(form: forms.BaseForm, error: DomainError) -> None:
    field = error.field if error.field in form.fields else None
    form.add_error(field, error.message)


class AccountAdminForm(forms.ModelForm):
    """The account form, checked by the same rules as the account services."""

    class Meta:
        model = Account
        fields = [*ACCOUNT_FIELDS]

    def _post_clean(self):
        super()._post_clean()
        if self.errors:
            return
        try:
            check_account(
                account=self.instance,
                changed_fields=self.changed_data,
                previous_domains=self.initial.get("email_domains") or (),
            )
        except DomainError as error:
            _add_domain_error(self, error)


@admin.register(Account)
class AccountAdmin(CsvImportMixin, admin.ModelAdmin):
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
    search_fields = [
        "name",
        "external_id",
        "email_domains",
        "identity_providers__social_app__name",
    ]
    date_hierarchy = "renewal_date"
    raw_id_fields = ["owner"]
    autocomplete_fields = ["parent"]
    readonly_fields = ["member_count", "related_pages", "created_at", "updated_at"]
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
        (
            None,
            {
                "fields": [
                    "time_zone",
                    "member_count",
                    "related_pages",
                    "created_at",
                    "updated_at",
                ]
            },
        ),
    ]
    inlines = [AccountMemberInline, AccountIdentityProviderInline, AccountArrInline]
    form = AccountAdminForm
    import_function = staticmethod(imports.import_accounts)
    import_columns = imports.ACCOUNT_COLUMNS
    import_key = "external_id"
    import_title = "Import accounts"

    def save_model(self, request, obj: Account, form, change: bool) -> None:
        # A changed ARR is recorded in the history as of today.
        save_account(
            account=obj,
            changed_fields=[f for f in form.changed_data if f in ACCOUNT_FIELDS],
            actor=request.user,
            arr_source="admin",
        )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Account]:
        # A GROUP BY query drops the model's default ordering, which the
        # autocomplete view's paginator needs.
        accounts = super().get_queryset(request)
        return accounts.annotate(member_total=Count("members")).order_by("name", "pk")

    @admin.display(description="related pages")
    def related_pages(self, account: Account) -> str:
        return render_related_pages("account", account)

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


class MemberActionForm(admin.helpers.ActionForm):
    """The changelist action bar, with the values the member actions set."""

    account = forms.ModelChoiceField(
        queryset=Account.objects.all(),
        required=False,
        widget=AutocompleteSelect(Member._meta.get_field("account"), admin.site),
        help_text="For the action “Assign to account”.",
    )
    role = forms.ChoiceField(
        choices=[("", "---------"), *Member.Role.choices],
        required=False,
        help_text="For the action “Change role”.",
    )
    segment = forms.ChoiceField(
        choices=Account.Segment.choices,
        initial=Account.Segment.SMB,
        required=False,
        help_text="For the action “Create account from email domain”.",
    )
    cs_tier = forms.ChoiceField(
        label="CS tier",
        choices=Account.CsTier.choices,
        initial=Account.CsTier.TECH_TOUCH,
        required=False,
        help_text="For the action “Create account from email domain”.",
    )


class ConsentGrantInline(admin.TabularInline):
    """The member's consent history, newest first; only services write grants."""

    model = ConsentGrant
    fk_name = "member"
    fields = [
        "purpose",
        "source",
        "granted_at",
        "expires_on",
        "expires_at",
        "revoked_at",
        "revoked_source",
        "recorded_by",
        "evidence",
    ]
    readonly_fields = fields
    ordering = ["-granted_at", "-id"]
    extra = 0
    can_delete = False
    show_change_link = True
    verbose_name_plural = "consent history"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("purpose", "recorded_by")

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Member)
class MemberAdmin(CsvImportMixin, MemberMergeMixin, admin.ModelAdmin):
    inlines = [ConsentGrantInline]
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
        "related_pages",
        "first_signed_in_at",
        "last_signed_in_at",
        "anonymised_at",
        "merged_into",
        # Deactivation goes through the "Deactivate" action, which also stops
        # the user's sign-ins and records an audit entry.
        "deactivated_at",
        "deactivation_reason",
    ]
    action_form = MemberActionForm
    actions = [
        "assign_to_account",
        "change_role",
        "create_account_from_domain",
        "merge_duplicates",
        "deactivate",
    ]
    import_function = staticmethod(imports.import_members)
    import_columns = imports.MEMBER_COLUMNS
    import_key = "email"
    import_title = "Import members"

    def changelist_view(self, request: HttpRequest, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "profile_match_rates": list_profile_match_rates(),
        }
        return super().changelist_view(request, extra_context=extra_context)

    def has_add_account_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("membership.add_account")

    def get_readonly_fields(self, request: HttpRequest, obj=None) -> list[str]:
        # An existing member changes role through the "Change role" action,
        # which checks who may grant it and records an audit entry.
        if obj is None:
            return self.readonly_fields
        return [*self.readonly_fields, "role"]

    def save_model(self, request, obj: Member, form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        # The role group and an admin's account permissions follow the role
        # and the account.
        if not change or "account" in form.changed_data:
            sync_role_groups(obj)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        # Members leave by deactivation or anonymisation. Deleting one would
        # cascade to their points ledger entries, which a trigger keeps
        # append-only, so the delete would fail anyway.
        return False

    @admin.display(description="related pages")
    def related_pages(self, member: Member) -> str:
        return render_related_pages("member", member)

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

    @admin.action(description="Change role", permissions=["change"])
    def change_role(self, request: HttpRequest, queryset: QuerySet[Member]):
        role = request.POST.get("role", "")
        if role not in Member.Role.values:
            self.message_user(
                request,
                "No role selected: choose one in the Role box next to the action, "
                "then run “Change role” again.",
                messages.ERROR,
            )
            return

        changed = 0
        for member in queryset.select_related("user"):
            try:
                change_member_role(member=member, role=role, actor=request.user)
            except DomainError as error:
                self.message_user(request, error.message, messages.ERROR)
            else:
                changed += 1

        label = Member.Role(role).label
        self.message_user(
            request, f"Set the role of {changed} member(s) to {label}.", messages.INFO
        )

    @admin.action(
        description="Create account from email domain", permissions=["add_account"]
    )
    def create_account_from_domain(
        self, request: HttpRequest, queryset: QuerySet[Member]
    ):
        segment = request.POST.get("segment", "")
        cs_tier = request.POST.get("cs_tier", "")
        created = []
        for member in queryset.select_related("user").order_by("pk"):
            # An account created for an earlier member may already have
            # taken this one in, as a colleague at the same domain.
            member.refresh_from_db(fields=["account"])
            if member.account_id in {account.pk for account in created}:
                continue
            try:
                account = create_account_from_review(
                    member=member, segment=segment, cs_tier=cs_tier, actor=request.user
                )
            except DomainError as error:
                logger.info(
                    "account from review rejected: member %s, code %s",
                    member.pk,
                    error.code,
                )
                self.message_user(
                    request, f"{member.email}: {error.message}", messages.ERROR
                )
            else:
                created.append(account)

        if created:
            names = ", ".join(account.name for account in created)
            self.message_user(
                request,
                f"Created {len(created)} account(s): {names}. Set their details "
                "on each account's page.",
                messages.SUCCESS,
            )

    @admin.action(description="Deactivate", permissions=["change"])
    def deactivate(self, request: HttpRequest, queryset: QuerySet[Member]):
        members = list(queryset)
        for member in members:
            deactivate_member(
                member=member, actor=request.user, reason="Deactivated in admin."
            )
        self.message_user(
            request, f"Deactivated {len(members)} member(s).", messages.SUCCESS
        )


def _current_health_score(member: Member):
    # The reverse one-to-one comes from select_related, which caches a missing
    # score too, so this costs no query per row.
    try:
        return member.health_score
    except Member.health_score.RelatedObjectDoesNotExist:
        return None


class AccountAffiliationForm(forms.ModelForm):
    class Meta:
        model = AccountAffiliation
        fields = ["member", "account", "relationship"]

    def clean(self):
        cleaned = super().clean()
        member, account = cleaned.get("member"), cleaned.get("account")
        if (
            member is not None
            and account is not None
            and member.account_id == account.pk
        ):
            self.add_error(
                "account",
                f"{account.name} is already {member.name}'s primary account, "
                "so it needs no affiliation.",
            )
        return cleaned

    def validate_unique(self):
        # Adding an existing affiliation again updates its relationship.
        pass


@admin.register(AccountAffiliation)
class AccountAffiliationAdmin(admin.ModelAdmin):
    list_display = ["member", "account", "relationship", "created_at"]
    list_select_related = ["member__user", "account"]
    list_filter = ["relationship"]
    search_fields = ["member__user__email", "member__display_name", "account__name"]
    autocomplete_fields = ["member", "account"]
    form = AccountAffiliationForm

    def get_readonly_fields(self, request: HttpRequest, obj=None) -> list[str]:
        # Moving an affiliation to another member or account is a removal
        # and an addition, each with its own audit entry.
        return ["member", "account"] if obj is not None else []

    def save_model(self, request, obj: AccountAffiliation, form, change: bool):
        affiliation = add_affiliation(
            member=obj.member,
            account=obj.account,
            relationship=obj.relationship,
            actor=request.user,
        )
        obj.pk = affiliation.pk
        obj.created_at = affiliation.created_at

    def delete_model(self, request, obj: AccountAffiliation) -> None:
        remove_affiliation(member=obj.member, account=obj.account, actor=request.user)

    def delete_queryset(self, request, queryset) -> None:
        for affiliation in queryset.select_related("member", "account"):
            self.delete_model(request, affiliation)


class AccountArrForm(forms.ModelForm):
    class Meta:
        model = AccountArr
        fields = ["account", "effective_on", "arr", "source"]
        help_texts = {
            "effective_on": "Today or earlier in the account's time zone. A value "
            "recorded again for the same day replaces the earlier one."
        }

    def clean(self):
        cleaned = super().clean()
        account = cleaned.get("account")
        effective_on = cleaned.get("effective_on")
        try:
            if cleaned.get("arr") is not None:
                cleaned["arr"] = clean_arr(cleaned["arr"])
            if account is not None and effective_on is not None:
                check_arr_effective_on(account=account, effective_on=effective_on)
        except DomainError as error:
            _add_domain_error(self, error)
        return cleaned

    def _get_validation_exclusions(self):
        # The unique constraint on (account, effective_on) is not checked,
        # because record_arr replaces the value of a day that has one.
        return {*super()._get_validation_exclusions(), "effective_on"}


@admin.register(AccountArr)
class AccountArrAdmin(admin.ModelAdmin):
    """ARR values, added through record_arr so the account's ARR follows them."""

    list_display = ["account", "effective_on", "arr", "source", "recorded_at"]
    list_select_related = ["account"]
    list_filter = ["source", "account__segment"]
    search_fields = ["account__name", "account__external_id"]
    date_hierarchy = "effective_on"
    autocomplete_fields = ["account"]
    form = AccountArrForm

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def save_model(self, request, obj: AccountArr, form, change: bool) -> None:
        entry = record_arr(
            account=obj.account,
            effective_on=obj.effective_on,
            arr=obj.arr,
            source=obj.source,
        )
        obj.pk = entry.pk
        obj.recorded_at = entry.recorded_at


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


@admin.register(DataSourceRun)
class DataSourceRunAdmin(ReadOnlyAdmin):
    """The last success and failure of each data source origin, read-only.

    CRM sync, usage ingestion and score computation write these rows when
    they run. The reporting dashboard shows how fresh each source is.
    """

    list_display = [
        "source",
        "origin",
        "last_success_at",
        "last_failure_at",
        "last_error",
    ]
    list_filter = ["source"]
    fields = ["source", "origin", "last_success_at", "last_failure_at", "last_error"]
