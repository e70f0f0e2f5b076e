"""A small local host for the app's own registered functions — a development tool, not a production host.

Azure Functions Core Tools and the Service Bus emulator cannot run on our development machines, so tests,
`make demo` and `make serve` drive the functions through `FunctionHost`, a thin adapter over what the
`FunctionApp` registered (`app.get_functions()`); no route is ever declared twice.

- HTTP: route templates (`{id}`, `{id:guid}`, `{id?}`, `{id=default}`, `{*rest}`), method lists and auth
  levels come from each function's `httpTrigger` binding; literal segments win over parameters, as in
  ASP.NET Core routing. Unknown path → 404, known path but other method → 405, missing key on a
  `function`/`admin` function → 401, an exception in the function → 500; host replies are `{error, message}`.
- Service Bus: `drain()` (and the background `start_pump()`) feed `serviceBusTrigger` functions from the
  `InProcessQueue` like the host does with sessions: one delivery at a time per session in FIFO order —
  one message, or for `cardinality: many` a batch of up to host.json's `maxMessageBatchSize` settled as a
  whole — return → complete, exception → abandon → redelivery with `delivery_count + 1` → dead letter.
- Timers: `run_timer(name)` invokes a `timerTrigger` function once.
- `serve()` / `serve_in_thread()` put a real HTTP server (uvicorn) in front of `http()`; see `devstack.asgi_host`.

What it does not do: bindings other than the trigger (no output bindings), function keys per function,
host.json settings other than the route prefix passed in and `maxMessageBatchSize`, schedules (timers run
only when asked), lock renewal, scale-out. Use `func start` where Core Tools are installed.
"""

from __future__ import annotations

import asyncio
import hmac
import inspect
import json as jsonlib
import logging
import math
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, cast
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

import azure.functions as func
from azure.functions.servicebus import ServiceBusMessage
from azure.functions.timer import TimerRequest

from shared.messaging.queue import InProcessQueue, ReceivedMessage

__all__ = [
    "DEFAULT_APP_SETTINGS",
    "DeliveryFailure",
    "DrainReport",
    "FunctionHost",
    "FunctionInfo",
    "QueueCounts",
    "RouteTemplate",
]

log = logging.getLogger("devstack.local_host")

DEFAULT_BASE_URL = "http://127.0.0.1:7071"

# Values for `%SETTING%` binding expressions when the environment does not set them (the defaults of
# `shared.platform.settings.Settings`, so the host listens where the app sends).
DEFAULT_APP_SETTINGS: Mapping[str, str] = {
    "WRITES_QUEUE_NAME": "genesy-writes",
    "CAMPAIGN_QUEUE_NAME": "campaign-updates",
    "RECONCILE_SCHEDULE": "0 */15 * * * *",
}

_ALL_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE")
_KEY_LEVELS = frozenset({"function", "admin", "system"})
_SETTING_EXPR = re.compile(r"%([^%]+)%")
_HOST_JSON = Path(__file__).resolve().parent.parent / "host.json"


# ----------------------------------------------------------------------------------------------------------
# Route templates


def _int_constraint(value: str) -> bool:
    return re.fullmatch(r"-?\d+", value) is not None and -(2**63) <= int(value) < 2**63


def _float_constraint(value: str) -> bool:
    try:
        return math.isfinite(float(value))
    except ValueError:
        return False


