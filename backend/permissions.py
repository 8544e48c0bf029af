from rest_framework.permissions import SAFE_METHODS, BasePermission


class IsCreator(BasePermission):
    message = "Only creators can do this. Become a creator first."

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.is_creator)


class IsCreatorOrReadOnly(BasePermission):
    """Anyone may read; writing needs a creator account."""

    message = IsCreator.message

    def has_permission(self, request, view) -> bool:
        if request.method in SAFE_METHODS:
            return True
        return IsCreator().has_permission(request, view)
