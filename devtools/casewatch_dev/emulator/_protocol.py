"""The Cases REST-JSON wire protocol, driven by botocore's `connectcases` service model.

Routes (method + requestUri), request parsing (URI labels, query string, JSON body), server-side
input validation (required members, lengths, ranges, enums, unions) and error status codes all
come from the model, so the emulator cannot drift from what the real client sends and expects.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import botocore.session
from botocore.model import NoShapeFoundError, OperationModel, ServiceModel, Shape, StructureShape

JSON = dict[str, Any]

# Errors the service returns that the model does not list as shapes.
_UNMODELED_STATUS = {
    "SerializationException": 400,
    "UnknownOperationException": 404,
    "NotImplementedException": 501,
}
_MAX_REPORTED_ERRORS = 5


class ApiError(Exception):
    """An error response: a code from the model (e.g. `ValidationException`) and a message."""

    def __init__(self, code: str, message: str, **extra: Any) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.extra = extra


def not_found(resource_type: str, resource_id: str) -> ApiError:
    """A 404 with the members the model requires (`resourceId`, `resourceType`)."""
    return ApiError(
        "ResourceNotFoundException",
        f"{resource_type} not found",
        resourceId=resource_id,
        resourceType=resource_type,
    )


def validation(message: str) -> ApiError:
    return ApiError("ValidationException", message)


@cache
def service_model() -> ServiceModel:
    """The `connectcases` model of the installed botocore (loaded once)."""
    return botocore.session.get_session().get_service_model("connectcases")


@dataclass(frozen=True)
class Route:
    operation: OperationModel
    method: str
    pattern: re.Pattern[str]
    labels: tuple[str, ...]  # member names, in the order of the pattern's groups


def _compile(operation: OperationModel) -> Route:
    uri = operation.http["requestUri"].split("?", 1)[0]
    input_shape = operation.input_shape
    by_wire_name: dict[str, str] = {}
    if input_shape is not None:
        for name, member in input_shape.members.items():
            if member.serialization.get("location") == "uri":
                by_wire_name[member.serialization.get("name", name)] = name
    labels: list[str] = []
    regex = ""
    for part in re.split(r"(\{[^}]+\})", uri):
        if part.startswith("{"):
            label = part[1:-1]
            greedy = label.endswith("+")
            label = label.rstrip("+")
            labels.append(by_wire_name.get(label, label))
            regex += "(.+)" if greedy else "([^/]+)"
        else:
            regex += re.escape(part)
    return Route(operation, operation.http["method"], re.compile(f"^{regex}$"), tuple(labels))


@cache
def routes() -> tuple[Route, ...]:
    model = service_model()
    compiled = [_compile(model.operation_model(name)) for name in model.operation_names]
    # Literal-rich routes first, so a label never swallows a fixed path segment.
    return tuple(sorted(compiled, key=lambda r: (len(r.labels), -len(r.pattern.pattern))))


def match(method: str, raw_path: str) -> tuple[OperationModel, JSON, str]:
    """The operation a request addresses, its URI-label values and its raw query string."""
    parts = urlsplit(raw_path)
    for route in routes():
        if route.method != method:
            continue
        found = route.pattern.match(parts.path)
        if found:
            labels = {name: unquote(value) for name, value in zip(route.labels, found.groups(), strict=True)}
            return route.operation, labels, parts.query
    raise ApiError("UnknownOperationException", "no Cases operation at this method and path")


def _scalar(shape: Shape, raw: str) -> Any:
    if shape.type_name in {"integer", "long"}:
        return int(raw)
    if shape.type_name in {"double", "float"}:
        return float(raw)
    if shape.type_name == "boolean":
        return raw.lower() == "true"
    return raw


def parse_request(operation: OperationModel, labels: JSON, query: str, body: bytes) -> JSON:
    """The operation's input as a dict of member names (what botocore serialized)."""
    params: JSON = {}
    shape = operation.input_shape
    if body.strip():
        try:
            decoded = json.loads(body)
        except ValueError:
            raise ApiError("SerializationException", "the request body is not valid JSON") from None
        if not isinstance(decoded, dict):
            raise ApiError("SerializationException", "the request body must be a JSON object")
        params.update(decoded)
    if shape is None:
        return params
    query_values = parse_qs(query, keep_blank_values=True)
    for name, member in shape.members.items():
        location = member.serialization.get("location")
        if location == "querystring":
            raw = query_values.get(member.serialization.get("name", name))
            if raw:
                try:
                    if member.type_name == "list":
                        params[name] = raw
                    else:
                        params[name] = _scalar(member, raw[0])
                except ValueError:
                    raise validation(f"Value at '{name}' failed to satisfy constraint: wrong type") from None
        elif location == "uri" and name in labels:
            params[name] = labels[name]
    return params


# --- input validation --------------------------------------------------------------------------


