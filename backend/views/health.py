import logging

from django.db import DatabaseError, connection
from drf_yasg import openapi
from drf_yasg.utils import swagger_auto_schema
from rest_framework import status
from rest_framework.decorators import (
    api_view,
    authentication_classes,
    permission_classes,
    throttle_classes,
)
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from backend.integrations.broker import queue_status

logger = logging.getLogger(__name__)

health_schema = openapi.Schema(
    type=openapi.TYPE_OBJECT,
    properties={
        "status": openapi.Schema(type=openapi.TYPE_STRING, enum=["ok", "error"]),
        "database": openapi.Schema(type=openapi.TYPE_STRING, enum=["ok", "error"]),
        "queue": openapi.Schema(
            type=openapi.TYPE_STRING,
            enum=["ok", "down", "inline"],
            description=(
                "The task broker: `ok`, `down` (the API still works; background work waits in "
                "the outbox until the broker is back), or `inline` (no broker: tasks run "
                "in-process)."
            ),
        ),
    },
    required=["status", "database", "queue"],
)


@swagger_auto_schema(
    method="get",
    operation_summary="Liveness, database and task-queue check",
    operation_description=(
        "No token, no throttling. 200 `{status: ok, database: ok, queue}` when the database "
        "answers, whatever the broker's state (`queue`: ok, down or inline); 503 with "
        "`database: error` when the database does not (for load balancers and probes)."
    ),
    security=[],
    responses={200: health_schema, 503: health_schema},
)
@api_view(["GET"])
@authentication_classes([])
@permission_classes([AllowAny])
@throttle_classes([])
def health(request):
    queue = queue_status()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError:
        logger.warning("health check: database unreachable")
        return Response(
            {"status": "error", "database": "error", "queue": queue},
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
        )
    return Response({"status": "ok", "database": "ok", "queue": queue})


@swagger_auto_schema(
    method="get",
    operation_summary="Liveness only: the process answers",
    operation_description=(
        "No token, no throttling, no database or broker: 200 `{status: ok}` while this "
        "process serves requests. For liveness probes, so that a database outage (which "
        "`health/` reports with a 503, taking instances out of rotation) does not also "
        "restart every instance at once."
    ),
    security=[],
    responses={
        200: openapi.Schema(
            type=openapi.TYPE_OBJECT,
            properties={"status": openapi.Schema(type=openapi.TYPE_STRING, enum=["ok"])},
            required=["status"],
        )
    },
)
@api_view(["GET"])
@authentication_classes([])
@permission_classes([AllowAny])
@throttle_classes([])
def live(request):
    return Response({"status": "ok"})
