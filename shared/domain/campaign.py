"""Campaign values per contact: the `campaign-updates` message contract and its pure aggregation.

Message (our extension; Genesy's Custom CRM API sends no opens or clicks, so an integrator or
Genesy's webhooks feed the queue, and `POST /activities` feeds it too), session id
`f"{workspace_id}:{contact_id}"`::

    {"version": 1, "workspace_id": "…", "contact_id": "<crmId as Genesy knows it>",
     "campaign": "<name or id>", "event": "sequence"|"step"|"sent"|"open"|"click"|"reply",
     "step": 2, "step_count": 5, "occurred_at": "2024-01-02T10:00:00Z", "event_id": "<unique>",
     "detail": {"url": "…", "channel": "EMAIL", …}, "correlation_id": "<optional>"}

- `sequence`: the contact was enrolled (`step_count` = steps of the sequence).
- `step` / `sent`: the contact reached step `step` / a message was sent (at `step` when given).
- `open` / `click` (`detail.url`) / `reply` (`detail.channel`): engagement, counted once per `event_id`.

State per (contact, campaign) is applied idempotently (events keyed by `event_id`) and monotonically:
the current step is the highest step seen, counts are sets of event ids, times are min/max, a reply
is never undone — so late or redelivered events never roll a value back.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from shared.domain.mappings import CampaignMapping, CampaignValue

__all__ = [
    "CAMPAIGN_EVENTS",
    "MAX_EVENTS_PER_KIND",
    "CampaignEvent",
    "CampaignState",
    "EventKind",
    "campaign_key",
    "render_columns",
    "render_values",
    "truncate",
]

EventKind = Literal["sequence", "step", "sent", "open", "click", "reply"]
CAMPAIGN_EVENTS: tuple[str, ...] = ("sequence", "step", "sent", "open", "click", "reply")
# Counted events kept per kind and campaign; past this the oldest are folded into a plain count.
MAX_EVENTS_PER_KIND = 500
_COUNTED = ("sent", "open", "click", "reply")
_Id = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class CampaignEvent(BaseModel):
    """One `campaign-updates` message (version 1)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    version: Literal[1] = 1
    workspace_id: _Id
    contact_id: _Id
    campaign: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    event: EventKind
    step: int | None = Field(default=None, ge=1, le=1000)
    step_count: int | None = Field(default=None, ge=1, le=1000)
    occurred_at: datetime
    event_id: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=400)]
    detail: dict[str, Any] = Field(default_factory=dict)
    correlation_id: str | None = Field(default=None, max_length=64)

    @field_validator("occurred_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    @property
    def session_id(self) -> str:
        return f"{self.workspace_id}:{self.contact_id}"


def campaign_key(campaign: str) -> str:
    """A stable, storage-safe key for a campaign name or id (case and spacing ignored)."""
    normalised = " ".join(campaign.split()).casefold()
    return hashlib.sha256(normalised.encode()).hexdigest()[:32]


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def _shown(value: str) -> str:
    return _parse(value).strftime("%Y-%m-%d %H:%M UTC")


@dataclass
class CampaignState:
    """What we know about one contact in one campaign. JSON-serialisable via `to_json`/`from_json`."""

    campaign: str
    step_count: int | None = None
    steps: dict[int, str] = field(default_factory=dict)  # step → first time it was reached
    enrolled_at: str | None = None
    # kind → event id → [occurred_at, step or None, extra text or None]
    events: dict[str, dict[str, list[Any]]] = field(default_factory=dict)
    folded: dict[str, int] = field(default_factory=dict)  # counted events dropped past the cap
    first_at: str | None = None
    last_at: str | None = None

    @property
    def key(self) -> str:
        return campaign_key(self.campaign)

    # -- applying ---------------------------------------------------------------------------------

    def apply(self, event: CampaignEvent) -> bool:
        """Fold `event` in; False when it changed nothing (a repeat, or older than what we know)."""
        at = _iso(event.occurred_at)
        before = self.to_json()
        if event.step_count is not None:
            self.step_count = max(self.step_count or 0, event.step_count)
        if event.event == "sequence":
            self.enrolled_at = at if self.enrolled_at is None else min(self.enrolled_at, at)
        if event.step is not None and event.event in ("step", "sent"):
            known = self.steps.get(event.step)
            self.steps[event.step] = at if known is None else min(known, at)
        if event.event in _COUNTED:
            bucket = self.events.setdefault(event.event, {})
            if event.event_id not in bucket:
                bucket[event.event_id] = [at, event.step, _extra(event)]
                self._cap(event.event)
        self.first_at = at if self.first_at is None else min(self.first_at, at)
        self.last_at = at if self.last_at is None else max(self.last_at, at)
        return self.to_json() != before

    def _cap(self, kind: str) -> None:
        bucket = self.events[kind]
        overflow = len(bucket) - MAX_EVENTS_PER_KIND
        if overflow <= 0:
            return
        oldest = sorted(bucket.items(), key=lambda item: (item[1][0], item[0]))[:overflow]
        for event_id, _ in oldest:
            del bucket[event_id]
        self.folded[kind] = self.folded.get(kind, 0) + overflow

    # -- reading ----------------------------------------------------------------------------------

    def count(self, kind: str) -> int:
        return len(self.events.get(kind, {})) + self.folded.get(kind, 0)

    @property
    def current_step(self) -> int | None:
        return max(self.steps) if self.steps else None

    def step_at(self, at: str) -> int | None:
        """The highest step reached at or before `at`."""
        reached = [step for step, when in self.steps.items() if when <= at]
        return max(reached) if reached else None

    # -- persistence ------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "campaign": self.campaign,
            "step_count": self.step_count,
            "steps": {str(k): v for k, v in sorted(self.steps.items())},
            "enrolled_at": self.enrolled_at,
            "events": {k: dict(sorted(v.items())) for k, v in sorted(self.events.items()) if v},
            "folded": dict(sorted(self.folded.items())),
            "first_at": self.first_at,
            "last_at": self.last_at,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CampaignState:
        return cls(
            campaign=str(data["campaign"]),
            step_count=data.get("step_count"),
            steps={int(k): str(v) for k, v in (data.get("steps") or {}).items()},
            enrolled_at=data.get("enrolled_at"),
            events={str(k): {str(i): list(e) for i, e in v.items()} for k, v in (data.get("events") or {}).items()},
            folded={str(k): int(v) for k, v in (data.get("folded") or {}).items()},
            first_at=data.get("first_at"),
            last_at=data.get("last_at"),
        )


def _extra(event: CampaignEvent) -> str | None:
    if event.event == "click":
        url = event.detail.get("url")
        return str(url)[:500] if url else None
    if event.event in ("reply", "sent"):
        channel = event.detail.get("channel")
        return str(channel)[:40] if channel else None
    return None


# -- rendering --------------------------------------------------------------------------------------


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _span(times: Sequence[str]) -> str:
    first, last = min(times), max(times)
    return f"on {_shown(first)}" if first == last else f"first {_shown(first)}, last {_shown(last)}"


def _steps_of(state: CampaignState, kind: str) -> list[int]:
    return sorted({int(e[1]) for e in state.events.get(kind, {}).values() if e[1] is not None})


def _sequence(state: CampaignState) -> str:
    if state.step_count:
        return f"{state.campaign} — {_plural(state.step_count, 'step', 'steps')}"
    return state.campaign


def _status(state: CampaignState) -> str:
    if state.count("reply"):
        return "Replied"
    step = state.current_step
    if step is None:
        return "Enrolled"
    return f"Step {step} of {state.step_count}" if state.step_count else f"Step {step}"


def _analysis(state: CampaignState, kind: str, one: str, many: str, verb: str) -> str:
    events = state.events.get(kind, {})
    total = state.count(kind)
    if not total:
        return f"No {many}"
    parts = [_plural(total, one, many)]
    if events:
        parts.append(_span([e[0] for e in events.values()]))
    steps = _steps_of(state, kind)
    if steps:
        label = "step" if len(steps) == 1 else "steps"
        parts.append(f"{label} {verb}: {', '.join(map(str, steps))}")
    return "; ".join(parts)


def _click_analysis(state: CampaignState) -> str:
    text = _analysis(state, "click", "click", "clicks", "clicked")
    urls = list(dict.fromkeys(str(e[2]) for e in sorted(state.events.get("click", {}).values()) if e[2]))
    if urls:
        shown = urls[:5] + ([f"+{len(urls) - 5} more"] if len(urls) > 5 else [])
        text += f"; links: {', '.join(shown)}"
    return text


def _reply_analysis(state: CampaignState) -> str:
    replies = state.events.get("reply", {})
    total = state.count("reply")
    if not total:
        return "No reply"
    parts = ["Replied" if total == 1 else f"{total} replies"]
    if replies:
        times = [e[0] for e in replies.values()]
        parts.append(_span(times))
        step = state.step_at(min(times))
        if step is not None:
            parts.append(f"after step {step}")
        channels = sorted({str(e[2]) for e in replies.values() if e[2]})
        if channels:
            parts.append(f"via {', '.join(channels)}")
    return "; ".join(parts)


def _values(state: CampaignState) -> dict[CampaignValue, str]:
    return {
        CampaignValue.SEQUENCE: _sequence(state),
        CampaignValue.ENGAGEMENT_STATUS: _status(state),
        CampaignValue.OPENS: str(state.count("open")),
        CampaignValue.CLICKS: str(state.count("click")),
        CampaignValue.OPEN_ANALYSIS: _analysis(state, "open", "open", "opens", "opened"),
        CampaignValue.CLICK_ANALYSIS: _click_analysis(state),
        CampaignValue.REPLY_ANALYSIS: _reply_analysis(state),
    }


def _most_recent_first(states: Iterable[CampaignState]) -> list[CampaignState]:
    return sorted(states, key=lambda s: (s.last_at or "", s.campaign.casefold()), reverse=True)


def truncate(text: str, limit: int | None) -> str:
    """`text` cut to `limit` characters, ending in "…" when cut."""
    if limit is None or len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)] + "…" if limit > 0 else ""


