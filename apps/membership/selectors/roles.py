from apps.membership.models import Account
from apps.membership.roles import CAPABILITIES
from apps.membership.selectors import get_member_for_user


def has_capability(user, capability: str, obj: Account | None = None) -> bool:
    """Return whether the user may do `capability`, on the account `obj` if given.

    Staff have every capability. Anonymous visitors, inactive users and the
    users of deactivated or anonymised members have none. A member has
    a capability through their role group, or for an account-scoped one
    through an object permission on that account, which needs `obj`.
    Raise ValueError for a capability that apps.membership.roles does not
    define, so a misspelt name fails loudly instead of rejecting everyone, and
    TypeError for an `obj` that is not an Account.
    """
    if capability not in CAPABILITIES:
        raise ValueError(
            f"Unknown capability {capability!r}; define it in "
            "apps.membership.roles.CAPABILITIES."
        )
    if obj is not None and not isinstance(obj, Account):
        raise TypeError(
            f"Capabilities are scoped to an Account, not a {type(obj).__name__}; "
            "pass the account the object belongs to."
        )
    if not user.is_authenticated or not user.is_active:
        return False
    if user.is_staff:
        return True

    member = get_member_for_user(user)
    if member is None or member.is_deactivated or member.anonymised_at is not None:
        return False
    permission = CAPABILITIES[capability].permission
    if user.has_perm(permission):
        return True
    return obj is not None and user.has_perm(permission, obj)
