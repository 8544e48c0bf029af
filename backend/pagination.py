from typing import Any, TypeGuard, cast

from django.core.paginator import InvalidPage
from django.core.paginator import Paginator as DjangoPaginator
from django.db.models import F, OrderBy, QuerySet, Subquery
from rest_framework.exceptions import NotFound
from rest_framework.pagination import PageNumberPagination


def stable_order_terms(ordering, nulls_last=frozenset()) -> list[str | OrderBy]:
    """`ordering` ("-price", ...), then id, so pages never overlap or skip rows.

    Fields in `nulls_last` (nullable ones, like a rating) put their nulls last in both
    directions; the others keep plain ORDER BY, which their indexes serve.
    """
    terms: list[str | OrderBy] = []
    for term in ordering:
        name = term.lstrip("-")
        if name not in nulls_last:
            terms.append(term)
        elif term.startswith("-"):
            terms.append(F(name).desc(nulls_last=True))
        else:
            terms.append(F(name).asc(nulls_last=True))
    terms.append("-id" if ordering and ordering[0].startswith("-") else "id")
    return terms


class StandardPagination(PageNumberPagination):
    """`?page=` and `?page_size=` (capped at 100); a page past the end is a 404."""

    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100


class DeepPagePaginator(DjangoPaginator):
    """Pages past the first few pick their rows' ids first, then annotate only those rows.

    PostgreSQL computes the select list (the catalog's `seats_left` subquery, the search rank)
    for every row an OFFSET skips: page 387 of the catalog cost 30 times page 1
    (bench/growth.py). Here the page is `WHERE pk IN (SELECT pk ... ORDER BY ... LIMIT/OFFSET)`
    with the same ordering outside: the same rows in the same order, still one query, and the
    subqueries run for the page's rows only. Early pages (and querysets this cannot rewrite
    safely: grouped, distinct, combined) keep the plain slice, which is already cheap there,
    unless they are ordered by an annotation (search: best match first).
    """

    DEFER_FROM_OFFSET = 200

    def page(self, number):
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        top = bottom + self.per_page
        if top + self.orphans >= self.count:
            top = self.count
        rows = self.slice_rows(self.object_list, bottom, top)
        # Django's own hook for building the Page (django-stubs does not declare it).
        return self._get_page(rows, number, self)  # type: ignore[attr-defined]

    @classmethod
    def slice_rows(cls, rows, bottom: int, top: int):
        """Rows `bottom` to `top` of `rows`, ids first on deep pages (see the class)."""
        deep = bottom >= cls.DEFER_FROM_OFFSET
        if (deep or cls._orders_by_annotation(rows)) and cls._can_defer(rows):
            page_ids = rows.values("pk")[bottom:top]
            return rows.filter(pk__in=Subquery(page_ids))
        return rows[bottom:top]

    @staticmethod
    def _orders_by_annotation(rows: object) -> bool:
        """Ordered by a computed value (a search rank): PostgreSQL computes it, and with it
        the whole select list, for every matching row before it can sort, however early the
        page; ids first then keeps the select list to the page's rows (search grew with its
        matches, bench/growth.py)."""
        if not isinstance(rows, QuerySet):
            return False
        annotations = rows.query.annotations
        return any(
            isinstance(term, str) and term.lstrip("-") in annotations
            for term in rows.query.order_by
        )

    @staticmethod
    def _can_defer(rows: object) -> TypeGuard[QuerySet[Any]]:
        if not isinstance(rows, QuerySet):
            return False
        query = rows.query
        return not (query.group_by or query.distinct or query.combinator or query.is_sliced)


class CatalogPagination(StandardPagination):
    """The catalog's pages: like everyone's, with deep pages as cheap as early ones."""

    django_paginator_class = DeepPagePaginator

    def page_bounds(self, total: int, request) -> tuple[int, int]:
        """For rows the caller fetches itself, `total` of them: checks `?page=` as
        `paginate_queryset` does (404 past the end) and returns the page's [bottom, top).
        Give the rows to `set_page_rows` before `get_paginated_response`."""
        self.request = request
        # A range counts by len() and slices to a range: no query, the same page arithmetic.
        paginator = DjangoPaginator(range(total), self.get_page_size(request) or self.page_size)
        page_number = self.get_page_number(request, paginator)
        try:
            self.page = paginator.page(page_number)
        except InvalidPage as exc:
            raise NotFound(
                self.invalid_page_message.format(page_number=page_number, message=str(exc))
            ) from exc
        bounds = cast(range, self.page.object_list)
        return bounds.start, bounds.stop

    def set_page_rows(self, rows: list[Any]) -> None:
        if self.page is None:
            raise RuntimeError("page_bounds() first")
        self.page.object_list = rows
