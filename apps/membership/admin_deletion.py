"""A base admin that keeps the objects whose history other rows record."""

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import model_ngettext, unquote
from django.core.exceptions import PermissionDenied
from django.db import router, transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext as _


class HistoryFoundError(Exception):
    """Raised when an object gained history after its delete page was shown."""


class KeptWithHistoryAdmin(admin.ModelAdmin):
    """An admin whose objects stay while read-only rows record their history.

    Without it, deleting such an object ends in admin blaming the user's
    permissions, because the history rows (a ReadOnlyAdmin) cannot be deleted
    from admin. Subclasses return, per object to keep, the reason and what to
    do instead. The delete page lists those reasons as protected and deletes
    nothing. The action "Delete selected" deletes the selected objects without
    history and keeps the others.
    """

    delete_confirmation_template = "admin/delete_keeping_history.html"
    delete_selected_confirmation_template = "admin/delete_selected_keeping_history.html"

    def get_kept_reasons(self, objs) -> dict[Any, str]:
        """Return, by primary key, why each object with history stays."""
        raise NotImplementedError

    def get_deleted_objects(self, objs, request: HttpRequest):
        # The delete page checks here without a lock. delete_model checks
        # again under a lock before the object goes.
        deleted, counts, perms_needed, protected = super().get_deleted_objects(
            objs, request
        )
        reasons = list(self.get_kept_reasons(objs).values())
        if reasons:
            return deleted, counts, set(), [*protected, *reasons]
        return deleted, counts, perms_needed, protected

    def delete_model(self, request: HttpRequest, obj) -> None:
        """Delete the object unless it gained history since the page was shown.

        Django's delete view runs this in its transaction, and the lock holds
        back any history row until that transaction ends, as in the bulk
        action below.
        """
        objects = self.model._default_manager
        locked = objects.select_for_update().filter(pk=obj.pk).first()
        if locked is not None:
            reason = self.get_kept_reasons([locked]).get(locked.pk)
            if reason:
                raise HistoryFoundError(reason)
        super().delete_model(request, obj)

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context=None
    ) -> HttpResponse:
        # The delete page lists these reasons in place of Django's text about
        # "protected related objects", which would name the object itself.
        obj = self.get_object(request, unquote(object_id))
        reasons = self.get_kept_reasons([obj]) if obj is not None else {}
        extra_context = {
            **(extra_context or {}),
            "kept_reasons": list(reasons.values()),
        }
        try:
            return super().delete_view(request, object_id, extra_context)
        except HistoryFoundError as error:
            # Django's transaction has rolled back, so nothing was deleted.
            self.message_user(
                request,
                f"Kept the {self.opts.verbose_name} {error}",
                messages.WARNING,
            )
            url = reverse(
                f"admin:{self.opts.app_label}_{self.opts.model_name}_change",
                args=[object_id],
                current_app=self.admin_site.name,
            )
            return HttpResponseRedirect(url)

    def get_actions(self, request: HttpRequest) -> dict:
        # The replacement keeps the name "delete_selected", which the
        # confirmation form posts, and Django's description, position and
        # delete permission.
        actions = super().get_actions(request)
        if "delete_selected" in actions:
            _django_action, name, description = actions["delete_selected"]
            action = type(self).delete_selected_keeping_history
            actions[name] = (action, name, description)
        return actions

    def delete_selected_keeping_history(
        self, request: HttpRequest, queryset: QuerySet
    ) -> TemplateResponse | None:
        """Delete the selected objects without history and keep the others.

        As with Django's action, the first request shows a confirmation page
        and the confirmed request, which has "post" set, deletes.
        """
        if request.POST.get("post"):
            self._delete_without_history(request, queryset)
            return None
        return self._confirm_delete(request, queryset)

    def _confirm_delete(
        self, request: HttpRequest, queryset: QuerySet
    ) -> TemplateResponse:
        objs = list(queryset)
        reasons = self.get_kept_reasons(objs)
        deletable = [obj for obj in objs if obj.pk not in reasons]
        deleted, counts, perms_needed, protected = super().get_deleted_objects(
            deletable, request
        )
        kept = list(reasons.values())

        objects_name = model_ngettext(queryset)
        if perms_needed or protected or not deletable:
            title = _("Cannot delete %(name)s") % {"name": objects_name}
        else:
            title = _("Delete multiple objects")
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "subtitle": None,
            "objects_name": str(objects_name),
            "deletable_objects": [deleted],
            "model_count": dict(counts).items(),
            "queryset": objs,
            "perms_lacking": perms_needed,
            "protected": protected,
            "kept": kept,
            "kept_name": model_ngettext(self.opts, len(kept)),
            "deleted_name": model_ngettext(self.opts, len(deletable)),
            "opts": self.opts,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "media": self.media,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(
            request, self.delete_selected_confirmation_template, context
        )

    def _delete_without_history(self, request: HttpRequest, queryset: QuerySet) -> None:
        pks = list(queryset.values_list("pk", flat=True))
        objects = self.model._default_manager

        with transaction.atomic(using=router.db_for_write(self.model)):
            # PostgreSQL checks a foreign key with a key-share lock on the
            # referenced row, so once an object is locked here, no history row
            # that refers to it can commit until this transaction ends. Under
            # READ COMMITTED the check below reads every row committed before
            # the lock was granted, and a row written meanwhile fails its key
            # check once its object is gone. Locking in primary key order
            # keeps two bulk deletions from deadlocking.
            locked = list(objects.select_for_update().filter(pk__in=pks).order_by("pk"))
            reasons = self.get_kept_reasons(locked)
            deletable = objects.filter(
                pk__in=[obj.pk for obj in locked if obj.pk not in reasons]
            )
            perms_needed = super().get_deleted_objects(deletable, request)[2]
            if perms_needed:
                raise PermissionDenied
            deleted_count = len(deletable)
            if deleted_count:
                self.log_deletions(request, deletable)
                self.delete_queryset(request, deletable)

        if deleted_count:
            self.message_user(
                request,
                _("Successfully deleted %(count)d %(items)s.")
                % {
                    "count": deleted_count,
                    "items": model_ngettext(self.opts, deleted_count),
                },
                messages.SUCCESS,
            )
        # The messages follow the changelist's order, as the confirmation did.
        for pk in pks:
            if pk in reasons:
                self.message_user(
                    request,
                    f"Kept the {self.opts.verbose_name} {reasons[pk]}",
                    messages.WARNING,
                )
