from django.urls import path

from apps.portal.views import hubs, onboarding

urlpatterns = [
    path("onboarding/", onboarding.path_list, name="onboarding"),
    path(
        "onboarding/steps/<int:pk>/",
        onboarding.step_toggle,
        name="onboarding_step_toggle",
    ),
    path("onboarding/accounts/", onboarding.account_list, name="onboarding_accounts"),
    path(
        "onboarding/accounts/<int:pk>/",
        onboarding.account_detail,
        name="onboarding_account",
    ),
    path(
        "onboarding/accounts/<int:pk>/members/<int:member_id>/",
        onboarding.account_member_detail,
        name="onboarding_account_member",
    ),
    path("onboarding/<slug:slug>/", onboarding.path_detail, name="onboarding_path"),
    path("hubs/", hubs.hub_list, name="hubs"),
    path("hubs/<slug:slug>/", hubs.hub_detail, name="hub"),
]
