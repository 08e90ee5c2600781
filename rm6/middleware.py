"""Site-wide request checks that run before any view."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse

NUL = "\x00"


class RejectNulInQueryMiddleware:
    """Answer 400 to a query string that holds a NUL character.

    PostgreSQL text values cannot hold NUL, so a search or filter value with
    one would fail inside the database. Django's and DRF's form fields
    already reject NUL in submitted data, which leaves the query string.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        for name, values in request.GET.lists():
            if NUL in name or any(NUL in value for value in values):
                return _bad_request(request, name.replace(NUL, "\\x00"))
        return self.get_response(request)


def _bad_request(request: HttpRequest, name: str) -> HttpResponse:
    message = (
        f"The query parameter {name!r} contains a NUL character (%00), which "
        "no search or filter accepts; remove it and send the request again."
    )
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": message}, status=400)
    return HttpResponseBadRequest(message, content_type="text/plain; charset=utf-8")
