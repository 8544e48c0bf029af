"""Which error codes an API operation can answer, for Swagger (backend/schema.py).

Two sources, so that the documentation follows the code instead of a list kept by hand:

- the domain codes: read from the source of the operation's handler and, transitively, of every
  function of backend/ it calls (`raise BookingError(..., code="sold_out")`, or a DomainError's
  default code), the way a reader would follow the calls;
- the codes every operation of its kind can answer: 401s where a token is read, 403 where a
  permission class beyond IsAuthenticated applies, 404 on paths with an id, 400/413/415 for
  bodies, 429 where throttled, 503 for the database.

A function passed somewhere without being called (`transaction.on_commit(notify)`) is not
followed: what runs after the response cannot change its status.
"""

import ast
import importlib
import inspect
import logging
import textwrap
from collections.abc import Callable, Iterable
from functools import lru_cache
from types import FunctionType, ModuleType
from typing import Any

from rest_framework.permissions import AllowAny, IsAuthenticated

from backend.errors import ErrorCode

logger = logging.getLogger(__name__)

# 401s from a token (simplejwt raises the last five itself).
TOKEN_CODES = (
    ErrorCode.AUTHENTICATION_FAILED,
    ErrorCode.TOKEN_NOT_VALID,
    ErrorCode.BAD_AUTHORIZATION_HEADER,
    ErrorCode.USER_NOT_FOUND,
    ErrorCode.USER_INACTIVE,
    ErrorCode.PASSWORD_CHANGED,
)
QUERY_CODES = (ErrorCode.INVALID, ErrorCode.TOO_MANY_FIELDS)
BODY_CODES = (ErrorCode.INVALID, ErrorCode.REQUEST_TOO_LARGE, ErrorCode.UNSUPPORTED_MEDIA_TYPE)
MAX_DEPTH = 12


# Whose code is followed: ours, and simplejwt's (its views and serializers raise the codes of
# the token endpoints).
FOLLOWED_PACKAGES = ("backend.", "rest_framework_simplejwt.")
# What a serializer or view class runs of its own when the handler uses it.
CLASS_ENTRY_POINTS = ("validate", "create", "update", "save", "to_internal_value")


def _is_followed(obj: Any) -> bool:
    return (getattr(obj, "__module__", None) or "").startswith(FOLLOWED_PACKAGES)


def class_entry_points(cls: type) -> list[Callable[..., Any]]:
    """Along the whole MRO: an override calling `super().validate()` runs its parent's too."""
    return [
        member
        for klass in cls.__mro__
        for name, member in vars(klass).items()
        if isinstance(member, FunctionType)
        and (name in CLASS_ENTRY_POINTS or name.startswith("validate_"))
        and _is_followed(member)
    ]


@lru_cache(maxsize=256)
def _codes_named_in(module_name: str, status: int) -> frozenset[ErrorCode]:
    """The registered codes of `status` that a module names as strings (in a table, say)."""
    try:
        tree = ast.parse(inspect.getsource(importlib.import_module(module_name)))
    except (OSError, TypeError, SyntaxError, ImportError):
        return frozenset()
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            member = ErrorCode.lookup(node.value)
            if member is not None and member.status == status:
                found.add(member)
    return frozenset(found)


def _codes_of_exception(exception_class: type, call: ast.Call, module: str) -> set[ErrorCode]:
    """The code a call like `BookingError("...", code="sold_out")` raises with. A code chosen
    at run time (`code=code`) is any code of the exception's status its module names."""
    code_value: Any = None
    if len(call.args) >= 2 and isinstance(call.args[1], ast.Constant):  # Exc(detail, code)
        code_value = call.args[1].value
    for keyword in call.keywords:
        if keyword.arg != "code":
            continue
        if isinstance(keyword.value, ast.Constant):
            code_value = keyword.value.value
        elif isinstance(keyword.value, ast.Attribute):  # ErrorCode.SOLD_OUT
            code_value = ErrorCode.__members__.get(keyword.value.attr)
        elif isinstance(status := getattr(exception_class, "status_code", None), int):
            return set(_codes_named_in(module, status))
    # Without a code of its own, the class's (a DomainError's, or e.g. simplejwt's InvalidToken
    # `token_not_valid`); an unregistered one is mapped by the handler, to a generic code.
    code_value = code_value or getattr(exception_class, "default_code", None)
    member = ErrorCode.lookup(code_value)
    return {member} if member is not None else set()


