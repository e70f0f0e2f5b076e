"""Dataverse-style errors: an HTTP status plus the `{"error":{"code","message"}}` body Dataverse sends."""

from __future__ import annotations

__all__ = [
    "CHANGE_TRACKING_DISABLED",
    "DUPLICATE_KEY",
    "INVALID_ARGUMENT",
    "INVALID_DELTA_TOKEN",
    "INVALID_PAYLOAD",
    "NOT_FOUND",
    "NOT_IMPLEMENTED",
    "OPTION_OUT_OF_RANGE",
    "PROPERTY_NOT_FOUND",
    "REQUIRED_MISSING",
    "ROW_VERSION_MISMATCH",
    "STRING_TOO_LONG",
    "THROTTLE_CONCURRENCY",
    "THROTTLE_EXECUTION_TIME",
    "THROTTLE_REQUESTS",
    "UNEXPECTED",
    "DataverseError",
]

NOT_FOUND = "0x80040217"
DUPLICATE_KEY = "0x80040237"
PROPERTY_NOT_FOUND = "0x80060888"
STRING_TOO_LONG = "0x80044331"
REQUIRED_MISSING = "0x80040200"
OPTION_OUT_OF_RANGE = "0x8004431A"
INVALID_PAYLOAD = "0x80048d19"
INVALID_ARGUMENT = "0x80040203"
ROW_VERSION_MISMATCH = "0x80060882"
# Service protection (Microsoft Learn, "Service protection API limits"): -2147015902, -2147015903, -2147015898.
THROTTLE_REQUESTS = "0x80072322"
THROTTLE_EXECUTION_TIME = "0x80072321"
THROTTLE_CONCURRENCY = "0x80072326"
UNEXPECTED = "0x80040216"
# Not in the reference (dataverse-web-api.md); the sandbox's choice, see README "Change tracking".
CHANGE_TRACKING_DISABLED = "0x80060888"
# A query option or feature Dataverse has and the sandbox does not implement: refused with Dataverse's code
# for an unsupported query parameter (0x80060888) and status 400, so no client retries it as transient.
NOT_IMPLEMENTED = "0x80060888"
INVALID_DELTA_TOKEN = "0x80040203"


class DataverseError(Exception):
    """A failed request as Dataverse reports it; raised anywhere below the HTTP layer."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def body(self) -> dict[str, dict[str, str]]:
        return {"error": {"code": self.code, "message": self.message}}

    @classmethod
    def not_found(cls, entity: str, record_id: str) -> DataverseError:
        return cls(404, NOT_FOUND, f"{entity} With Id = {record_id} Does Not Exist")

    @classmethod
    def unknown_property(cls, name: str, type_name: str) -> DataverseError:
        return cls(400, PROPERTY_NOT_FOUND, f"Could not find a property named '{name}' on type '{type_name}'.")

    @classmethod
    def bad_request(cls, message: str, code: str = INVALID_ARGUMENT) -> DataverseError:
        return cls(400, code, message)
