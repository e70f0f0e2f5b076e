import pytest

from mapping_store.models import (
    EngagementField,
    EntityExportMapping,
    ExportField,
    FieldMapping,
    FixedField,
    UserMapping,
    UserMappingEntry,
    WritePolicy,
)
from shared.dataverse.models import ColumnMetadata, EntityMetadata
from shared.mapping_engine import (
    ExportValueError,
    build_record,
    convert_value,
    is_engaged,
    resolve_export_values,
    resolve_owner,
)

U1 = "11111111-1111-1111-1111-111111111111"
U2 = "22222222-2222-2222-2222-222222222222"
U3 = "33333333-3333-3333-3333-333333333333"

META = EntityMetadata(
    logical_name="contact",
    entity_set_name="contacts",
    primary_id="contactid",
    primary_name="fullname",
    columns={
        c.logical_name: c
        for c in [
            ColumnMetadata("firstname", "String", 50),
            ColumnMetadata("lastname", "String", 50, required=True),
            ColumnMetadata("jobtitle", "String", 100),
            ColumnMetadata("description", "Memo", 2000),
            ColumnMetadata("numberofchildren", "Integer"),
            ColumnMetadata("leadsourcecode", "Picklist", options={"advertisement": 1, "web": 8}),
            ColumnMetadata("donotemail", "Boolean", options={"allow": 0, "do not allow": 1}),
            ColumnMetadata("birthdate", "DateTime"),
            ColumnMetadata("gd_status", "String", 100),
            ColumnMetadata("fullname", "String", 160, valid_for_create=False, valid_for_update=False),
        ]
    },
)

MAPPING = EntityExportMapping(
    fields=[
        FieldMapping(source="firstName", column="firstname"),
        FieldMapping(source="lastName", column="lastname"),
        FieldMapping(source="title", column="jobtitle", policy=WritePolicy.IF_EMPTY),
        FieldMapping(source="description", column="description", policy=WritePolicy.ON_CREATE),
        FieldMapping(source="kids", column="numberofchildren"),
    ],
    fixed=[FixedField(column="leadsourcecode", value="Web")],
    export_fields=[
        ExportField(name="consent", column="donotemail", options=["Allow", "Do Not Allow"], default="Allow")
    ],
    engagement=[EngagementField(column="gd_status", value="Engaged by Genesy")],
)


def test_create_writes_everything_with_conversions() -> None:
    record = {"firstName": "Ana", "lastName": "Núñez", "title": "CTO", "description": "hi", "kids": "2"}
    values = resolve_export_values(MAPPING, {})
    plan = build_record(MAPPING, record, export_values=values, existing=None, metadata=META, engaged=True)
    assert plan.creating
    assert plan.body == {
        "firstname": "Ana",
        "lastname": "Núñez",
        "jobtitle": "CTO",
        "description": "hi",
        "numberofchildren": 2,
        "leadsourcecode": 8,
        "donotemail": False,
        "gd_status": "Engaged by Genesy",
    }


def test_update_respects_write_policies_and_keeps_crm_values() -> None:
    record = {"firstName": "Ana", "lastName": "", "title": "CEO", "description": "new"}
    existing = {"jobtitle": "Founder", "description": "old", "lastname": "Núñez"}
    plan = build_record(MAPPING, record, export_values={}, existing=existing, metadata=META, engaged=False)
    assert plan.body == {"firstname": "Ana", "leadsourcecode": 8}
    reasons = {s.column: s.reason for s in plan.skipped}
    assert reasons["jobtitle"].startswith("if_empty")
    assert reasons["description"].startswith("on_create")
    assert reasons["lastname"] == "no value"  # an empty Genesy value never blanks Dynamics
    assert reasons["gd_status"] == "the record took part in no campaign"


def test_if_empty_writes_when_crm_column_is_empty() -> None:
    plan = build_record(MAPPING, {"title": "CEO"}, export_values={}, existing={"jobtitle": None}, metadata=META)
    assert plan.body["jobtitle"] == "CEO"


def test_export_values_must_be_an_allowed_option() -> None:
    with pytest.raises(ExportValueError) as err:
        resolve_export_values(MAPPING, {"consent": "Maybe"})
    assert err.value.field == "exportValues.consent"
    assert resolve_export_values(MAPPING, {"consent": "Do Not Allow"}) == {"consent": "Do Not Allow"}
    required = EntityExportMapping(export_fields=[ExportField(name="region", column="gd_status", required=True)])
    with pytest.raises(ExportValueError, match=r"exportValues\.region"):
        resolve_export_values(required, {})


