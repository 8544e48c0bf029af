"""`/api/sessions/`: the public catalog and a creator's management of their sessions."""

from django.http import Http404
from django.shortcuts import get_object_or_404
from django_filters import utils as filter_utils
from drf_yasg import openapi
from drf_yasg.utils import swagger_auto_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from backend import catalog_cache
from backend.filters import MAX_ID, MySessionFilter, SessionFilter
from backend.models import Booking, Session
from backend.pagination import CatalogPagination
from backend.permissions import IsCreator, IsCreatorOrReadOnly
from backend.schema import PAGE_PARAMS, filterset_parameters
from backend.selectors import catalog as selectors
from backend.serializers.catalog import (
    MySessionPageSerializer,
    MySessionSerializer,
    SessionAttendeePageSerializer,
    SessionAttendeeSerializer,
    SessionSerializer,
    SessionWriteSerializer,
)
from backend.services import catalog as services

ATTENDEE_STATUS_PARAM = openapi.Parameter(
    "status",
    openapi.IN_QUERY,
    description="Only bookings in this status.",
    type=openapi.TYPE_STRING,
    enum=list(Booking.Status.values),
)
MY_SESSIONS_PARAMS = filterset_parameters(MySessionFilter)


class SessionViewSet(viewsets.ModelViewSet):
    """Anyone browses published sessions; creators manage their own.

    Writes go through a queryset scoped to the creator, so someone else's session is a 404.
    DELETE removes a session nobody booked (204); a session with bookings is cancelled instead
    (its active bookings are cancelled and refunded) and returned with 200.
    """

    permission_classes = [IsCreatorOrReadOnly]
    # Only tells drf-yasg the model (integer ids); requests go through get_queryset().
    queryset = Session.objects.none()
    serializer_class = SessionSerializer
    filterset_class = SessionFilter
    pagination_class = CatalogPagination
    lookup_value_regex = r"[0-9]+"
    http_method_names = ["get", "post", "put", "patch", "delete", "head", "options"]

    @property
    def catalog_paginator(self) -> CatalogPagination:
        paginator = self.paginator
        if not isinstance(paginator, CatalogPagination):  # pagination_class above
            raise TypeError("the catalog needs CatalogPagination")
        return paginator

    def get_queryset(self):
        viewer = self.request.user
        if self.action in ("update", "partial_update", "destroy"):
            # Only the creator's own sessions exist for writes: others get 404, not 403.
            return Session.objects.owned_by(viewer)
        return selectors.session_visible_to(viewer=viewer)

    def filter_queryset(self, queryset):
        # The list applies its filters itself (_list); get_object() must find a past or
        # draft session by id, whatever the query string says.
        return queryset

    def get_serializer_class(self):
        if self.action in ("create", "update", "partial_update"):
            return SessionWriteSerializer
        return SessionSerializer

    def _session_response(self, session_id: int, status_code=status.HTTP_200_OK) -> Response:
        session = selectors.session_get_for_viewer(session_id=session_id, viewer=self.request.user)
        return Response(
            SessionSerializer(session, context=self.get_serializer_context()).data,
            status=status_code,
        )

    @swagger_auto_schema(
        operation_summary="The public catalog",
        operation_description=(
            "Published sessions that have not started (unless `start_after` says otherwise), "
            "soonest first; with `search` and no `ordering`, best matches first. Anonymous "
            "access allowed. `meeting_url` is null unless you are the creator or hold a "
            "confirmed booking."
        ),
    )
    def list(self, request, *args, **kwargs):
        # Anonymous pages come from the shared cache when current (backend/catalog_cache.py).
        slot = catalog_cache.open_slot(request)
        cached = catalog_cache.cached_answer(request, slot)
        if cached is not None:
            return cached
        return catalog_cache.rendered_answer(request, self._rendered(self._list(request)), slot)

    def _rendered(self, response: Response) -> Response:
        """Ready to render here (ETag, cache) as finalize_response would make it."""
        response.accepted_renderer = self.request.accepted_renderer
        response.accepted_media_type = self.request.accepted_media_type
        response.renderer_context = self.get_renderer_context()  # type: ignore[attr-defined]
        return response

    def _list(self, request) -> Response:
        # The hottest read: its SQL is compiled once per process and query shape, whatever the
        # filter values and page (selectors/compiled.py); rows, not model instances.
        query = SessionFilter.catalog_query(request.query_params)
        # The total grows with the catalog: shared by all readers until the catalog changes.
        total = catalog_cache.cached_total(query, lambda: selectors.catalog_count(query))
        bottom, top = self.catalog_paginator.page_bounds(total, request)
        rows = selectors.catalog_page(query, viewer=request.user, bottom=bottom, top=top)
        self.catalog_paginator.set_page_rows(rows)
        return self.get_paginated_response(self.get_serializer(rows, many=True).data)

    @swagger_auto_schema(
        operation_summary="One session",
        operation_description="Drafts are visible to their creator only (404 for others).",
        responses={200: SessionSerializer, 404: "Unknown, or someone else's draft"},
    )
    def retrieve(self, request, *args, **kwargs):
        # Reading is allowed to anyone (IsCreatorOrReadOnly), so there is no object check.
        # An id past the database's integer range cannot exist: 404, as get_object() says.
        session_id = int(kwargs["pk"])
        slot = catalog_cache.open_slot(request, session_id=session_id)
        cached = catalog_cache.cached_answer(request, slot)
        if cached is not None:
            return cached
        row = None
        if session_id <= MAX_ID:
            row = selectors.session_row_for_viewer(session_id=session_id, viewer=request.user)
        if row is None:
            raise Http404
        response = self._rendered(Response(self.get_serializer(row).data))
        return catalog_cache.rendered_answer(request, response, slot)

    @swagger_auto_schema(
        operation_summary="Create a session (creators)",
        request_body=SessionWriteSerializer,
        responses={
            201: SessionSerializer,
            400: "Invalid input; `price_below_minimum` or `amount_too_large` for a price Stripe "
            "could never charge (under the currency's minimum charge, or 10 seats over its "
            "largest amount)",
            403: "Not a creator",
        },
    )
    def create(self, request, *args, **kwargs):
        serializer = SessionWriteSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        session = services.session_create(creator=request.user, **serializer.validated_data)
        return self._session_response(session.pk, status.HTTP_201_CREATED)

    @swagger_auto_schema(
        operation_summary="Replace a session's fields (its creator)",
        request_body=SessionWriteSerializer,
        responses={200: SessionSerializer, 404: "Not yours", 409: "State conflict"},
    )
    def update(self, request, *args, **kwargs):
        partial = kwargs.pop("partial", False)
        instance = self.get_object()
        serializer = SessionWriteSerializer(
            instance, data=request.data, partial=partial, context={"request": request}
        )
        serializer.is_valid(raise_exception=True)
        services.session_update(
            session_id=instance.pk, actor=request.user, data=dict(serializer.validated_data)
        )
        return self._session_response(instance.pk)

    @swagger_auto_schema(
        operation_summary="Change some of a session's fields (its creator)",
        request_body=SessionWriteSerializer,
        responses={200: SessionSerializer, 404: "Not yours", 409: "State conflict"},
    )
    def partial_update(self, request, *args, **kwargs):
        kwargs["partial"] = True
        return self.update(request, *args, **kwargs)

    @swagger_auto_schema(
        operation_summary="Delete a session, or cancel it when it has bookings (its creator)",
        responses={
            204: "Deleted (nobody had booked it)",
            200: SessionSerializer,
            404: "Not yours",
        },
    )
    def destroy(self, request, *args, **kwargs):
        instance = self.get_object()
        outcome = services.session_delete(session_id=instance.pk, actor=request.user)
        if outcome is services.DeleteOutcome.DELETED:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return self._session_response(instance.pk)

    @swagger_auto_schema(
        operation_summary="My sessions in every status, with booking counts (creators)",
        manual_parameters=MY_SESSIONS_PARAMS,
        responses={200: MySessionPageSerializer},
    )
    @action(detail=False, methods=["get"], permission_classes=[IsCreator], filterset_class=None)
    def my_sessions(self, request):
        filterset = MySessionFilter(
            data=request.query_params,
            queryset=selectors.my_sessions(creator=request.user),
            request=request,
        )
        if not filterset.is_valid():
            raise filter_utils.translate_validation(filterset.errors)
        page = self.paginate_queryset(filterset.qs)
        serializer = MySessionSerializer(page, many=True, context=self.get_serializer_context())
        return self.get_paginated_response(serializer.data)

    @swagger_auto_schema(
        operation_summary="A session's attendees (its creator)",
        manual_parameters=[ATTENDEE_STATUS_PARAM, *PAGE_PARAMS],
        responses={200: SessionAttendeePageSerializer, 400: "Unknown status", 404: "Not yours"},
    )
    @action(detail=True, methods=["get"], permission_classes=[IsCreator], filterset_class=None)
    def bookings(self, request, pk=None):
        session = get_object_or_404(Session.objects.owned_by(request.user), pk=pk)
        attendees = selectors.session_attendees(session=session)
        wanted = request.query_params.get("status")
        if wanted:
            if wanted not in Booking.Status.values:
                raise ValidationError(
                    {"status": [f"Use one of: {', '.join(Booking.Status.values)}."]}
                )
            attendees = attendees.filter(status=wanted)
        page = self.paginate_queryset(attendees)
        serializer = SessionAttendeeSerializer(page, many=True)
        return self.get_paginated_response(serializer.data)