def _fit_lines(lines: Sequence[str], limit: int | None) -> str:
    """Whole lines while they fit, then "… (+n more)"; failing that, the text cut with "…"."""
    text = "\n".join(lines)
    if limit is None or len(text) <= limit:
        return text
    for keep in range(len(lines) - 1, 0, -1):
        candidate = "\n".join(lines[:keep]) + f"\n… (+{len(lines) - keep} more)"
        if len(candidate) <= limit:
            return candidate
    return truncate(text, limit)


def render_values(states: Iterable[CampaignState]) -> dict[CampaignValue, list[str]]:
    """The seven values as lines, one per campaign, most recent campaign first.

    With several campaigns each line is prefixed with the campaign's name (the sequence line already
    carries it)."""
    ordered = _most_recent_first(states)
    several = len(ordered) > 1
    out: dict[CampaignValue, list[str]] = {value: [] for value in CampaignValue}
    for state in ordered:
        for value, text in _values(state).items():
            prefix = f"{state.campaign}: " if several and value is not CampaignValue.SEQUENCE else ""
            out[value].append(prefix + text)
    return out


def render_columns(
    states: Iterable[CampaignState],
    mapping: CampaignMapping,
    max_lengths: Mapping[str, int | None],
    integer_columns: Iterable[str] = (),
) -> dict[str, str | int]:
    """Dataverse column → value for the mapped campaign values (unmapped ones skipped).

    Text is fitted to each column's max length; a whole-number column gets the total count instead."""
    states = list(states)
    if not states:
        return {}
    lines = render_values(states)
    numeric = set(integer_columns)
    totals = {
        CampaignValue.OPENS: sum(s.count("open") for s in states),
        CampaignValue.CLICKS: sum(s.count("click") for s in states),
    }
    body: dict[str, str | int] = {}
    for value, column in mapping.columns.items():
        if column in numeric and value in totals:
            body[column] = totals[value]
        else:
            body[column] = _fit_lines(lines[value], max_lengths.get(column))
    return body