def test_unconvertible_values_skip_the_column_with_a_warning() -> None:
    plan = build_record(MAPPING, {"kids": "two", "lastName": "X"}, export_values={}, existing=None, metadata=META)
    assert "numberofchildren" not in plan.body
    assert any("numberofchildren" in w for w in plan.warnings)
    assert plan.body["lastname"] == "X"


def test_too_long_values_are_sent_and_flagged() -> None:
    plan = build_record(MAPPING, {"lastName": "x" * 60}, export_values={}, existing=None, metadata=META)
    assert plan.body["lastname"] == "x" * 60  # Dynamics has the last word; its reason lands in the ledger
    assert any("holds 50" in w for w in plan.warnings)


def test_unknown_and_read_only_columns_are_skipped() -> None:
    mapping = EntityExportMapping(
        fields=[FieldMapping(source="a", column="gd_nope"), FieldMapping(source="b", column="fullname")]
    )
    plan = build_record(mapping, {"a": "1", "b": "2"}, export_values={}, existing=None, metadata=META)
    assert plan.body == {}
    assert {s.column for s in plan.skipped} == {"gd_nope", "fullname"}


@pytest.mark.parametrize(
    ("value", "column", "expected"),
    [
        ("yes", ColumnMetadata("x", "Boolean"), True),
        ("Do Not Allow", ColumnMetadata("x", "Boolean", options={"allow": 0, "do not allow": 1}), True),
        ("1,234", ColumnMetadata("x", "Integer"), 1234),
        (150.0, ColumnMetadata("x", "Integer"), 150),
        ("12.5", ColumnMetadata("x", "Money"), 12.5),
        ("2024-01-15T10:00:00+02:00", ColumnMetadata("x", "DateTime"), "2024-01-15T08:00:00Z"),
        ("2024-01-15", ColumnMetadata("x", "DateTime"), "2024-01-15"),
        ("advertisement", ColumnMetadata("x", "Picklist", options={"advertisement": 1}), 1),
        (1, ColumnMetadata("x", "Picklist", options={"advertisement": 1}), 1),
        (42, ColumnMetadata("x", "String"), "42"),
    ],
)
def test_convert_value(value: object, column: ColumnMetadata, expected: object) -> None:
    assert convert_value(value, column) == expected


@pytest.mark.parametrize(
    ("value", "column"),
    [
        ("51-200", ColumnMetadata("x", "Integer")),
        ("maybe", ColumnMetadata("x", "Boolean")),
        ("Unknown", ColumnMetadata("x", "Picklist", options={"web": 8})),
        (99, ColumnMetadata("x", "Picklist", options={"web": 8})),
        ("not a date", ColumnMetadata("x", "DateTime")),
        ("x", ColumnMetadata("x", "Lookup")),
    ],
)
def test_convert_value_rejects(value: object, column: ColumnMetadata) -> None:
    with pytest.raises(ValueError):
        convert_value(value, column)


def test_owner_resolution_order_and_fallbacks() -> None:
    users = UserMapping(users=[UserMappingEntry(genesy_user="ana@genesy.ai", systemuser_id=U2)], default_owner_id=U3)
    enabled = {U1, U2, U3}
    assert resolve_owner({"ownerId": U1}, users, enabled, creating=True).source == "ownerId"
    assert resolve_owner({"ownerEmail": "ANA@genesy.ai"}, users, enabled, creating=True).owner_id == U2
    assert resolve_owner({}, users, enabled, creating=True).owner_id == U3
    disabled = resolve_owner({"ownerId": U1}, users, {U2, U3}, creating=True)
    assert disabled.owner_id == U3 and disabled.source == "default" and "not an enabled" in (disabled.note or "")
    assert resolve_owner({}, users, enabled, creating=False).owner_id is None
    plan = build_record(
        EntityExportMapping(),
        {},
        export_values={},
        existing=None,
        owner=resolve_owner({}, users, enabled, creating=True),
    )
    assert plan.body == {"ownerid@odata.bind": f"/systemusers({U3})"}


def test_engagement_detection() -> None:
    assert is_engaged({"campaigns": "Q1 Outbound"})
    assert not is_engaged({"campaigns": ""})
    assert not is_engaged({})
    assert is_engaged({}, campaign_activity_seen=True)
