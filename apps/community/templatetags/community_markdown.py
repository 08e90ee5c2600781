from django import template
from django.utils.safestring import SafeString

from apps.community.markdown import render_markdown

register = template.Library()


@register.filter(name="markdown")
def markdown_filter(text: str) -> SafeString:
    """Render a post body's Markdown as sanitised HTML."""
    return render_markdown(text)
