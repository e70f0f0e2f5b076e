"""What Dynamics tells about its tables and users, as the domain needs it (plain values, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["ColumnMetadata", "EntityMetadata", "SystemUser"]


@dataclass(frozen=True, slots=True)
class SystemUser:
    id: str
    name: str
    email: str | None  # primary e-mail (`internalemailaddress`)
    disabled: bool
    upn: str | None = None  # user name (`domainname`): the UPN for Entra ID users, `DOMAIN\\user` on premises


@dataclass(frozen=True, slots=True)
class ColumnMetadata:
    """What the mapping engine needs to convert and check a value for one column."""

    logical_name: str
    type: str
    max_length: int | None = None
    required: bool = False
    options: dict[str, int] = field(default_factory=dict)
    valid_for_create: bool = True
    valid_for_update: bool = True
    # For the admin's editors: the label Dynamics shows, the raw required level (None, Recommended,
    # ApplicationRequired, SystemRequired) and the choice options in their order, with their labels.
    display_name: str | None = None
    required_level: str | None = None
    choices: tuple[tuple[int, str], ...] = ()


@dataclass(frozen=True, slots=True)
class EntityMetadata:
    logical_name: str
    entity_set_name: str
    primary_id: str
    primary_name: str | None
    columns: dict[str, ColumnMetadata]
    # EntityDefinitions' ChangeTrackingEnabled: reconciliation follows this table by change tracking when True,
    # by `modifiedon` (no deletions) when False; None when Dynamics did not say.
    change_tracking: bool | None = None