def _length_errors(shape: Shape, size: int, path: str, errors: list[str]) -> None:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and size < low:
        errors.append(
            f"Value at '{path}' failed to satisfy constraint: "
            f"Member must have length greater than or equal to {low}"
        )
    if high is not None and size > high:
        errors.append(
            f"Value at '{path}' failed to satisfy constraint: "
            f"Member must have length less than or equal to {high}"
        )


def _check(shape: Shape, value: Any, path: str, errors: list[str]) -> None:
    kind = shape.type_name
    if value is None:
        return
    if kind == "structure":
        assert isinstance(shape, StructureShape)
        if not isinstance(value, dict):
            errors.append(f"Value at '{path}' failed to satisfy constraint: Member must be a structure")
            return
        for required in shape.required_members:
            if value.get(required) is None:
                errors.append(
                    f"Value at '{_join(path, required)}' failed to satisfy constraint: "
                    "Member must not be null"
                )
        if shape.metadata.get("union"):
            present = [k for k in shape.members if value.get(k) is not None]
            if len(present) != 1:
                errors.append(
                    f"Value at '{path}' failed to satisfy constraint: exactly one member must be set"
                )
        for name, member in shape.members.items():
            if name in value:
                _check(member, value[name], _join(path, name), errors)
    elif kind == "list":
        if not isinstance(value, list):
            errors.append(f"Value at '{path}' failed to satisfy constraint: Member must be a list")
            return
        _length_errors(shape, len(value), path, errors)
        member_shape = shape.member  # type: ignore[attr-defined]
        for index, item in enumerate(value):
            _check(member_shape, item, f"{path}.{index + 1}.member", errors)
    elif kind == "map":
        if not isinstance(value, dict):
            errors.append(f"Value at '{path}' failed to satisfy constraint: Member must be a map")
            return
        _length_errors(shape, len(value), path, errors)
    elif kind == "string":
        if not isinstance(value, str):
            errors.append(f"Value at '{path}' failed to satisfy constraint: Member must be a string")
            return
        _length_errors(shape, len(value), path, errors)
        enum: list[str] = shape.metadata.get("enum") or []
        if enum and value not in enum:
            errors.append(
                f"Value at '{path}' failed to satisfy constraint: "
                f"Member must satisfy enum value set: [{', '.join(enum)}]"
            )
    elif kind in {"integer", "long"}:
        if not isinstance(value, int) or isinstance(value, bool):
            errors.append(f"Value at '{path}' failed to satisfy constraint: Member must be an integer")
            return
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        if low is not None and value < low:
            errors.append(
                f"Value at '{path}' failed to satisfy constraint: "
                f"Member must be greater than or equal to {low}"
            )
        if high is not None and value > high:
            errors.append(
                f"Value at '{path}' failed to satisfy constraint: Member must be less than or equal to {high}"
            )
    elif kind in {"double", "float"}:
        if not isinstance(value, int | float) or isinstance(value, bool):
            errors.append(f"Value at '{path}' failed to satisfy constraint: Member must be a number")
    elif kind == "boolean" and not isinstance(value, bool):
        errors.append(f"Value at '{path}' failed to satisfy constraint: Member must be a boolean")


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def validate_input(operation: OperationModel, params: JSON) -> None:
    """Raise a ValidationException the way the service reports constraint violations."""
    shape = operation.input_shape
    if shape is None:
        return
    errors: list[str] = []
    _check(shape, params, "", errors)
    if errors:
        count = len(errors)
        noun = "error" if count == 1 else "errors"
        shown = "; ".join(errors[:_MAX_REPORTED_ERRORS])
        raise validation(f"{count} validation {noun} detected: {shown}")


def error_status(code: str) -> int:
    """The HTTP status of an error code, from the model's error shape."""
    if code in _UNMODELED_STATUS:
        return _UNMODELED_STATUS[code]
    try:
        shape = service_model().shape_for(code)
    except NoShapeFoundError:  # an unknown code is a server bug: report it as a 500
        return 500
    status = shape.metadata.get("error", {}).get("httpStatusCode", 500)
    return int(status)


def error_code_for_status(status: int) -> str:
    """The modeled error code answered with `status` (used by fault injection)."""
    for shape_name in service_model().shape_names:
        shape = service_model().shape_for(shape_name)
        if (
            shape.metadata.get("exception")
            and shape.metadata.get("error", {}).get("httpStatusCode") == status
        ):
            return shape_name
    raise ValueError(f"no Cases error has HTTP status {status}")


def error_body(error: ApiError) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of an error as the service sends it (botocore reads the header)."""
    payload = {"message": error.message, **error.extra}
    return (
        error_status(error.code),
        {"x-amzn-ErrorType": error.code, "Content-Type": "application/json"},
        json.dumps(payload).encode(),
    )


__all__ = [
    "JSON",
    "ApiError",
    "error_body",
    "error_code_for_status",
    "error_status",
    "match",
    "not_found",
    "parse_request",
    "routes",
    "service_model",
    "validate_input",
    "validation",
]
