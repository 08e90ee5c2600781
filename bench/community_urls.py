"""The product's URLs plus the minimal view the community benchmark compares with.

The minimal view reads 12 rows from PostgreSQL through the ORM and renders
them with a small template of its own, through the same middleware stack and
server as the product's pages. It lives here so that the product never
serves it.
"""

from django.http import HttpRequest, HttpResponse
from django.template import engines
from django.urls import path

from apps.community.models import Reply
from rm6.urls import urlpatterns as product_urlpatterns

MINIMAL_ROWS = 12

MINIMAL_TEMPLATE = engines["django"].from_string(
    """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Replies</title></head>
<body>
<ol>
{% for reply in replies %}<li id="reply-{{ reply.pk }}">
<time datetime="{{ reply.created_at|date:'c' }}">
{{ reply.created_at|date:'Y-m-d H:i' }}</time> {{ reply.body|truncatewords:30 }}</li>
{% endfor %}</ol>
</body>
</html>"""
)


def minimal_view(request: HttpRequest) -> HttpResponse:
    """Render 12 replies of the long topic, oldest first."""
    topic_id = request.GET.get("topic", "1")
    replies = list(
        Reply.objects.filter(topic_id=topic_id)
        .only("pk", "body", "created_at")
        .order_by("created_at", "id")[:MINIMAL_ROWS]
    )
    return HttpResponse(MINIMAL_TEMPLATE.render({"replies": replies}, request))


urlpatterns = [
    path("bench/minimal/", minimal_view, name="bench_minimal"),
    *product_urlpatterns,
]
