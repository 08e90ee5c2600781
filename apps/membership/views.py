from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.serializers.json import DjangoJSONEncoder
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from apps.membership.exports import build_member_export
from apps.membership.forms import DeleteAccountForm, ProfileForm, add_domain_error
from apps.membership.models import Member, list_time_zone_names
from apps.membership.panels import build_profile_sections
from apps.membership.selectors import get_member_for_user
from apps.membership.selectors.profiles import get_public_profile
from apps.membership.selectors.roles import has_capability
from apps.membership.services.profiles import delete_member_account, update_profile
from apps.membership.timezones import remember_time_zone
from rm6.errors import DomainError


def _render_no_member(request: HttpRequest) -> HttpResponse:
    # Staff users may have no member; their pages about "me" have nothing to show.
    return render(request, "membership/no_member.html", status=404)


@login_required
@require_http_methods(["GET", "POST"])
def profile_edit(request: HttpRequest) -> HttpResponse:
    """Show and save the signed-in member's profile, settings and visibility."""
    member = get_member_for_user(request.user)
    if member is None:
        return _render_no_member(request)

    if request.method == "POST":
        form = ProfileForm(request.POST)
    else:
        form = ProfileForm(initial=ProfileForm.initial_for(member))
    if form.is_bound and form.is_valid():
        try:
            member = update_profile(member=member, **form.cleaned_data)
        except DomainError as error:
            add_domain_error(form, error)
        else:
            remember_time_zone(request, member)
            messages.success(request, "Your profile is saved.")
            return redirect("membership:profile_edit")

    context = {
        "member": member,
        "form": form,
        "time_zones": sorted(list_time_zone_names()),
    }
    return render(request, "membership/profile_edit.html", context)


@login_required
@require_GET
def profile(request: HttpRequest, pk: int) -> HttpResponse:
    """Show a member's public profile to signed-in members and staff."""
    if not has_capability(request.user, "view_member_profiles"):
        raise PermissionDenied("Member profiles are for signed-in members.")
    try:
        member = Member.objects.select_related("user", "account").get(pk=pk)
    except Member.DoesNotExist:
        raise Http404("Member not found.") from None
    if member.merged_into_id is not None and member.anonymised_at is None:
        return redirect("membership:profile", pk=member.merged_into_id)

    profile = get_public_profile(member=member)
    context = {
        "profile": profile,
        "sections": build_profile_sections(member) if profile.shows_activity else {},
        "is_own_profile": member.user_id == request.user.pk,
    }
    return render(request, "membership/profile.html", context)


@login_required
@require_GET
@never_cache
def data_export(request: HttpRequest) -> HttpResponse:
    """Send the signed-in member everything the hub stores about them, as JSON."""
    member = get_member_for_user(request.user)
    if member is None:
        return _render_no_member(request)

    response = JsonResponse(
        build_member_export(member),
        encoder=DjangoJSONEncoder,
        json_dumps_params={"indent": 2},
    )
    filename = f"rm6-member-{member.pk}-data.json"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@login_required
@require_http_methods(["GET", "POST"])
def delete_account(request: HttpRequest) -> HttpResponse:
    """Ask the member to type their email, then anonymise them and sign out."""
    member = get_member_for_user(request.user)
    if member is None:
        return _render_no_member(request)

    data = request.POST if request.method == "POST" else None
    form = DeleteAccountForm(data, expected_email=request.user.email)
    if form.is_bound and form.is_valid():
        delete_member_account(member=member, actor=request.user)
        logout(request)
        messages.success(
            request,
            "Your account is deleted. Your posts stay in the community, "
            "shown as written by a deleted member.",
        )
        return redirect("account_login")

    return render(
        request, "membership/delete_account.html", {"member": member, "form": form}
    )
