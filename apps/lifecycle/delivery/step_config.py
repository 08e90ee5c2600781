"""Checks of the built-in delivery actions' step config, run when admin saves a step.

Each check returns a list of (field, message) pairs, empty when the config is
valid. The handlers check the same things again when the step runs, because
a config can change after the step was saved, and admin's deletion check
does not cover an endpoint deleted in code or in the database shell.
"""

import re
from collections.abc import Iterable

from django.db import connections, router
from django.template import NodeList, TemplateSyntaxError, Variable
from django.template.base import Node, TextNode, VariableNode
from django.template.defaulttags import ForNode, WithNode

from apps.lifecycle.delivery.content import RejectedTagError, _get_engine, check_link
from apps.lifecycle.delivery.csm_tasks import MAX_DUE_IN_DAYS, is_valid_due_in_days
from apps.lifecycle.delivery.render_limits import find_render_limit_problem
from apps.lifecycle.models import WebhookDelivery, WebhookEndpoint
from apps.membership.models import ConsentPurpose

ConfigErrors = list[tuple[str, str]]

# A webhook's event kind is sent in the X-RM6-Event header and stored in
# WebhookDelivery.event_kind, so it must be a short single-line token.
WEBHOOK_EVENT_KIND_PATTERN = re.compile(r"[A-Za-z0-9_.:-]+")
WEBHOOK_EVENT_KIND_MAX_LENGTH = WebhookDelivery._meta.get_field("event_kind").max_length

# The end of Django's error for an unknown tag.
LOAD_SUGGESTION = " Did you forget to register or load this tag?"


def _check_fields(config: dict, allowed: set[str]) -> ConfigErrors:
    unknown = sorted(set(config) - allowed)
    return [
        (
            name,
            f"Unknown field {name!r}: this action reads only "
            f"{', '.join(sorted(allowed))}. Remove it or fix its name.",
        )
        for name in unknown
    ]


# The names step templates can use, by action: build_template_context and the
# handlers fill them. Any other name renders as an empty text.
MEMBER_VARIABLES = ("member_name", "account_name")
# A CSM task of an account play has no member, so only the account's name.
ACCOUNT_VARIABLES = ("account_name",)
EMAIL_VARIABLES = (*MEMBER_VARIABLES, "url", "links", "unsubscribe_url")


def _check_template(
    config: dict,
    name: str,
    *,
    required: bool,
    variables: tuple[str, ...] = MEMBER_VARIABLES,
) -> ConfigErrors:
    source = config.get(name)
    if source is None or (isinstance(source, str) and not source.strip()):
        if required:
            return [(name, f"Missing {name!r}: add a text under {name!r}.")]
        return []
    if not isinstance(source, str):
        return [(name, f"{name!r} must be a text, not {source!r}.")]
    try:
        template = _get_engine().from_string(source)
    except RejectedTagError as error:
        return [(name, f"{name!r} {error.problem}")]
    except TemplateSyntaxError as error:
        # Django suggests loading a library for an unknown tag, which step
        # templates cannot do.
        reason = str(error).removesuffix(LOAD_SUGGESTION).rstrip(".")
        return [(name, f"{name!r} is not a valid template: {reason}. Fix its tags.")]
    if _has_unclosed_tag(template.nodelist):
        return [
            (
                name,
                f"{name!r} has a {{{{ or {{% without its closing }}}} or %}}, so "
                "it would reach members as written. Close the tag.",
            )
        ]
    limit_problem = find_render_limit_problem(template)
    if limit_problem:
        return [(name, f"{name!r} {limit_problem}")]
    # Names that tags set with `as` are known everywhere in the template.
    known = set(variables) | _list_set_names(template.nodelist)
    unknown = sorted(_list_variables(template.nodelist, known))
    if unknown:
        return [
            (
                name,
                f"{name!r} uses {', '.join(unknown)}, which this step does not "
                f"know, so it would render empty. Use {', '.join(variables)}.",
            )
        ]
    return []


def check_step_template(config: dict, name: str, *, required: bool) -> ConfigErrors:
    """Return the errors of the step template under `name` in an action's config.

    Actions that other apps register use it for their texts. Such a text
    renders with `build_template_context` for a member, so it may use
    member_name and account_name.
    """
    return _check_template(config, name, required=required)


