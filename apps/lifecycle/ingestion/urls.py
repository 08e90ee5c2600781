from django.urls import path

from apps.lifecycle.ingestion import views
from apps.lifecycle.ingestion.messages import MESSAGE_TYPES

app_name = "segment"

# The paths of Segment's tracking API, without trailing slashes, as its
# clients call them: /v1/batch and one path per message type.
urlpatterns = [
    path("batch", views.receive, {"message_type": None}, name="batch"),
    *(
        path(
            message_type,
            views.receive,
            {"message_type": message_type},
            name=message_type,
        )
        for message_type in MESSAGE_TYPES
    ),
]
