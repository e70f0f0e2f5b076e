"""A Genesy record kind in one workspace: its Dynamics table and the mappings that apply to it.

Use cases ask a `RecordType` for what differs between contacts (or leads) and companies, instead of
comparing kind strings.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from shared.domain.entities import EntityKind
from shared.domain.mappings import CompanyMatching, ContactMatching, EntityExportMapping
from shared.domain.matching import MatchTarget

__all__ = ["RecordType"]


@dataclass(frozen=True)
class RecordType:
    kind: Literal["contact", "company"]
    entity: EntityKind
    export: EntityExportMapping
    matching: ContactMatching | CompanyMatching
    sync_back: Mapping[str, str]

    @property
    def is_company(self) -> bool:
        return self.kind == "company"

    def match_target(self, extra_select: Iterable[str] = ()) -> MatchTarget:
        """How to find this kind's existing records; a contact's parent account is read too (what
        `/associations` needs to tell a new link from an old one)."""
        if isinstance(self.matching, CompanyMatching):
            return MatchTarget.for_companies(self.matching, extra_select=[*self.sync_back.values(), *extra_select])
        parent = [self.entity.parent_value] if self.entity.parent_value else []
        select = [*self.sync_back.values(), *parent, *extra_select]
        return MatchTarget.for_contacts(self.matching, self.entity.logical_name, extra_select=select)
