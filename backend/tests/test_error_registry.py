"""The error-code registry (backend/errors.py) is complete and has no dead codes.

Reads the source of backend/ (and nginx.conf, whose own error pages answer codes too) the way
a grep would, but through the AST so that a `code=` spread over lines is not missed.
"""

import ast
import re
from pathlib import Path
from typing import Any

import pytest
from rest_framework import exceptions as drf_exceptions
from rest_framework_simplejwt import exceptions as jwt_exceptions

from backend import exceptions as domain
from backend.errors import ErrorCode
from backend.exceptions import BookingError, Conflict, DomainError, library_code
from backend.integrations import stripe_gateway

ROOT = Path(__file__).resolve().parents[2]
BACKEND = ROOT / "backend"
NGINX_CONF = ROOT / "nginx" / "nginx.conf"
# `code=` on these is not an API error code: Django/DRF field-level codes (they end up inside
# `errors`, the body's code is `invalid`) and social-core's internal classification, which
# integrations/oauth.py translates into a domain error.
NOT_API_CODES = {"ValidationError", "ErrorDetail", "AuthResponseError", "identity_from_code"}


def source_files() -> list[Path]:
    return [
        path
        for path in sorted(BACKEND.rglob("*.py"))
        if "tests" not in path.parts and "migrations" not in path.parts
    ]


def callee_name(call: ast.Call) -> str:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ast.unparse(func)


def code_literals() -> list[tuple[str, str, Any]]:
    """(where, callee or "dict"/"default_code", code) for every code literal in backend/."""
    found = []
    for path in source_files():
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.Call):
                for keyword in node.keywords:
                    if keyword.arg == "code" and isinstance(keyword.value, ast.Constant):
                        found.append((where, callee_name(node), keyword.value.value))
            elif isinstance(node, ast.Dict):
                for key, value in zip(node.keys, node.values, strict=True):
                    if (
                        isinstance(key, ast.Constant)
                        and key.value == "code"
                        and isinstance(value, ast.Constant)
                    ):
                        found.append((where, "dict", value.value))
            elif isinstance(node, ast.Assign):
                targets = [t.id for t in node.targets if isinstance(t, ast.Name)]
                if "default_code" in targets and isinstance(node.value, ast.Constant):
                    found.append((where, "default_code", node.value.value))
    return found


def member_references() -> set[str]:
    """Names X of every `ErrorCode.X` outside the registry itself."""
    names = set()
    for path in source_files():
        if path.name == "errors.py" and path.parent == BACKEND:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "ErrorCode"
            ):
                names.add(node.attr)
    return names


def string_constants() -> set[str]:
    """Every string in backend's code outside the registry: a code may be picked from a table
    (`FORBIDDEN_MESSAGES = {role: (message, "not_owner")}`) rather than written as `code=`."""
    strings = set()
    for path in source_files():
        if path.name == "errors.py" and path.parent == BACKEND:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                strings.add(node.value)
    return strings


def nginx_codes() -> set[str]:
    return set(re.findall(r'\\?"code\\?"\s*:\s*\\?"([a-z_]+)\\?"', NGINX_CONF.read_text()))


def test_the_source_is_read():
    # Guards the guards: if the AST walk found nothing, the two tests below would pass vacuously.
    literals = {code for _, _, code in code_literals()}
    assert {"sold_out", "already_booked", "payments_not_configured"} <= literals
    assert {"INVALID", "SERVER_ERROR", "NOT_FOUND"} <= member_references()


def test_every_code_used_in_backend_is_registered():
    unregistered = [
        (where, callee, code)
        for where, callee, code in code_literals()
        if callee not in NOT_API_CODES and code not in set(ErrorCode)
    ]
    assert unregistered == []


def test_every_registered_code_is_used_somewhere():
    used = {code for _, callee, code in code_literals() if callee not in NOT_API_CODES}
    used |= {ErrorCode[name].value for name in member_references() if name in ErrorCode.__members__}
    used |= nginx_codes()
    used |= string_constants() & set(ErrorCode)
    dead = sorted(set(ErrorCode) - used)
    assert dead == []


def resolve_exception(name: str) -> type[Exception] | None:
    for module in (domain, stripe_gateway, jwt_exceptions, drf_exceptions):
        candidate = getattr(module, name, None)
        if isinstance(candidate, type) and issubclass(candidate, Exception):
            return candidate
    return None


def test_each_raise_has_the_status_its_code_is_registered_with():
    mismatches = []
    for where, callee, code in code_literals():
        exception_class = resolve_exception(callee)
        if exception_class is None or callee in NOT_API_CODES:
            continue
        if exception_class.status_code != ErrorCode(code).status:
            mismatches.append((where, callee, code, exception_class.status_code))
    assert mismatches == []


def test_registry_members_have_a_status_and_a_meaning():
    for member in ErrorCode:
        assert re.fullmatch(r"[a-z][a-z_]*[a-z]", member.value), member
        assert 400 <= member.status <= 504, member
        assert member.meaning.strip(), member


def test_domain_errors_refuse_an_unregistered_code():
    with pytest.raises(ValueError, match="not a registered error code"):
        BookingError("Nope.", code="no_such_code")


def test_domain_errors_take_a_string_or_a_member_or_their_default():
    assert BookingError("Sold out.", code="sold_out").code is ErrorCode.SOLD_OUT
    assert BookingError("Sold out.", code=ErrorCode.SOLD_OUT).code is ErrorCode.SOLD_OUT
    assert Conflict("No.").code is ErrorCode.CONFLICT
    assert issubclass(BookingError, DomainError)


def test_library_exceptions_with_foreign_codes_answer_a_registered_one():
    assert library_code(drf_exceptions.NotFound(code="weird_code")) is ErrorCode.NOT_FOUND
    assert library_code(drf_exceptions.APIException(code="weird")) is ErrorCode.SERVER_ERROR
    assert library_code(drf_exceptions.Throttled()) is ErrorCode.THROTTLED
    assert (
        library_code(jwt_exceptions.AuthenticationFailed("x", code="user_inactive"))
        is ErrorCode.USER_INACTIVE
    )
