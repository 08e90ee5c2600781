"""Consent endpoints: a member's consent status and history, grants, revocations.

Staff, including integration users, may read and change any member's
consents, and a member only their own. Anyone else gets 404 whether the
member exists or not.
"""

from collections.abc import Mapping

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from apps.membership.models import ConsentGrant, ConsentPurpose, Member
from apps.membership.selectors.consent import (
    ConsentStatus,
    access_consent_member,
    list_api_consent_sources,
    list_consent_history,
    list_consent_status,
)
from apps.membership.services.consent import grant_consent, revoke_consent
from rm6.errors import DomainError

MAX_EVIDENCE_LENGTH = 10_000
SOURCE_CHOICES_TEXT = ", ".join(ConsentGrant.Source.values)
MEMBER_ID_PARAMETER = OpenApiParameter(
    "member_id",
    OpenApiTypes.INT,
    OpenApiParameter.PATH,
    description="The id of the member whose consents to use.",
)


class ConsentPurposeSerializer(serializers.ModelSerializer):
    class Meta:
        model = ConsentPurpose
        fields = ["key", "name", "description", "is_active"]
        read_only_fields = fields


class ConsentGrantSerializer(serializers.ModelSerializer):
    purpose = serializers.SlugRelatedField(
        slug_field="key", read_only=True, help_text="The purpose's key."
    )
    expires_on = serializers.DateField(
        read_only=True,
        allow_null=True,
        help_text="Last day of validity in the member's time zone.",
    )
    expires_at = serializers.DateTimeField(
        read_only=True,
        allow_null=True,
        help_text="The instant the consent lapses: midnight after expires_on "
        "in the member's time zone.",
    )
    # A plain string, because an enum here would repeat the choices of
    # `source` under a second name in the schema.
    revoked_source = serializers.CharField(
        read_only=True,
        help_text="Where the consent was revoked, as one of the source values; "
        "empty while the grant is unrevoked.",
    )

    class Meta:
        model = ConsentGrant
        fields = [
            "id",
            "purpose",
            "source",
            "evidence",
            "granted_at",
            "expires_on",
            "expires_at",
            "revoked_at",
            "revoked_source",
            "recorded_by",
        ]
        read_only_fields = fields


class ConsentStatusSerializer(serializers.Serializer):
    purpose = serializers.CharField(
        source="purpose.key", help_text="The purpose's key."
    )
    name = serializers.CharField(source="purpose.name")
    description = serializers.CharField(source="purpose.description")
    state = serializers.ChoiceField(
        choices=[
            ConsentStatus.GRANTED,
            ConsentStatus.EXPIRED,
            ConsentStatus.NOT_GRANTED,
        ],
        help_text="granted, expired (the unrevoked grant has lapsed) or "
        "not_granted (never granted, or revoked).",
    )
    is_valid = serializers.BooleanField(
        help_text="Whether the consent allows contact now. False for every "
        "purpose of a deactivated or anonymised member."
    )
    grant = ConsentGrantSerializer(
        allow_null=True, help_text="The unrevoked grant, or null without one."
    )


class MemberConsentsSerializer(serializers.Serializer):
    member = serializers.IntegerField(source="member.pk")
    time_zone = serializers.CharField(
        source="member.time_zone",
        help_text="The member's IANA time zone, which expiry dates are read in.",
    )
    purposes = ConsentStatusSerializer(
        many=True, help_text="Every active purpose with its current state."
    )
    history = ConsentGrantSerializer(
        many=True, help_text="Every grant of the member, newest first."
    )


class ExpiryDateField(serializers.DateField):
    """A date in YYYY-MM-DD form whose error message repeats the bad value."""

    def to_internal_value(self, value):
        try:
            return super().to_internal_value(value)
        except ValidationError:
            raise ValidationError(
                f"{value!r} is not a valid date. Send the last day of validity "
                "as YYYY-MM-DD, for example 2026-12-31, or null for no end date."
            ) from None


class NewConsentGrantSerializer(serializers.Serializer):
    purpose = serializers.CharField(
        max_length=50, help_text="The key of an active consent purpose."
    )
    evidence = serializers.CharField(
        max_length=MAX_EVIDENCE_LENGTH,
        allow_blank=True,
        help_text="What the member saw and did, for example the form text.",
    )
    source = serializers.ChoiceField(
        choices=ConsentGrant.Source.choices,
        default=ConsentGrant.Source.API,
        help_text="Where the member gave consent. Members calling for "
        "themselves may send only api.",
        error_messages={
            "invalid_choice": (
                f'"{{input}}" is not a valid source. Use one of: {SOURCE_CHOICES_TEXT}.'
            )
        },
    )
    expires_on = ExpiryDateField(
        required=False,
        allow_null=True,
        default=None,
        help_text="Last day of validity in the member's time zone "
        "(YYYY-MM-DD), or null for no end date.",
    )

    def to_internal_value(self, data):
        # A misspelt field such as expires_at would otherwise be dropped and
        # grant a consent without end, so unknown fields are rejected.
        if isinstance(data, Mapping):
            unknown = sorted(str(name) for name in data if name not in self.fields)
            if unknown:
                raise ValidationError(
                    {
                        api_settings.NON_FIELD_ERRORS_KEY: [
                            f"Unknown field(s): {', '.join(unknown)}. The accepted "
                            "fields are purpose, evidence, source and expires_on."
                        ]
                    }
                )
        return super().to_internal_value(data)


