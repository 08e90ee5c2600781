"""API authentication classes, kept apart from rm6.api.

DRF resolves DEFAULT_AUTHENTICATION_CLASSES while it defines its views, so
this module must not import rest_framework.views, as rm6.api does.
"""

from rest_framework import authentication, exceptions


class TokenAuthentication(authentication.TokenAuthentication):
    """DRF's token authentication, which also explains a header of another scheme.

    DRF ignores an Authorization header whose scheme is not "Token", so a
    client that sends "Bearer <key>", as many APIs expect, got only
    "Authentication credentials were not provided.".
    """

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if header and header[0].lower() == b"bearer":
            raise exceptions.AuthenticationFailed(
                "The Authorization header uses the Bearer scheme, which this API "
                "does not read: send 'Authorization: Token <key>' instead."
            )
        return super().authenticate(request)
