"""Admin pages beyond the model forms: CSV imports and the member merge.

`CsvImportMixin` gives a ModelAdmin an "Import" page at `import/`, and
`MemberMergeMixin` gives the member admin a confirmation page at `merge/`
for two duplicate members. Both call the membership services and only show
their results.
"""

import logging

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Model
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from apps.membership.models import Member
from apps.membership.services import imports
from apps.membership.services.merge import merge_members
from rm6.errors import DomainError

logger = logging.getLogger(__name__)


class CsvImportForm(forms.Form):
    file = forms.FileField(
        label="CSV file",
        help_text="UTF-8, with or without a byte order mark, with a header row.",
    )


class CsvImportMixin:
    """An "Import" page for a ModelAdmin, for staff with the add permission.

    Subclasses set `import_function` (a function of the imports service,
    wrapped in staticmethod), `import_columns`, `import_key` and
    `import_title`.
    """

    import_function = None
    import_columns: tuple[str, ...] = ()
    import_key = ""
    import_title = ""

    def get_urls(self):
        urls = [
            path(
                "import/",
                self.admin_site.admin_view(self.import_view),
                name=f"{self.opts.app_label}_{self.opts.model_name}_import",
            )
        ]
        return urls + super().get_urls()

    def import_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = CsvImportForm()
        result = None
        if request.method == "POST":
            form = CsvImportForm(request.POST, request.FILES)
        if form.is_bound and form.is_valid():
            upload = form.cleaned_data["file"]
            result = self.import_function(
                file=upload, actor=request.user, file_name=upload.name
            )
            if result.is_successful:
                self.message_user(
                    request,
                    f"Imported {upload.name}: {result.rows} row(s), "
                    f"{result.created} created, {result.updated} updated.",
                    messages.SUCCESS,
                )
                return redirect(
                    f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist"
                )

        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": self.import_title,
            "form": form,
            "result": result,
            "columns": self.import_columns,
            "key_column": self.import_key,
            "list_separator": imports.LIST_SEPARATOR,
            "max_rows": imports.MAX_ROWS,
            "max_megabytes": imports.MAX_FILE_BYTES // (1024 * 1024),
        }
        return TemplateResponse(request, "admin/membership/import.html", context)


class MergeForm(forms.Form):
    survivor = forms.TypedChoiceField(
        coerce=int,
        widget=forms.RadioSelect,
        label="Keep",
        help_text="The member kept. The other one's data moves to it, and it "
        "is deactivated.",
    )

    def __init__(self, *args, members: list[Member], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["survivor"].choices = [
            (member.pk, f"{member.email} (member {member.pk})") for member in members
        ]


def count_member_rows(member: Member) -> dict[str, int]:
    """Return how many rows of each related model point at the member.

    The reverse relations come from the model registry, so rows of apps that
    membership does not import are counted too.
    """
    counts = {}
    for relation in Member._meta.related_objects:
        related = relation.related_model
        if related is Member:
            continue
        rows = related._default_manager.filter(**{relation.field.name: member})
        counts[str(related._meta.verbose_name_plural)] = rows.count()
    return counts


class MemberMergeMixin:
    """The "Merge two duplicates" action and its confirmation page."""

    def get_urls(self):
        urls = [
            path(
                "merge/",
                self.admin_site.admin_view(self.merge_view),
                name=f"{self.opts.app_label}_{self.opts.model_name}_merge",
            )
        ]
        return urls + super().get_urls()

    @admin.action(description="Merge two duplicates…", permissions=["change"])
    def merge_duplicates(self, request: HttpRequest, queryset) -> HttpResponse | None:
        ids = sorted(queryset.values_list("pk", flat=True))
        if len(ids) != 2:
            self.message_user(
                request,
                f"Select exactly two members to merge; {len(ids)} were selected.",
                messages.ERROR,
            )
            return None
        url = reverse("admin:membership_member_merge")
        return HttpResponseRedirect(f"{url}?ids={ids[0]},{ids[1]}")

    def merge_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_change_permission(request):
            raise PermissionDenied
        members = self._get_merge_members(request)
        if members is None:
            self.message_user(
                request,
                "The merge page needs the ids of two members; select them in the "
                "list and run “Merge two duplicates…”.",
                messages.ERROR,
            )
            return redirect("admin:membership_member_changelist")

        form = MergeForm(members=members)
        if request.method == "POST":
            form = MergeForm(request.POST, members=members)
        if form.is_bound and form.is_valid():
            survivor_id = form.cleaned_data["survivor"]
            survivor = next(m for m in members if m.pk == survivor_id)
            duplicate = next(m for m in members if m.pk != survivor_id)
            try:
                entry = merge_members(
                    survivor=survivor, duplicate=duplicate, actor=request.user
                )
            except DomainError as error:
                logger.info(
                    "member merge rejected: survivor %s, duplicate %s, code %s",
                    survivor.pk,
                    duplicate.pk,
                    error.code,
                )
                form.add_error(None, error.message)
            else:
                self.message_user(
                    request,
                    f"Merged member {duplicate.pk} into member {survivor.pk}. "
                    f"Audit entry {entry.pk} lists what moved.",
                    messages.SUCCESS,
                )
                return redirect("admin:membership_member_change", survivor.pk)

        counts = [count_member_rows(member) for member in members]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Merge two duplicate members",
            "form": form,
            "members": members,
            "count_rows": [
                (label, counts[0][label], counts[1][label]) for label in counts[0]
            ],
        }
        return TemplateResponse(request, "admin/membership/member/merge.html", context)

    def _get_merge_members(self, request: HttpRequest) -> list[Model] | None:
        raw_ids = request.GET.get("ids", "").split(",")
        if len(raw_ids) != 2 or not all(raw.isdigit() for raw in raw_ids):
            return None
        members = list(
            Member.objects.select_related("user", "account")
            .filter(pk__in=[int(raw) for raw in raw_ids])
            .order_by("pk")
        )
        return members if len(members) == 2 else None