def _guid_constraint(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _datetime_constraint(value: str) -> bool:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


_SIMPLE_CONSTRAINTS: dict[str, Callable[[str], bool]] = {
    "int": _int_constraint,
    "long": _int_constraint,
    "float": _float_constraint,
    "double": _float_constraint,
    "decimal": _float_constraint,
    "guid": _guid_constraint,
    "bool": lambda v: v.lower() in ("true", "false"),
    "alpha": lambda v: re.fullmatch(r"[A-Za-z]+", v) is not None,
    "datetime": _datetime_constraint,
}


def _make_constraint(name: str, arg: str | None, template: str) -> Callable[[str], bool]:
    """The check for one route constraint (`int`, `regex(...)`, `length(2,8)`, `range(1,9)`, ...)."""
    if arg is None:
        if name in _SIMPLE_CONSTRAINTS:
            return _SIMPLE_CONSTRAINTS[name]
        raise ValueError(f"route {template!r}: unknown constraint {name!r}")
    if name == "regex":
        pattern = re.compile(arg, re.IGNORECASE)
        return lambda v: pattern.search(v) is not None
    numbers = [int(part.strip()) for part in arg.split(",")]
    check = _length_constraint(name, numbers) or _int_range_constraint(name, numbers)
    if check is None:
        raise ValueError(f"route {template!r}: unknown constraint {name}({arg})")
    return check


def _length_constraint(name: str, numbers: list[int]) -> Callable[[str], bool] | None:
    """`minlength(n)`, `maxlength(n)`, `length(n)` or `length(low,high)`; None for another constraint."""
    if name == "minlength" and len(numbers) == 1:
        return lambda v: len(v) >= numbers[0]
    if name == "maxlength" and len(numbers) == 1:
        return lambda v: len(v) <= numbers[0]
    if name == "length" and len(numbers) in (1, 2):
        low, high = numbers[0], numbers[-1]
        return lambda v: low <= len(v) <= high
    return None


def _int_range_constraint(name: str, numbers: list[int]) -> Callable[[str], bool] | None:
    """`min(n)`, `max(n)` or `range(low,high)` over an integer value; None for another constraint."""
    if name == "min" and len(numbers) == 1:
        return lambda v: _int_constraint(v) and int(v) >= numbers[0]
    if name == "max" and len(numbers) == 1:
        return lambda v: _int_constraint(v) and int(v) <= numbers[0]
    if name == "range" and len(numbers) == 2:
        return lambda v: _int_constraint(v) and numbers[0] <= int(v) <= numbers[1]
    return None


def _split_constraints(spec: str, template: str) -> list[tuple[str, str | None]]:
    """`int:min(1)` → [("int", None), ("min", "1")]; parentheses may contain colons (regex)."""
    out: list[tuple[str, str | None]] = []
    i = 0
    while i < len(spec):
        match = re.match(r"([A-Za-z]+)", spec[i:])
        if match is None:
            raise ValueError(f"route {template!r}: bad constraint in {spec!r}")
        name = match.group(1).lower()
        i += len(name)
        arg: str | None = None
        if i < len(spec) and spec[i] == "(":
            depth, start = 0, i + 1
            while i < len(spec):
                if spec[i] == "(":
                    depth += 1
                elif spec[i] == ")":
                    depth -= 1
                    if depth == 0:
                        break
                i += 1
            if depth != 0:
                raise ValueError(f"route {template!r}: unbalanced parentheses in {spec!r}")
            arg = spec[start:i]
            i += 1
        out.append((name, arg))
        if i < len(spec):
            if spec[i] != ":":
                raise ValueError(f"route {template!r}: bad constraint in {spec!r}")
            i += 1
    return out


@dataclass(frozen=True)
class _Param:
    name: str
    constraints: tuple[Callable[[str], bool], ...] = ()
    optional: bool = False
    default: str | None = None
    catch_all: bool = False

    def accepts(self, value: str) -> bool:
        return all(check(value) for check in self.constraints)


def _parse_param(token: str, template: str) -> _Param:
    catch_all = token.startswith("*")
    token = token.lstrip("*")
    default: str | None = None
    if "=" in token:
        token, default = token.split("=", 1)
    optional = token.endswith("?")
    token = token.rstrip("?")
    name, _, spec = token.partition(":")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(f"route {template!r}: bad parameter name {name!r}")
    constraints = tuple(_make_constraint(n, a, template) for n, a in _split_constraints(spec, template)) if spec else ()
    return _Param(name, constraints, optional or catch_all, default, catch_all)


def _tokenize(part: str, template: str) -> list[tuple[Literal["literal", "param"], str]]:
    """Split one template segment into literal text and `{parameter}` tokens; `{{` and `}}` are escaped braces."""
    tokens: list[tuple[Literal["literal", "param"], str]] = []
    text = ""
    i = 0
    while i < len(part):
        pair = part[i : i + 2]
        if pair in ("{{", "}}"):
            text += pair[0]
            i += 2
        elif part[i] == "}":
            raise ValueError(f"route {template!r}: unmatched '}}' in {part!r}")
        elif part[i] == "{":
            if text:
                tokens.append(("literal", text))
                text = ""
            token = ""
            i += 1
            while True:
                if i >= len(part):
                    raise ValueError(f"route {template!r}: unclosed '{{' in {part!r}")
                pair = part[i : i + 2]
                if pair in ("{{", "}}"):
                    token += pair[0]
                    i += 2
                elif part[i] == "}":
                    i += 1
                    break
                else:
                    token += part[i]
                    i += 1
            tokens.append(("param", token))
        else:
            text += part[i]
            i += 1
    if text:
        tokens.append(("literal", text))
    return tokens


@dataclass(frozen=True)
class _Segment:
    kind: Literal["literal", "complex", "param"]
    literal: str = ""
    param: _Param | None = None
    # complex segments (`{name}.{ext}`): a regex over the segment and the parameters it captures
    pattern: re.Pattern[str] | None = None
    params: tuple[_Param, ...] = ()

    def match(self, value: str) -> dict[str, str] | None:
        """The route values this segment takes from one decoded path segment, or None when it does not match."""
        if value == "":
            return None
        if self.kind == "literal":
            return {} if value.lower() == self.literal else None
        if self.param is not None:
            return {self.param.name: value} if self.param.accepts(value) else None
        assert self.pattern is not None
        m = self.pattern.fullmatch(value)
        if m is None or not all(p.accepts(m.group(p.name)) for p in self.params):
            return None
        return {p.name: m.group(p.name) for p in self.params}

    @property
    def rank(self) -> int:
        """ASP.NET Core inbound precedence: lower wins (literal < complex < constrained < plain < catch-all)."""
        if self.kind == "literal":
            return 1
        if self.kind == "complex":
            return 2
        assert self.param is not None
        if self.param.catch_all:
            return 5
        return 3 if self.param.constraints else 4


def _with_catch_all(param: _Param, rest: str, values: dict[str, str]) -> dict[str, str] | None:
    """`values` plus what a catch-all parameter takes (the rest of the path, else its default)."""
    if rest and not param.accepts(rest):
        return None
    if rest or param.default is not None:
        values[param.name] = rest or str(param.default)
    return values


class RouteTemplate:
    """A Functions route template (`tasks/{id:guid}`, `files/{*rest}`) matched against a decoded path."""

    def __init__(self, template: str):
        self.template = template.strip("/")
        self.segments: tuple[_Segment, ...] = tuple(self._parse(part) for part in self._parts())
        for seg in self.segments[:-1]:
            if seg.param is not None and seg.param.catch_all:
                raise ValueError(f"route {template!r}: a catch-all parameter must be the last segment")
        self.precedence: tuple[int, ...] = tuple(seg.rank for seg in self.segments)

    def _parts(self) -> list[str]:
        return self.template.split("/") if self.template else []

    def _parse(self, part: str) -> _Segment:
        tokens = _tokenize(part, self.template)
        if all(kind == "literal" for kind, _ in tokens):
            return _Segment("literal", literal="".join(text for _, text in tokens).lower())
        if len(tokens) == 1:
            return _Segment("param", param=_parse_param(tokens[0][1], self.template))
        params: list[_Param] = []
        regex = ""
        for kind, text in tokens:
            if kind == "literal":
                regex += re.escape(text)
                continue
            param = _parse_param(text, self.template)
            if param.catch_all:
                raise ValueError(f"route {self.template!r}: a catch-all parameter must be a whole segment")
            params.append(param)
            regex += f"(?P<{param.name}>.+?)"
        return _Segment("complex", pattern=re.compile(regex, re.IGNORECASE), params=tuple(params))

    def match(self, segments: list[str]) -> dict[str, str] | None:
        """Route values for these decoded path segments, or None when the template does not match."""
        values: dict[str, str] = {}
        for index, seg in enumerate(self.segments):
            if seg.param is not None and seg.param.catch_all:
                return _with_catch_all(seg.param, "/".join(segments[index:]), values)
            if index >= len(segments):
                return values if self._optional_tail(index, values) else None
            captured = seg.match(segments[index])
            if captured is None:
                return None
            values.update(captured)
        return values if len(segments) == len(self.segments) else None

    def _optional_tail(self, index: int, values: dict[str, str]) -> bool:
        for seg in self.segments[index:]:
            if seg.kind != "param" or seg.param is None or not (seg.param.optional or seg.param.default is not None):
                return False
            if seg.param.default is not None:
                values[seg.param.name] = seg.param.default
        return True

    def __repr__(self) -> str:
        return f"RouteTemplate({self.template!r})"


# ----------------------------------------------------------------------------------------------------------
# Function index


@dataclass(frozen=True)
class FunctionInfo:
    """What the host needs to know about one registered function (from its function.json bindings)."""

    name: str
    trigger_type: str
    binding_name: str
    bindings: tuple[Mapping[str, Any], ...]
    route: str | None = None
    methods: tuple[str, ...] | None = None  # None: any method
    auth_level: str | None = None  # "anonymous" | "function" | "admin"
    queue_name: str | None = None  # resolved from a `%SETTING%` expression
    queue_name_expression: str | None = None
    sessions_enabled: bool = False
    cardinality: str = "one"  # "many": the function takes a list (a batch of one session's messages)
    schedule: str | None = None
    user_function: Callable[..., Any] = field(repr=False, compare=False, default=lambda: None)
    route_template: RouteTemplate | None = field(repr=False, compare=False, default=None)

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.user_function)


