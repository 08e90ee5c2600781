"""Knowledge base pages: the article list and search, articles, feedback, and
the staff pages for editing, versions and overdue reviews."""

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.dateformat import format as format_date
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.community.markdown import render_markdown
from apps.community.search import SearchFilters, log_search_without_results
from apps.community.selectors.access import get_viewer
from apps.portal.models import Article
from apps.portal.selectors.knowledge import (
    diff_versions,
    get_content_freshness,
    get_member_feedback,
    list_article_versions,
    list_overdue_articles,
    list_visible_articles,
    search_articles,
)
from apps.portal.services.knowledge import (
    MAX_REVIEW_INTERVAL_DAYS,
    ArticleInput,
    create_article,
    give_article_feedback,
    mark_article_reviewed,
    record_article_view,
    update_article,
)
from rm6.errors import DomainError

OVERDUE_PER_PAGE = 25


def _page_number(request: HttpRequest) -> int:
    try:
        return max(int(request.GET.get("page", "1")), 1)
    except ValueError:
        return 1


def _require_staff(request: HttpRequest) -> None:
    if not request.user.is_staff:
        raise PermissionDenied("Only staff may edit and review articles.")


@require_GET
def article_list(request: HttpRequest) -> HttpResponse:
    """List the articles the visitor may read, or search them with `q`."""
    member, is_staff = get_viewer(request.user)
    article_page = search_articles(
        query=request.GET.get("q", ""),
        member=member,
        is_staff=is_staff,
        page=_page_number(request),
    )
    if article_page.query and article_page.page == 1 and not article_page.hits:
        # Logged as the community logs them, so the gap grouping sees them.
        log_search_without_results(
            query=article_page.query, member=member, filters=SearchFilters()
        )
    return render(
        request, "portal/knowledge/article_list.html", {"article_page": article_page}
    )


class FeedbackForm(forms.Form):
    helpful = forms.TypedChoiceField(
        choices=[("yes", "Yes"), ("no", "No")],
        coerce=lambda value: value == "yes",
        widget=forms.RadioSelect,
        label="Was this article helpful?",
    )
    comment = forms.CharField(
        max_length=1000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        label="Anything to add? (optional)",
    )


def _get_visible_article(request: HttpRequest, slug: str) -> Article:
    member, is_staff = get_viewer(request.user)
    articles = list_visible_articles(member=member, is_staff=is_staff)
    return get_object_or_404(articles.select_related("owner"), slug=slug)


@require_GET
def article_detail(request: HttpRequest, slug: str) -> HttpResponse:
    """Show an article, count the view and offer "was this helpful"."""
    article = _get_visible_article(request, slug)
    member, is_staff = get_viewer(request.user)
    record_article_view(article=article, member=member)
    return _render_detail(request, article, member=member, is_staff=is_staff)


def _render_detail(request, article, *, member, is_staff, form=None, status=200):
    feedback = get_member_feedback(article=article, member=member)
    if form is None:
        initial = {}
        if feedback is not None:
            initial = {
                "helpful": "yes" if feedback.helpful else "no",
                "comment": feedback.comment,
            }
        form = FeedbackForm(initial=initial)
    template = "portal/knowledge/article_detail.html"
    if request.headers.get("HX-Request"):
        template = "portal/knowledge/_feedback.html"
    return render(
        request,
        template,
        {
            "article": article,
            "body_html": render_markdown(article.body),
            "feedback": feedback,
            "form": form,
            "member": member,
            "is_staff": is_staff,
        },
        status=status,
    )


@login_required
@require_POST
def article_feedback(request: HttpRequest, slug: str) -> HttpResponse:
    """Store or change the member's "was this helpful" answer."""
    article = _get_visible_article(request, slug)
    member, is_staff = get_viewer(request.user)
    if member is None:
        raise PermissionDenied("Only members can rate articles.")
    form = FeedbackForm(request.POST)
    if form.is_valid():
        try:
            give_article_feedback(
                article=article,
                member=member,
                helpful=form.cleaned_data["helpful"],
                comment=form.cleaned_data["comment"],
            )
        except DomainError as error:
            form.add_error(
                error.field if error.field in form.fields else None, error.message
            )
    if not form.is_valid():
        return _render_detail(
            request, article, member=member, is_staff=is_staff, form=form, status=400
        )
    article.refresh_from_db(fields=["helpful_count", "not_helpful_count"])
    if not request.headers.get("HX-Request"):
        messages.success(request, "Thank you, your answer is saved.")
        return redirect("portal:article", slug=article.slug)
    return _render_detail(request, article, member=member, is_staff=is_staff)