def check_account_templates(action: str, config: dict) -> ConfigErrors:
    """Return the template errors of a step in a play that enrols accounts."""
    if action != "csm_task" or not isinstance(config, dict):
        return []
    return [
        *_check_template(config, "title", required=False, variables=ACCOUNT_VARIABLES),
        *_check_template(
            config, "description", required=False, variables=ACCOUNT_VARIABLES
        ),
    ]


# Attributes through which tags such as {% now … as year %}, {% cycle … as c %}
# and {% regroup … as groups %} name the variable they set.
SETTING_ATTRIBUTES = ("asvar", "variable_name", "var_name")


def _list_set_names(nodelist: NodeList) -> set[str]:
    """Return the names that tags anywhere in `nodelist` set with `as`."""
    return {
        value
        for node in nodelist.get_nodes_by_type(Node)
        for attribute in SETTING_ATTRIBUTES
        if isinstance(value := getattr(node, attribute, None), str) and value
    }


def _root_names(expression) -> set[str]:
    """Return the first names of the variables an expression and its filters read."""
    variables = [expression.var]
    variables += [
        arg for _, args in expression.filters for is_lookup, arg in args if is_lookup
    ]
    return {
        variable.lookups[0]
        for variable in variables
        if isinstance(variable, Variable) and variable.lookups
    }


def _has_unclosed_tag(nodelist: NodeList) -> bool:
    """Return whether plain text contains a tag opening, which Django leaves as text."""
    return any(
        "{{" in node.s or "{%" in node.s
        for node in nodelist.get_nodes_by_type(TextNode)
    )


def _list_variables(nodelist: NodeList, known: set[str]) -> set[str]:
    """Return the unknown variable names that `{{ … }}` tags in `nodelist` read.

    Names that a `for` or `with` tag sets are known inside it. Names read
    only in tag arguments, such as an `if` condition, are not checked.
    """
    unknown: set[str] = set()
    for node in nodelist:
        inner = known
        if isinstance(node, VariableNode):
            unknown |= _root_names(node.filter_expression) - known
        elif isinstance(node, ForNode):
            inner = known | set(node.loopvars) | {"forloop"}
        elif isinstance(node, WithNode):
            inner = known | set(node.extra_context)
        # An if tag's nodelist joins the nodes of all its branches.
        for attribute in node.child_nodelists:
            child = getattr(node, attribute, None)
            if child:
                unknown |= _list_variables(child, inner)
    return unknown


def _check_text(config: dict, name: str) -> ConfigErrors:
    value = config.get(name)
    if value is not None and not isinstance(value, str):
        return [(name, f"{name!r} must be a text, not {value!r}.")]
    return []


def _check_link(config: dict, name: str) -> ConfigErrors:
    errors = _check_text(config, name)
    value = config.get(name)
    if errors or not value:
        return errors
    reason = check_link(value)
    return [(name, reason)] if reason else []


def check_in_app_config(config: dict) -> ConfigErrors:
    return [
        *_check_fields(config, {"title", "body", "url"}),
        *_check_template(config, "title", required=True),
        *_check_template(config, "body", required=False),
        *_check_link(config, "url"),
    ]


def check_email_config(config: dict) -> ConfigErrors:
    errors = [
        *_check_fields(config, {"subject", "body", "url", "links", "consent_purpose"}),
        *_check_template(config, "subject", required=True, variables=EMAIL_VARIABLES),
        *_check_template(config, "body", required=True, variables=EMAIL_VARIABLES),
        *_check_link(config, "url"),
        *_check_text(config, "consent_purpose"),
    ]
    purpose_key = config.get("consent_purpose")
    if (
        isinstance(purpose_key, str)
        and purpose_key
        and not ConsentPurpose.objects.filter(key=purpose_key, is_active=True).exists()
    ):
        # The handler would skip every member for lack of this consent.
        errors.append(
            (
                "consent_purpose",
                f"No active consent purpose has the key {purpose_key!r}: add it "
                "under Consent purposes, or remove consent_purpose to use "
                "marketing_email.",
            )
        )
    links = config.get("links")
    if links is not None and not (
        isinstance(links, dict) and all(isinstance(v, str) for v in links.values())
    ):
        errors.append(
            ("links", '"links" must map names to URLs, for example {"docs": "/docs/"}.')
        )
    elif links:
        reasons = [check_link(url) for url in links.values()]
        errors += [("links", reason) for reason in reasons if reason]
    return errors