def _resolve_setting_expression(expression: str, settings: Mapping[str, str], where: str) -> str:
    def replace(m: re.Match[str]) -> str:
        name = m.group(1)
        if name in settings:
            return settings[name]
        raise ValueError(f"{where}: app setting {name!r} is not set (binding expression {expression!r})")

    return _SETTING_EXPR.sub(replace, expression)


def _function_info(function: Any, default_auth: str, app_settings: Mapping[str, str]) -> FunctionInfo:
    name = str(function.get_function_name())
    bindings = tuple(jsonlib.loads(function.get_function_json())["bindings"])
    trigger = next((b for b in bindings if str(b.get("type", "")).lower().endswith("trigger")), None)
    if trigger is None:
        raise ValueError(f"function {name!r} has no trigger binding")
    kind = str(trigger["type"])
    user_function = cast(Callable[..., Any], function.get_user_function())
    common: dict[str, Any] = {
        "name": name,
        "trigger_type": kind,
        "binding_name": str(trigger.get("name", "")),
        "bindings": bindings,
        "user_function": user_function,
    }
    if kind == "httpTrigger":
        route = str(trigger.get("route") or name)
        methods = trigger.get("methods")
        return FunctionInfo(
            **common,
            route=route,
            methods=tuple(str(m).upper() for m in methods) if methods else None,
            auth_level=str(trigger.get("authLevel") or default_auth).lower(),
            route_template=RouteTemplate(route),
        )
    if kind == "serviceBusTrigger":
        expression = str(trigger.get("queueName") or "")
        return FunctionInfo(
            **common,
            queue_name=_resolve_setting_expression(expression, app_settings, f"function {name!r}"),
            queue_name_expression=expression,
            sessions_enabled=bool(trigger.get("isSessionsEnabled", False)),
            cardinality=str(trigger.get("cardinality") or "one").lower(),
        )
    if kind == "timerTrigger":
        schedule = str(trigger.get("schedule") or "")
        return FunctionInfo(
            **common, schedule=_resolve_setting_expression(schedule, app_settings, f"function {name!r}")
        )
    return FunctionInfo(**common)


