from django import forms

from apps.lifecycle.models import CsmTask


class CsmTaskFilterForm(forms.Form):
    """The filters of the staff task list; the defaults show my open tasks."""

    MINE = "mine"
    ANYONE = "anyone"
    UNASSIGNED = "unassigned"
    ANY_STATUS = "any"
    # Owner values that people type for "anyone", read as that value. Named
    # owner values and these aliases are read in any letter case.
    ANYONE_ALIASES = ("all", "any")

    owner = forms.ChoiceField(
        required=False,
        error_messages={
            "invalid_choice": (
                "Invalid owner %(value)r: use mine, anyone, unassigned or the "
                "ID of an active staff user."
            )
        },
    )
    status = forms.ChoiceField(
        required=False,
        choices=[*CsmTask.Status.choices, (ANY_STATUS, "Any status")],
        error_messages={
            "invalid_choice": (
                f"Invalid status %(value)r: use {', '.join(CsmTask.Status.values)} "
                f"or {ANY_STATUS}."
            )
        },
    )
    account = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)

    def __init__(self, data=None, *, owners=(), **kwargs):
        kwargs.setdefault(
            "initial", {"owner": self.MINE, "status": CsmTask.Status.OPEN}
        )
        if data is not None:
            owner = self._normalize_owner(data.get("owner"))
            if owner != data.get("owner"):
                data = data.copy()
                data["owner"] = owner
        super().__init__(data, **kwargs)
        self.fields["owner"].choices = [
            (self.MINE, "My tasks"),
            (self.ANYONE, "Anyone's tasks"),
            (self.UNASSIGNED, "Unassigned tasks"),
            *[(str(user.pk), user.get_full_name() or user.email) for user in owners],
        ]

    def _normalize_owner(self, owner):
        """Return a named owner value in lower case, with aliases as ANYONE.

        Staff type these values into the URL, so ?owner=ALL reads as "all".
        Other values, such as a user ID, are returned unchanged.
        """
        if not isinstance(owner, str):
            return owner
        name = owner.strip().lower()
        if name in self.ANYONE_ALIASES:
            return self.ANYONE
        if name in (self.MINE, self.ANYONE, self.UNASSIGNED):
            return name
        return owner

    def get_filters(self, *, user) -> dict:
        """Return the keyword arguments for list_csm_tasks.

        An invalid value falls back to that filter's default, and the form
        keeps the error to show.
        """
        values = {}
        if self.is_bound:
            self.is_valid()
            values = self.cleaned_data
        owner = values.get("owner") or self.MINE
        status = values.get("status") or CsmTask.Status.OPEN
        filters = {
            "owner_id": None,
            "is_unassigned": owner == self.UNASSIGNED,
            "status": None if status == self.ANY_STATUS else status,
            "account_id": values.get("account"),
        }
        if owner == self.MINE:
            filters["owner_id"] = user.pk
        elif owner not in (self.ANYONE, self.UNASSIGNED):
            filters["owner_id"] = int(owner)
        return filters


class CsmTaskCloseForm(forms.Form):
    """Mark a task done or dismissed, then return to the list at `next`."""

    status = forms.ChoiceField(
        choices=[
            (CsmTask.Status.DONE, "Done"),
            (CsmTask.Status.DISMISSED, "Dismissed"),
        ]
    )
    next = forms.CharField(required=False, max_length=2000)
