from django.urls import path
from rest_framework.routers import SimpleRouter

from apps.membership.api import consents
from apps.membership.api.views import AccountViewSet, MemberViewSet

app_name = "membership_api"

# A SimpleRouter, because the lifecycle API shares the /api/v1/ prefix and a
# second DefaultRouter would register another API root view there.
router = SimpleRouter()
router.register("accounts", AccountViewSet, basename="account")
router.register("members", MemberViewSet, basename="member")

urlpatterns = router.urls
urlpatterns += [
    path(
        "members/<int:member_id>/consents/",
        consents.MemberConsentsView.as_view(),
        name="member-consents",
    ),
    path(
        "members/<int:member_id>/consents/<slug:purpose_key>/",
        consents.MemberConsentDetailView.as_view(),
        name="member-consent-detail",
    ),
    path(
        "consent-purposes/",
        consents.ConsentPurposeListView.as_view(),
        name="consent-purposes",
    ),
]
