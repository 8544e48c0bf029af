"""Sessions: validated by the API's serializer, saved by the catalog service."""

from typing import Any, cast

from django import forms
from django.contrib import admin
from django.http import HttpRequest, HttpResponse

from backend.admin.common import staff_user
from backend.admin.exports import SESSION_COLUMNS, csv_export_action
from backend.exceptions import DomainError
from backend.models import Session, User
from backend.serializers.catalog import SessionWriteSerializer
from backend.services.catalog import session_create, session_update


class SessionAdminForm(forms.ModelForm):
    """Checks what staff typed with the API's own SessionWriteSerializer.

    On a change only the edited fields are sent, as a PATCH would be (so an untouched start
    time in the past stays acceptable). `validated_data` is what the service then receives.
    `service_refusal` is set by SessionAdmin when the service refused the save: the form is
    shown again with that reason.
    """

    service_refusal: DomainError | None = None

    class Meta:
        model = Session
        fields = ["creator", *SessionWriteSerializer.Meta.fields]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.validated_data: dict[str, Any] = {}
        creator_field = self.fields.get("creator")
        if isinstance(creator_field, forms.ModelChoiceField):
            creator_field.queryset = User.objects.filter(role=User.Role.CREATOR)

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        if self.service_refusal is not None:
            self.add_error(None, f"Not saved: {self.service_refusal.message}")
        if self.errors:
            return cleaned
        editing = self.instance.pk is not None
        names = [
            name
            for name in SessionWriteSerializer.Meta.fields
            if name in cleaned and (not editing or name in self.changed_data)
        ]
        serializer = SessionWriteSerializer(
            instance=self.instance if editing else None,
            data={name: cleaned[name] for name in names},
            partial=editing,
        )
        if serializer.is_valid():
            self.validated_data = dict(serializer.validated_data)
        else:
            for name, errors in serializer.errors.items():
                self.add_error(name if name in self.fields else None, errors)
        return cleaned


class ServiceRefused(Exception):
    """A service refused an admin save; carries the domain error to show."""

    def __init__(self, error: DomainError):
        super().__init__(error.message)
        self.error = error


@admin.register(Session)
class SessionAdmin(admin.ModelAdmin):
    form = SessionAdminForm
    list_display = (
        "title",
        "creator",
        "start_time",
        "duration_minutes",
        "capacity",
        "price",
        "currency",
        "status",
        "created_at",
    )
    list_filter = ("status", "category", "is_online", "start_time")
    search_fields = ("title", "description", "creator__username", "creator__email")
    list_select_related = ("creator",)
    raw_id_fields = ("creator",)
    date_hierarchy = "start_time"
    actions = [
        csv_export_action(
            filename="sessions.csv", columns=SESSION_COLUMNS, select_related=("creator",)
        )
    ]

    def get_readonly_fields(self, request: HttpRequest, obj: Session | None = None) -> tuple:
        # A session's image is uploaded through the API; its creator never changes.
        return ("image", "creator") if obj is not None else ("image",)

    def has_change_permission(self, request: HttpRequest, obj: Session | None = None) -> bool:
        # Cancelled is final: its bookings were cancelled and refunded with it.
        if obj is not None and obj.status == Session.Status.CANCELLED:
            return False
        return super().has_change_permission(request, obj)

    def get_form(
        self, request: HttpRequest, obj: Session | None = None, change: bool = False, **kwargs: Any
    ) -> type[forms.ModelForm]:
        form = cast(type[SessionAdminForm], super().get_form(request, obj, change, **kwargs))
        form.service_refusal = getattr(request, "_session_admin_refusal", None)
        return form

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ServiceRefused as refused:
            # The admin's transaction rolled back; show the same input again with the reason.
            request._session_admin_refusal = refused.error  # type: ignore[attr-defined]
            return super().changeform_view(request, object_id, form_url, extra_context)

    def save_model(
        self, request: HttpRequest, obj: Session, form: SessionAdminForm, change: bool
    ) -> None:
        """Saves through the catalog service, never `obj.save()`.

        Staff act as themselves (`as_staff`), not as the session's creator, so a cancellation
        cascades to the bookings with the staff user as the actor.
        """
        try:
            if change:
                session = session_update(
                    session_id=obj.pk,
                    actor=staff_user(request),
                    data=form.validated_data,
                    as_staff=True,
                )
            else:
                session = session_create(
                    creator=form.cleaned_data["creator"], **form.validated_data
                )
        except DomainError as error:
            raise ServiceRefused(error) from error
        obj.pk = session.pk
        obj._state.adding = False
        obj.refresh_from_db()