# ----------------------------------------------------------------------------------------------------------
# Invocation


class _TraceContext(func._abc.TraceContext):
    def __init__(self) -> None:
        self._parent = f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01"

    @property
    def trace_state(self) -> str:
        return ""

    @property
    def trace_parent(self) -> str:
        return self._parent

    @property
    def attributes(self) -> dict[str, str]:
        return {}


class _RetryContext(func._abc.RetryContext):
    @property
    def retry_count(self) -> int:
        return 0

    @property
    def max_retry_count(self) -> int:
        return 0

    @property
    def exception(self) -> Any:
        return None


class InvocationContext(func.Context):
    """The minimal `func.Context` passed to functions that declare a `context` parameter."""

    def __init__(self, function_name: str):
        self._invocation_id = str(uuid.uuid4())
        self._function_name = function_name
        self._tls = threading.local()
        self._tls.invocation_id = self._invocation_id

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def thread_local_storage(self) -> Any:
        return self._tls

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return os.getcwd()

    @property
    def trace_context(self) -> _TraceContext:
        return _TraceContext()

    @property
    def retry_context(self) -> _RetryContext:
        return _RetryContext()


def _run_coroutine(coro: Any) -> Any:
    """Run an `async def` function's coroutine to completion, also when called from inside an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    result: list[Any] = []
    error: list[BaseException] = []

    def runner() -> None:
        try:
            result.append(asyncio.run(coro))
        except BaseException as exc:
            error.append(exc)

    thread = threading.Thread(target=runner, name="local-host-async")
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


def host_json_batch_size(path: Path | None = None) -> int:
    """`extensions.serviceBus.maxMessageBatchSize` from the app's host.json (1000, the extension's default,
    when it is not set)."""
    try:
        config = jsonlib.loads((path or _HOST_JSON).read_text(encoding="utf-8"))
        return max(1, int(config.get("extensions", {}).get("serviceBus", {}).get("maxMessageBatchSize", 1000)))
    except (OSError, ValueError, TypeError, AttributeError):
        return 1000


def _as_service_bus_message(message: ReceivedMessage) -> ServiceBusMessage:
    return ServiceBusMessage(
        body=message.body.encode("utf-8"),
        message_id=message.message_id,
        session_id=message.session_id,
        delivery_count=message.delivery_count,
        enqueued_time_utc=message.enqueued_time_utc,
        locked_until=datetime.now(UTC) + timedelta(minutes=5),
        lock_token=str(uuid.uuid4()),
        application_properties=dict(message.application_properties),
        user_properties={},
        content_type="application/json",
    )


def _invoke(info: FunctionInfo, trigger_value: Any) -> Any:
    """Call the user function like the worker does: the trigger by its binding name, `context` if declared."""
    fn = info.user_function
    kwargs: dict[str, Any] = {}
    params: Mapping[str, inspect.Parameter] = inspect.signature(fn).parameters
    context_names = [
        n for n, p in params.items() if n == "context" or p.annotation in (func.Context, "func.Context", "Context")
    ]
    for name in context_names:
        kwargs[name] = InvocationContext(info.name)
    others = [n for n in params if n not in context_names]
    if info.binding_name in params:
        kwargs[info.binding_name] = trigger_value
    elif len(others) == 1:
        kwargs[others[0]] = trigger_value
    else:
        raise TypeError(f"function {info.name!r}: no parameter named {info.binding_name!r} for its trigger")
    missing = [
        n
        for n, p in params.items()
        if n not in kwargs
        and p.default is inspect.Parameter.empty
        and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    ]
    if missing:
        raise TypeError(f"function {info.name!r}: the local host cannot bind parameter(s) {', '.join(missing)}")
    result = fn(**kwargs)
    if inspect.isawaitable(result):
        result = _run_coroutine(result)
    return result


def _json_reply(status: int, error: str, message: str, headers: Mapping[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(
        jsonlib.dumps({"error": error, "message": message}),
        status_code=status,
        mimetype="application/json",
        charset="utf-8",
        headers=dict(headers or {}),
    )


def _method_not_allowed(
    method: str, raw_path: str, candidates: list[tuple[FunctionInfo, dict[str, str]]]
) -> func.HttpResponse:
    """405 with the methods the matching routes do allow."""
    allowed = sorted({m for i, _ in candidates for m in (i.methods or _ALL_METHODS)})
    return _json_reply(
        405, "method_not_allowed", f"{method} is not allowed on {raw_path}", {"Allow": ", ".join(allowed)}
    )


def _query_params(query_string: str) -> dict[str, str]:
    """The query's parameters, the first value of each (blank values kept)."""
    params: dict[str, str] = {}
    for key, value in parse_qsl(query_string, keep_blank_values=True):
        params.setdefault(key, value)
    return params


