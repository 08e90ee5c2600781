"""A base form for the rows of the lifecycle admin's stacked inlines."""

import copy

from django import forms


class InlineRowForm(forms.ModelForm):
    """A model form that cleans a copy of its instance.

    Cleaning copies the typed values onto the instance, and a stacked inline
    titles each saved row with the instance it was built with. Cleaning a
    copy keeps that title at the stored values after a failed save, and
    save() stores the copy.
    """

    def full_clean(self) -> None:
        self.instance = copy.copy(self.instance)
        super().full_clean()