class _Resolver:
    """Follows calls from one function to the backend functions and exceptions they name."""

    def __init__(self) -> None:
        self.seen: set[Any] = set()
        self.codes: set[ErrorCode] = set()

    def visit(self, function: Callable[..., Any], owner: type | None, depth: int = 0) -> None:
        function = inspect.unwrap(getattr(function, "__func__", function))  # bound methods too
        if depth > MAX_DEPTH or function in self.seen or not isinstance(function, FunctionType):
            return
        self.seen.add(function)
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
        except (OSError, TypeError, SyntaxError):
            return
        namespace = dict(function.__globals__)
        if function.__closure__:  # @api_view keeps the view function in a closure
            namespace.update(inspect.getclosurevars(function).nonlocals)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # An import inside the function (one that would be a cycle at module level).
                module = importlib.import_module(node.module)
                for alias in node.names:
                    namespace[alias.asname or alias.name] = getattr(module, alias.name, None)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                self._follow_call(node, namespace, owner, depth)
            elif isinstance(node, ast.Name) and isinstance(
                namespace.get(node.id), dict | list | tuple
            ):
                # A dispatch table (WEBHOOK_HANDLERS): what it holds can be called.
                table = namespace[node.id]
                for item in table.values() if isinstance(table, dict) else table:
                    if isinstance(item, FunctionType) and _is_followed(item):
                        self.visit(item, None, depth + 1)

    def visit_class(self, cls: type, depth: int = 0) -> None:
        for method in class_entry_points(cls):
            self.visit(method, cls, depth + 1)

    def _follow_call(
        self, call: ast.Call, namespace: dict[str, Any], owner: type | None, depth: int
    ) -> None:
        target = self._target(call.func, namespace, owner)
        if isinstance(target, type) and issubclass(target, Exception):
            self.codes |= _codes_of_exception(target, call, namespace.get("__name__", ""))
        elif isinstance(target, type) and _is_followed(target):
            if target not in self.seen:
                self.seen.add(target)
                self.visit_class(target, depth)
        elif _is_followed(target) and callable(target):
            next_owner = owner if self._is_self_call(call.func) else None
            self.visit(target, next_owner, depth + 1)

    @staticmethod
    def _is_self_call(func: ast.expr) -> bool:
        return isinstance(func, ast.Attribute) and (
            isinstance(func.value, ast.Name) and func.value.id in ("self", "cls")
        )

    def _target(self, func: ast.expr, namespace: dict[str, Any], owner: type | None) -> Any:
        if isinstance(func, ast.Name):
            return namespace.get(func.id)
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            base_name = func.value.id
            if base_name in ("self", "cls"):
                return getattr(owner, func.attr, None) if owner is not None else None
            base = namespace.get(base_name)
            if isinstance(base, ModuleType | type):
                return getattr(base, func.attr, None)
        return None


@lru_cache(maxsize=512)
def domain_codes(
    handler: Callable[..., Any], owner: Any, serializer_class: Any = None
) -> frozenset[ErrorCode]:
    """Every registered code the handler's own code (and what it calls in backend/) raises,
    and its view's serializer (simplejwt's views validate through it)."""
    resolver = _Resolver()
    try:
        resolver.visit(handler, owner)
        if serializer_class is not None and _is_followed(serializer_class):
            resolver.visit_class(serializer_class)
    except Exception:  # the docs must never break the schema view
        logger.exception("could not follow the calls of %r", handler)
    return frozenset(resolver.codes)


def _serializer_class(view: Any) -> type | None:
    try:
        return view.get_serializer_class()
    except Exception:  # a view without one, or one that needs a request
        return getattr(view, "serializer_class", None)


def _requires_authentication(permission_classes: Iterable[type]) -> bool:
    return any(not issubclass(cls, AllowAny) for cls in permission_classes)


def _has_own_permissions(permission_classes: Iterable[type]) -> bool:
    return any(not issubclass(cls, (AllowAny, IsAuthenticated)) for cls in permission_classes)


def operation_codes(
    *,
    view: Any,
    handler: Callable[..., Any] | None,
    method: str,
    path_parameters: bool,
    query_parameters: list[str],
    has_body: bool,
) -> dict[int, list[ErrorCode]]:
    """{status: [codes]} this operation can answer, in registry order."""
    codes: set[ErrorCode] = set()
    if handler is not None:
        owner: Any = type(view)
        codes |= domain_codes(handler, owner, _serializer_class(view))
        # Codes a decorator answers before the handler runs (views/idempotency.py).
        codes |= set(getattr(handler, "extra_error_codes", ()))
    permission_classes = [type(permission) for permission in view.get_permissions()]
    if view.get_authenticators():
        codes |= set(TOKEN_CODES)
        if _requires_authentication(permission_classes):
            codes.add(ErrorCode.NOT_AUTHENTICATED)
    if _has_own_permissions(permission_classes):
        codes.add(ErrorCode.PERMISSION_DENIED)
    if path_parameters or "page" in query_parameters:  # an unknown id, or a page past the end
        codes.add(ErrorCode.NOT_FOUND)
    if query_parameters:
        codes |= set(QUERY_CODES)
    if has_body:
        codes |= set(BODY_CODES)
        for parser in view.get_parsers():
            if "json" in parser.media_type:
                codes.add(ErrorCode.INVALID_JSON)
            else:  # forms and multipart
                codes |= {ErrorCode.PARSE_ERROR, ErrorCode.TOO_MANY_FIELDS}
    if view.get_throttles():
        codes.add(ErrorCode.THROTTLED)
    codes.add(ErrorCode.DATABASE_UNAVAILABLE)
    if method.upper() != "GET":
        codes.add(ErrorCode.LOCK_TIMEOUT)  # only writes lock rows
    by_status: dict[int, list[ErrorCode]] = {}
    for member in ErrorCode:  # registry order, so the schema is stable
        if member in codes:
            by_status.setdefault(member.status, []).append(member)
    return by_status