def _as_response(name: str, result: Any) -> func.HttpResponse:
    if isinstance(result, func.HttpResponse):
        return result
    if isinstance(result, str | bytes):
        return func.HttpResponse(result)
    if result is None:
        return func.HttpResponse(status_code=204)
    raise TypeError(f"function {name!r} returned {type(result).__name__}, expected func.HttpResponse")


# ----------------------------------------------------------------------------------------------------------
# Service Bus reports


@dataclass
class QueueCounts:
    processed: int = 0  # deliveries that returned (message completed)
    failed: int = 0  # deliveries that raised (message abandoned or dead-lettered)
    dead_lettered: int = 0


@dataclass(frozen=True)
class DeliveryFailure:
    queue: str
    session_id: str
    message_id: str
    delivery_count: int
    error: str
    dead_lettered: bool


@dataclass
class DrainReport:
    """What a `drain()` (or the pump so far) did, per queue; `failures` lists each failed delivery."""

    queues: dict[str, QueueCounts] = field(default_factory=dict)
    failures: list[DeliveryFailure] = field(default_factory=list)

    def counts(self, queue: str) -> QueueCounts:
        return self.queues.setdefault(queue, QueueCounts())

    @property
    def processed(self) -> int:
        return sum(c.processed for c in self.queues.values())

    @property
    def failed(self) -> int:
        return sum(c.failed for c in self.queues.values())

    @property
    def dead_lettered(self) -> int:
        return sum(c.dead_lettered for c in self.queues.values())

    @property
    def deliveries(self) -> int:
        return self.processed + self.failed

    def copy(self) -> DrainReport:
        return DrainReport(
            {q: QueueCounts(c.processed, c.failed, c.dead_lettered) for q, c in self.queues.items()},
            list(self.failures),
        )


