from rest_framework.routers import SimpleRouter

from apps.membership.api.views import AccountViewSet, MemberViewSet

app_name = "membership_api"

# A SimpleRouter, because the lifecycle API shares the /api/v1/ prefix and a
# second DefaultRouter would register another API root view there.
router = SimpleRouter()
router.register("accounts", AccountViewSet, basename="account")
router.register("members", MemberViewSet, basename="member")

urlpatterns = router.urls