class ArticleForm(forms.Form):
    title = forms.CharField(max_length=200)
    summary = forms.CharField(max_length=300, required=False)
    body = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 16}), help_text="Markdown."
    )
    audience = forms.ChoiceField(choices=Article.Audience.choices)
    owner = forms.ModelChoiceField(
        queryset=get_user_model().objects.filter(is_staff=True, is_active=True),
        required=False,
        help_text="The staff user who keeps the article correct.",
    )
    review_interval_days = forms.IntegerField(
        min_value=1,
        max_value=MAX_REVIEW_INTERVAL_DAYS,
        initial=180,
        help_text=f"Days between reviews, at most {MAX_REVIEW_INTERVAL_DAYS}.",
        error_messages={
            "max_value": (
                "The review interval %(show_value)s is too long; use at most "
                "%(limit_value)s days (ten years)."
            )
        },
    )
    is_published = forms.BooleanField(required=False, label="Published")
    note = forms.CharField(
        max_length=200, required=False, help_text="What changed, for the history."
    )

    def to_input(self) -> ArticleInput:
        data = self.cleaned_data
        return ArticleInput(
            title=data["title"],
            summary=data["summary"],
            body=data["body"],
            audience=data["audience"],
            owner_id=data["owner"].pk if data["owner"] else None,
            review_interval_days=data["review_interval_days"],
            is_published=data["is_published"],
        )


@login_required
@require_http_methods(["GET", "POST"])
def article_edit(request: HttpRequest, slug: str | None = None) -> HttpResponse:
    """Create an article, or edit one; each text change saves a version."""
    _require_staff(request)
    article = get_object_or_404(Article, slug=slug) if slug else None
    if request.method == "POST":
        form = ArticleForm(request.POST)
        if form.is_valid():
            try:
                if article is None:
                    article = create_article(
                        data=form.to_input(),
                        edited_by=request.user,
                        note=form.cleaned_data["note"] or "Created",
                    )
                else:
                    article = update_article(
                        article_id=article.pk,
                        data=form.to_input(),
                        edited_by=request.user,
                        note=form.cleaned_data["note"],
                    )
            except DomainError as error:
                field = error.field if error.field in form.fields else None
                form.add_error(field, error.message)
            else:
                messages.success(request, "The article is saved.")
                return redirect("portal:article", slug=article.slug)
    elif article is not None:
        form = ArticleForm(
            initial={
                "title": article.title,
                "summary": article.summary,
                "body": article.body,
                "audience": article.audience,
                "owner": article.owner_id,
                "review_interval_days": article.review_interval_days,
                "is_published": article.is_published,
            }
        )
    else:
        form = ArticleForm(initial={"owner": request.user.pk})
    return render(
        request,
        "portal/knowledge/article_form.html",
        {"form": form, "article": article},
    )


@login_required
@require_GET
def article_versions(request: HttpRequest, slug: str) -> HttpResponse:
    """List an article's versions for staff."""
    _require_staff(request)
    article = get_object_or_404(Article, slug=slug)
    paginator = Paginator(list_article_versions(article=article), 25)
    return render(
        request,
        "portal/knowledge/article_versions.html",
        {"article": article, "page_obj": paginator.get_page(request.GET.get("page"))},
    )


@login_required
@require_GET
def article_version_diff(request: HttpRequest, slug: str, number: int) -> HttpResponse:
    """Show what one version changed against the version before it."""
    _require_staff(request)
    article = get_object_or_404(Article, slug=slug)
    versions = {
        version.number: version
        for version in article.versions.filter(number__in=[number - 1, number])
    }
    if number not in versions:
        raise Http404(f"Version {number} of this article does not exist.")
    return render(
        request,
        "portal/knowledge/article_diff.html",
        {
            "article": article,
            "version": versions[number],
            "previous": versions.get(number - 1),
            "lines": diff_versions(
                older=versions.get(number - 1), newer=versions[number]
            ),
        },
    )


@login_required
@require_POST
def article_mark_reviewed(request: HttpRequest, slug: str) -> HttpResponse:
    """Record today's review of an article and move its due date on."""
    _require_staff(request)
    article = get_object_or_404(Article, slug=slug)
    article = mark_article_reviewed(article_id=article.pk, reviewed_by=request.user)
    messages.success(
        request,
        "Marked reviewed; the next review is due on "
        f"{format_date(article.review_due_on, 'j F Y')}.",
    )
    next_url = request.POST.get("next", "")
    if next_url == "overdue":
        return redirect("portal:overdue_reviews")
    return redirect("portal:article", slug=article.slug)


@login_required
@require_GET
def overdue_reviews(request: HttpRequest) -> HttpResponse:
    """List the signed-in staff user's overdue reviews, with content freshness."""
    _require_staff(request)
    paginator = Paginator(list_overdue_articles(owner=request.user), OVERDUE_PER_PAGE)
    return render(
        request,
        "portal/knowledge/overdue_reviews.html",
        {
            "page_obj": paginator.get_page(request.GET.get("page")),
            "freshness": get_content_freshness(),
        },
    )
