from rest_framework.routers import SimpleRouter

from apps.lifecycle.api.views import (
    AccountHealthScoreViewSet,
    ActivityEventViewSet,
    HealthScoreViewSet,
)

app_name = "lifecycle_api"

# A SimpleRouter, because the membership API shares the /api/v1/ prefix and a
# second DefaultRouter would register another API root view there.
router = SimpleRouter()
router.register("events", ActivityEventViewSet, basename="event")
router.register("health-scores", HealthScoreViewSet, basename="health-score")
router.register(
    "account-health-scores",
    AccountHealthScoreViewSet,
    basename="account-health-score",
)

urlpatterns = router.urls
