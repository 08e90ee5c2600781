from django.urls import re_path

from apps.lifecycle.ingestion import views
from apps.lifecycle.ingestion.messages import MESSAGE_TYPES

app_name = "segment"

# The paths of Segment's tracking API: /v1/batch and one path per message
# type. Its clients call them without a trailing slash; a client configured
# with one gets the same view, since a redirect would drop a POST's body.
urlpatterns = [
    re_path(r"^batch/?$", views.receive, {"message_type": None}, name="batch"),
    *(
        re_path(
            rf"^{message_type}/?$",
            views.receive,
            {"message_type": message_type},
            name=message_type,
        )
        for message_type in MESSAGE_TYPES
    ),
]