def _format_error(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# ----------------------------------------------------------------------------------------------------------
# The host


class FunctionHost:
    """Serve a `FunctionApp`'s registered functions in-process (HTTP, Service Bus from `InProcessQueue`, timers).

    `app.get_functions()` is called once here; it may be called only once per app instance, so build the
    host once per app. `queue` is the in-process queue the app's services send to (or a function returning
    it, for a host whose app's services change). `admin_key=None` disables key checks, like `func start` does
    locally.
    """

    def __init__(
        self,
        app: func.FunctionApp,
        *,
        queue: InProcessQueue | Callable[[], InProcessQueue],
        admin_key: str | None = None,
        route_prefix: str = "api",
        base_url: str = DEFAULT_BASE_URL,
        app_settings: Mapping[str, str] | None = None,
        raise_server_exceptions: bool = False,
        max_message_batch_size: int | None = None,
    ):
        self._queue = queue
        # host.json `extensions.serviceBus.maxMessageBatchSize` (the extension's default is 1000).
        self.max_message_batch_size = max(1, max_message_batch_size or host_json_batch_size())
        self.admin_key = admin_key
        self.route_prefix = route_prefix.strip("/")
        self.base_url = base_url.rstrip("/")
        self.raise_server_exceptions = raise_server_exceptions
        settings = {**DEFAULT_APP_SETTINGS, **(os.environ if app_settings is None else app_settings)}
        app_auth = getattr(app, "_auth_level", None)
        default_auth = str(getattr(app_auth, "value", app_auth) or "function").lower()
        infos = [_function_info(f, default_auth, settings) for f in app.get_functions()]
        self.functions: dict[str, FunctionInfo] = {info.name: info for info in infos}
        self._http = sorted(
            (i for i in infos if i.route_template is not None),
            key=lambda i: (cast(RouteTemplate, i.route_template).precedence, i.route or "", i.name),
        )
        self._listeners: dict[str, FunctionInfo] = {}
        for info in infos:
            if info.queue_name is None:
                continue
            if info.queue_name in self._listeners:
                log.warning(
                    "queue %s: %s also listens; only %s is fed",
                    info.queue_name,
                    info.name,
                    self._listeners[info.queue_name].name,
                )
                continue
            self._listeners[info.queue_name] = info
        self._pump_lock = threading.Lock()
        self._pump_report = DrainReport()
        self._pump_thread: threading.Thread | None = None
        self._pump_stop = threading.Event()
        self._pump_pool: ThreadPoolExecutor | None = None
        self._pump_slots: threading.BoundedSemaphore | None = None
        self._active_sessions = 0

    @property
    def queue(self) -> InProcessQueue:
        return self._queue if isinstance(self._queue, InProcessQueue) else self._queue()

    @property
    def listened_queues(self) -> list[str]:
        return list(self._listeners)

    # ---- HTTP ------------------------------------------------------------------------------------------

    def http(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes | str | None = None,
        json: Any = None,
        params: Mapping[str, str] | None = None,
    ) -> func.HttpResponse:
        """Route one request to its function and return the function's (or the host's) `HttpResponse`.

        `path` is the URL path with the route prefix (`/api/contacts`), optionally with a query string or
        as a full URL; `params` are merged into the query.
        """
        parts = urlsplit(path)
        base = f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else self.base_url
        query = parts.query
        if params:
            query = "&".join(p for p in (query, urlencode(list(params.items()))) if p)
        request_headers = dict(headers or {})
        data: bytes
        if json is not None:
            data = jsonlib.dumps(json).encode()
            if not any(k.lower() == "content-type" for k in request_headers):
                request_headers["Content-Type"] = "application/json"
        elif isinstance(body, str):
            data = body.encode()
        else:
            data = body or b""
        return self.handle(method, parts.path or "/", query, request_headers, data, base_url=base)

    def handle(
        self,
        method: str,
        raw_path: str,
        query_string: str,
        headers: Mapping[str, str],
        body: bytes,
        *,
        base_url: str | None = None,
    ) -> func.HttpResponse:
        """The host's request pipeline (shared by `http()` and the HTTP server); `raw_path` is still %-encoded."""
        method = method.upper()
        segments = self._route_segments(raw_path)
        candidates = self._routes_matching(segments) if segments is not None else []
        if not candidates:
            return self._not_found(method, raw_path)
        chosen = next(((i, v) for i, v in candidates if i.methods is None or method in i.methods), None)
        if chosen is None:
            return _method_not_allowed(method, raw_path, candidates)
        info, route_params = chosen
        params = _query_params(query_string)
        if info.auth_level in _KEY_LEVELS and not self._key_ok(headers, params):
            return _json_reply(401, "unauthorized", f"function {info.name} requires a function key")
        url = f"{(base_url or self.base_url).rstrip('/')}{raw_path}" + (f"?{query_string}" if query_string else "")
        request = func.HttpRequest(
            method, url, headers=dict(headers), params=params, route_params=route_params, body=body
        )
        return self._respond(info, request, method, raw_path)

    def _route_segments(self, raw_path: str) -> list[str] | None:
        """The decoded path segments after the route prefix; None when the path is outside the prefix."""
        segments = [unquote(s) for s in raw_path.strip("/").split("/")] if raw_path.strip("/") else []
        prefix = self.route_prefix.split("/") if self.route_prefix else []
        if [s.lower() for s in segments[: len(prefix)]] != [p.lower() for p in prefix]:
            return None
        return segments[len(prefix) :]

    def _routes_matching(self, segments: list[str]) -> list[tuple[FunctionInfo, dict[str, str]]]:
        """Every HTTP function whose route matches, with its route values, in precedence order."""
        candidates: list[tuple[FunctionInfo, dict[str, str]]] = []
        for info in self._http:
            values = cast(RouteTemplate, info.route_template).match(segments)
            if values is not None:
                candidates.append((info, values))
        return candidates

    def _respond(self, info: FunctionInfo, request: func.HttpRequest, method: str, raw_path: str) -> func.HttpResponse:
        """Run the function; an exception becomes a 500 reply unless the host re-raises server exceptions."""
        try:
            return _as_response(info.name, _invoke(info, request))
        except Exception as exc:
            if self.raise_server_exceptions:
                raise
            log.exception("function %s failed on %s %s", info.name, method, raw_path)
            return _json_reply(500, "internal_error", f"function {info.name} failed: {_format_error(exc)}")

    def _not_found(self, method: str, raw_path: str) -> func.HttpResponse:
        return _json_reply(404, "not_found", f"no function serves {method} {raw_path}")

    def _key_ok(self, headers: Mapping[str, str], params: Mapping[str, str]) -> bool:
        if self.admin_key is None:
            return True
        supplied = next((v for k, v in headers.items() if k.lower() == "x-functions-key"), None)
        if supplied is None:
            supplied = params.get("code")
        return supplied is not None and hmac.compare_digest(supplied.encode(), self.admin_key.encode())

    # ---- Service Bus -------------------------------------------------------------------------------------

    def drain(self, queue_name: str | None = None, max_messages: int | None = None) -> DrainReport:
        """Deliver queued messages to their Service Bus functions until the queues are empty.

        Sessions are taken one at a time and emptied in FIFO order; a failed delivery is redelivered at
        once (delivery count + 1) until it succeeds or is dead-lettered. Messages the functions send
        meanwhile are delivered too. `max_messages` caps the number of deliveries (attempts).
        """
        if queue_name is not None and queue_name not in self._listeners:
            raise ValueError(
                f"no Service Bus function listens on queue {queue_name!r} (listened: {self.listened_queues})"
            )
        queues = [queue_name] if queue_name is not None else list(self._listeners)
        report = DrainReport()
        budget = [max_messages if max_messages is not None else -1]
        while budget[0] != 0:
            progressed = False
            for name in queues:
                info = self._listeners[name]
                while budget[0] != 0 and (session := self.queue.accept_session(name)) is not None:
                    progressed = self._run_session(info, session, report, budget, None) > 0 or progressed
            if not progressed:
                break
        return report

    def _run_session(
        self,
        info: FunctionInfo,
        session_id: str,
        report: DrainReport,
        budget: list[int],
        stop: threading.Event | None,
        report_lock: threading.Lock | None = None,
    ) -> int:
        """Deliver one locked session's messages in order; release the session lock at the end."""
        assert info.queue_name is not None
        queue = self.queue
        deliveries = 0
        try:
            while budget[0] != 0 and not (stop is not None and stop.is_set()):
                size = 1 if info.cardinality != "many" else self.max_message_batch_size
                if budget[0] > 0:
                    size = min(size, budget[0])
                messages = queue.peek_batch(info.queue_name, session_id, size)
                if not messages:
                    break
                deliveries += len(messages)
                if budget[0] > 0:
                    budget[0] -= len(messages)
                self._deliver(queue, info, messages, report, report_lock)
        finally:
            queue.release_session(info.queue_name, session_id)
        return deliveries

    def _deliver(
        self,
        queue: InProcessQueue,
        info: FunctionInfo,
        messages: list[ReceivedMessage],
        report: DrainReport,
        report_lock: threading.Lock | None,
    ) -> None:
        """Invoke with one message (or, for `cardinality: many`, the batch as a list); the batch settles as
        a whole, like the Functions binding with `autoCompleteMessages`: return → every message completed,
        exception → every message abandoned (delivery count + 1; past the limit, dead-lettered)."""
        batch = [_as_service_bus_message(m) for m in messages]
        try:
            _invoke(info, batch if info.cardinality == "many" else batch[0])
        except Exception as exc:
            reason = _format_error(exc)
            for message in messages:
                attempt = message.delivery_count
                dead = queue.abandon(message, reason)
                log.log(
                    logging.ERROR if dead else logging.WARNING,
                    "%s on %s: message %s (session %s) delivery %d failed%s: %s",
                    info.name, info.queue_name, message.message_id, message.session_id, attempt,
                    " and was dead-lettered" if dead else "", reason,
                )  # fmt: skip
                failure = DeliveryFailure(
                    cast(str, info.queue_name), message.session_id, message.message_id, attempt, reason, dead
                )
                with report_lock or _NO_LOCK:
                    counts = report.counts(cast(str, info.queue_name))
                    counts.failed += 1
                    counts.dead_lettered += int(dead)
                    report.failures.append(failure)
            return
        for message in messages:
            queue.complete(message)
        with report_lock or _NO_LOCK:
            report.counts(cast(str, info.queue_name)).processed += len(messages)

    # ---- background pump ----------------------------------------------------------------------------------

    def start_pump(self, poll_interval: float = 0.05, max_sessions: int = 4) -> None:
        """Feed Service Bus functions in the background: sessions in parallel, one message per session at a time."""
        with self._pump_lock:
            if self._pump_thread is not None:
                raise RuntimeError("the pump is already running")
            self._pump_stop = threading.Event()
            self._pump_pool = ThreadPoolExecutor(max_workers=max_sessions, thread_name_prefix="local-host-session")
            self._pump_slots = threading.BoundedSemaphore(max_sessions)
            self._pump_thread = threading.Thread(
                target=self._pump_loop, args=(poll_interval,), name="local-host-pump", daemon=True
            )
            self._pump_thread.start()

    @property
    def pump_running(self) -> bool:
        return self._pump_thread is not None

    @property
    def pump_report(self) -> DrainReport:
        """A snapshot of what the pump has delivered since the host was created."""
        with self._pump_lock:
            return self._pump_report.copy()

    def _pump_loop(self, poll_interval: float) -> None:
        stop, pool, slots = self._pump_stop, self._pump_pool, self._pump_slots
        assert pool is not None and slots is not None
        while not stop.is_set():
            dispatched = False
            try:
                for name, info in list(self._listeners.items()):
                    if not slots.acquire(blocking=False):
                        break
                    session = self.queue.accept_session(name)
                    if session is None:
                        slots.release()
                        continue
                    with self._pump_lock:
                        self._active_sessions += 1
                    pool.submit(self._pump_session, info, session, slots)
                    dispatched = True
            except Exception:
                log.exception("local host pump: dispatch failed")
            if not dispatched:
                stop.wait(poll_interval)

    def _pump_session(self, info: FunctionInfo, session_id: str, slots: threading.BoundedSemaphore) -> None:
        try:
            self._run_session(info, session_id, self._pump_report, [-1], self._pump_stop, self._pump_lock)
        except Exception:
            log.exception("local host pump: session %s on %s failed", session_id, info.queue_name)
        finally:
            with self._pump_lock:
                self._active_sessions -= 1
            slots.release()

    def stop_pump(self, timeout: float = 30.0) -> DrainReport:
        """Stop after the in-flight deliveries finish (queued messages stay queued); return the pump report."""
        with self._pump_lock:
            thread, pool = self._pump_thread, self._pump_pool
        if thread is not None:
            self._pump_stop.set()
            thread.join(timeout)
            if pool is not None:
                pool.shutdown(wait=True)
            with self._pump_lock:
                self._pump_thread = None
                self._pump_pool = None
                self._pump_slots = None
        return self.pump_report

    def wait_idle(self, timeout: float = 10.0, poll_interval: float = 0.01) -> bool:
        """With the pump running: wait until the listened queues are empty and no session is in flight."""
        deadline = time.monotonic() + timeout
        while True:
            with self._pump_lock:
                active = self._active_sessions
            if active == 0 and all(self.queue.pending(q) == 0 for q in self._listeners):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(poll_interval)

    # ---- timers -------------------------------------------------------------------------------------------

    def run_timer(self, name: str, *, past_due: bool = False) -> Any:
        """Invoke a timer function once (exceptions propagate); returns what the function returned."""
        info = self.functions.get(name)
        if info is None or info.trigger_type != "timerTrigger":
            timers = [n for n, i in self.functions.items() if i.trigger_type == "timerTrigger"]
            raise KeyError(f"no timer function {name!r} (timers: {timers})")
        return _invoke(info, TimerRequest(past_due=past_due))

    # ---- HTTP server ----------------------------------------------------------------------------------------

    def asgi_app(self) -> Any:
        """An ASGI application serving this host's HTTP functions."""
        from devstack.asgi_host import AsgiFunctionApp

        return AsgiFunctionApp(self)

    def serve(self, port: int = 7071, host: str = "127.0.0.1") -> None:
        """Serve HTTP until interrupted (Ctrl-C)."""
        from devstack.asgi_host import serve

        serve(self, bind=host, port=port)

    def serve_in_thread(self, port: int = 0, host: str = "127.0.0.1") -> tuple[str, Callable[[], None]]:
        """Start the HTTP server in a thread; returns its base URL (`http://127.0.0.1:<port>`) and a stop function."""
        from devstack.asgi_host import serve_in_thread

        return serve_in_thread(self, bind=host, port=port)

    def describe(self) -> Iterable[str]:
        """One line per function, for start-up banners."""
        for info in sorted(self.functions.values(), key=lambda i: (i.trigger_type, i.route or "", i.name)):
            if info.trigger_type == "httpTrigger":
                methods = ",".join(info.methods) if info.methods else "*"
                prefix = f"/{self.route_prefix}" if self.route_prefix else ""
                yield f"{info.name}: [{methods}] {prefix}/{info.route} ({info.auth_level})"
            elif info.trigger_type == "serviceBusTrigger":
                yield f"{info.name}: serviceBusTrigger {info.queue_name}" + (
                    " (sessions)" if info.sessions_enabled else ""
                )
            elif info.trigger_type == "timerTrigger":
                yield f"{info.name}: timerTrigger {info.schedule}"
            else:
                yield f"{info.name}: {info.trigger_type} (not driven by the local host)"


class _NoLock:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


_NO_LOCK = _NoLock()