def _get_member_or_404(request: Request, member_id: int) -> Member:
    try:
        return access_consent_member(user=request.user, member_id=member_id)
    except Member.DoesNotExist:
        raise NotFound(f"Member {member_id} not found.") from None


def _check_source_allowed(request: Request, source: str) -> None:
    if source not in list_api_consent_sources(user=request.user):
        raise ValidationError(
            {
                "source": [
                    f"Only staff may record the source {source!r}. Leave source "
                    "out, or send api."
                ]
            }
        )


class MemberConsentsView(APIView):
    """A member's consent status per purpose and history, and new grants."""

    parser_classes = [JSONParser]

    @extend_schema(parameters=[MEMBER_ID_PARAMETER], responses=MemberConsentsSerializer)
    def get(self, request: Request, member_id: int) -> Response:
        """Return the member's current consent per active purpose and history."""
        member = _get_member_or_404(request, member_id)

        data = {
            "member": member,
            "purposes": list_consent_status(member),
            "history": list_consent_history(member),
        }
        return Response(MemberConsentsSerializer(data).data)

    @extend_schema(
        parameters=[MEMBER_ID_PARAMETER],
        request=NewConsentGrantSerializer,
        responses={
            201: ConsentGrantSerializer,
            400: OpenApiResponse(
                description="Nothing was recorded. The body maps the invalid "
                "field to messages that name the value and the fix."
            ),
        },
    )
    def post(self, request: Request, member_id: int) -> Response:
        """Record a consent, revoking the member's previous grant for the purpose.

        The expiry date is read in the member's time zone, so the consent
        lapses at the first midnight after that date in that zone.
        """
        member = _get_member_or_404(request, member_id)
        serializer = NewConsentGrantSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        values = serializer.validated_data
        _check_source_allowed(request, values["source"])

        grant = grant_consent(
            member=member,
            purpose_key=values["purpose"],
            source=values["source"],
            evidence=values["evidence"],
            expires_on=values["expires_on"],
            recorded_by=request.user,
        )
        return Response(
            ConsentGrantSerializer(grant).data, status=status.HTTP_201_CREATED
        )


class MemberConsentDetailView(APIView):
    """One purpose of a member's consents, which DELETE revokes."""

    @extend_schema(
        parameters=[
            MEMBER_ID_PARAMETER,
            OpenApiParameter(
                "purpose_key",
                OpenApiTypes.STR,
                OpenApiParameter.PATH,
                description="The key of the consent purpose to revoke.",
            ),
            OpenApiParameter(
                "source",
                OpenApiTypes.STR,
                OpenApiParameter.QUERY,
                enum=ConsentGrant.Source.values,
                description="Where the member withdrew consent, api by default. "
                "Members calling for themselves may send only api.",
            ),
        ],
        request=None,
        responses={
            204: OpenApiResponse(
                description="The consent is revoked, or there was none to revoke."
            ),
            404: OpenApiResponse(
                description="The member is not visible, or the purpose is unknown."
            ),
        },
    )
    def delete(self, request: Request, member_id: int, purpose_key: str) -> Response:
        """Revoke the member's consent for a purpose, effective at once.

        Revoking when no consent is granted changes nothing and also returns 204.
        """
        member = _get_member_or_404(request, member_id)
        source = request.query_params.get("source", ConsentGrant.Source.API)
        if source not in ConsentGrant.Source.values:
            raise ValidationError(
                {
                    "source": [
                        f'"{source}" is not a valid source. Use one of: '
                        f"{SOURCE_CHOICES_TEXT}."
                    ]
                }
            )
        _check_source_allowed(request, source)

        try:
            revoke_consent(
                member=member,
                purpose_key=purpose_key,
                source=source,
                recorded_by=request.user,
            )
        except DomainError as error:
            if error.code == "unknown_purpose":
                raise NotFound(error.message) from error
            raise
        return Response(status=status.HTTP_204_NO_CONTENT)


class ConsentPurposeListView(generics.ListAPIView):
    """Every consent purpose, active or not, in display order.

    Grants need an active purpose, but revocations accept any purpose.
    """

    queryset = ConsentPurpose.objects.all()
    serializer_class = ConsentPurposeSerializer
    pagination_class = None
    filter_backends: list = []
