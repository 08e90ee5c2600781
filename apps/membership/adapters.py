from allauth.account.adapter import DefaultAccountAdapter

from apps.membership.services import create_member


class MemberAccountAdapter(DefaultAccountAdapter):
    """Give every person who signs up a member, matched to their account."""

    def save_user(self, request, user, form, commit=True):
        user = super().save_user(request, user, form, commit=commit)
        if commit:
            create_member(user=user)
        return user
