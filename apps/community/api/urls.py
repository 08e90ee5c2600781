from rest_framework.routers import SimpleRouter

from apps.community.api.views import ReplyViewSet, SpaceViewSet, TopicViewSet

app_name = "community_api"

# A SimpleRouter, because other apps share the /api/v1/ prefix and a second
# DefaultRouter would register another API root view there.
router = SimpleRouter()
router.register("community/spaces", SpaceViewSet, basename="space")
router.register("community/topics", TopicViewSet, basename="topic")
router.register("community/replies", ReplyViewSet, basename="reply")

urlpatterns = router.urls
