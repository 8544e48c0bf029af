"""Review moderation: staff read reviews with their reports and hide or unhide them.

Hiding goes through services.reviews (the creator's rating is recounted in the same
transaction); ratings and texts are the author's, so the page is otherwise view-only.
"""

from django.contrib import admin, messages
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from backend.admin.common import ViewOnlyAdmin
from backend.models import Review
from backend.services.reviews import review_set_hidden


@admin.register(Review)
class ReviewAdmin(ViewOnlyAdmin):
    """A hidden review leaves every public list and every average; unhiding restores it."""

    list_display = ("id", "session", "author", "rating", "report_count", "is_hidden", "created_at")
    list_filter = ("is_hidden", "rating", "created_at")
    search_fields = ("comment", "author__username", "session__title", "reports__reason")
    list_select_related = ("session", "author")
    readonly_fields = ("report_reasons",)
    actions = ["hide_reviews", "unhide_reviews"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Review]:
        return super().get_queryset(request).annotate(reports_total=Count("reports"))

    @admin.display(description="reports", ordering="reports_total")
    def report_count(self, review: Review) -> int:
        # The annotation of get_queryset (one query for the page, not one per row).
        return int(getattr(review, "reports_total", 0))

    @admin.display(description="reports")
    def report_reasons(self, review: Review) -> str:
        # Plain text: the admin escapes it like every other value.
        return "\n".join(f"{report.reporter}: {report.reason}" for report in review.reports.all())

    def _set_hidden(self, request: HttpRequest, queryset: QuerySet[Review], hidden: bool) -> None:
        # One service call (one transaction, one recount) per review.
        ids = list(queryset.order_by("pk").values_list("pk", flat=True))
        for review_id in ids:
            review_set_hidden(review_id=review_id, hidden=hidden)
        verb = "hidden" if hidden else "visible again"
        self.message_user(request, f"{len(ids)} review(s) {verb}.", messages.SUCCESS)

    @admin.action(description="Hide (leave lists and averages)", permissions=["moderate"])
    def hide_reviews(self, request: HttpRequest, queryset: QuerySet[Review]) -> None:
        self._set_hidden(request, queryset, hidden=True)

    @admin.action(description="Unhide", permissions=["moderate"])
    def unhide_reviews(self, request: HttpRequest, queryset: QuerySet[Review]) -> None:
        self._set_hidden(request, queryset, hidden=False)

    def has_moderate_permission(self, request: HttpRequest) -> bool:
        """May hide and unhide: staff holding the model's change permission."""
        return request.user.has_perm("backend.change_review")
