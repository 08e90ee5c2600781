"""Template tags that let other apps' pages show case choices without
importing the portal."""

from django import template

from apps.portal.selectors.cases import EscalationState, get_escalation_state

register = template.Library()


@register.simple_tag(takes_context=True)
def case_escalation(context, topic) -> EscalationState | None:
    """Return the topic viewer's support choice, or None to show nothing."""
    request = context.get("request")
    if request is None or topic is None:
        return None
    return get_escalation_state(topic=topic, user=request.user)