def check_csm_task_config(config: dict) -> ConfigErrors:
    errors = [
        *_check_fields(config, {"title", "description", "due_in_days"}),
        *_check_template(config, "title", required=True),
        *_check_template(config, "description", required=False),
    ]
    days = config.get("due_in_days")
    if days is not None and not is_valid_due_in_days(days):
        errors.append(
            (
                "due_in_days",
                f"due_in_days {days!r} is invalid: use a whole number of days "
                f"from 0 to {MAX_DUE_IN_DAYS}, or leave it out for no due date.",
            )
        )
    return errors


def check_webhook_config(config: dict) -> ConfigErrors:
    errors = [
        *_check_fields(config, {"endpoint_id", "event_kind", "data"}),
        *_check_text(config, "event_kind"),
    ]
    endpoint_id = config.get("endpoint_id")
    is_id = isinstance(endpoint_id, int) and not isinstance(endpoint_id, bool)
    if not is_id or not WebhookEndpoint.objects.filter(pk=endpoint_id).exists():
        errors.append(("endpoint_id", describe_missing_endpoint(endpoint_id)))
    event_kind = config.get("event_kind")
    if isinstance(event_kind, str) and event_kind:
        is_token = WEBHOOK_EVENT_KIND_PATTERN.fullmatch(event_kind) is not None
        if not is_token or len(event_kind) > WEBHOOK_EVENT_KIND_MAX_LENGTH:
            errors.append(
                (
                    "event_kind",
                    f"event_kind {event_kind!r} is invalid: use up to "
                    f"{WEBHOOK_EVENT_KIND_MAX_LENGTH} letters, digits and . _ : - "
                    'characters, for example "play.welcome".',
                )
            )
    data = config.get("data")
    if data is not None and not isinstance(data, dict):
        errors.append(("data", f'"data" must be a JSON object, not {data!r}.'))
    return errors


def describe_missing_endpoint(endpoint_id) -> str:
    """Return the error for a webhook step whose endpoint_id names no endpoint."""
    return (
        f"endpoint_id {endpoint_id!r} is not an existing webhook endpoint: "
        "set it to the id of one listed under Webhook endpoints."
    )


def get_webhook_endpoint_id(action: str, config: object) -> int | None:
    """Return the endpoint id that a webhook step's config names, or None."""
    if action != "webhook" or not isinstance(config, dict):
        return None
    endpoint_id = config.get("endpoint_id")
    if isinstance(endpoint_id, int) and not isinstance(endpoint_id, bool):
        return endpoint_id
    return None


def lock_webhook_endpoints(endpoint_ids: Iterable[int]) -> set[int]:
    """Lock the endpoints' rows FOR KEY SHARE and return the ids that exist.

    Call it inside the transaction that saves the steps naming these
    endpoints. Admin's delete locks the endpoint's row FOR UPDATE and then
    looks for steps that name it, so the two serialise. A delete that comes
    second waits for the steps' commit and finds them. A save that comes
    second waits for the delete's commit and then finds the id missing.
    KEY SHARE conflicts only with FOR UPDATE and deletes, so saving steps
    does not hold back a rename or a secret rotation. Rows are locked in id
    order, as the bulk delete locks them, so that the two cannot deadlock.
    """
    ids = sorted(set(endpoint_ids))
    if not ids:
        return set()
    using = router.db_for_write(WebhookEndpoint)
    connection = connections[using]
    table = connection.ops.quote_name(WebhookEndpoint._meta.db_table)
    column = connection.ops.quote_name(WebhookEndpoint._meta.pk.column)
    # Django's select_for_update offers FOR UPDATE and FOR NO KEY UPDATE
    # only, and either would also block concurrent updates of the endpoint.
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {column} FROM {table} WHERE {column} = ANY(%s) "
            f"ORDER BY {column} FOR KEY SHARE",
            [ids],
        )
        return {row[0] for row in cursor.fetchall()}
