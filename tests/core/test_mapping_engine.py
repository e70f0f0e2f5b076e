import pytest

from shared.domain.mapping_engine import (
    ExportValueError,
    UserDirectory,
    build_record,
    convert_value,
    fit_value,
    is_engaged,
    resolve_export_values,
    resolve_identity,
    resolve_owner,
    resolve_sender,
)
from shared.domain.mappings import (
    EngagementField,
    EntityExportMapping,
    ExportField,
    FieldMapping,
    FixedField,
    IdentityMapping,
    UserMapping,
    UserMappingEntry,
    WritePolicy,
)
from shared.domain.metadata import ColumnMetadata, EntityMetadata, SystemUser

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


def test_too_long_text_is_cut_to_the_column_and_the_record_still_written() -> None:
    record = {"lastName": "x" * 60, "title": "T" * 121, "firstName": "F" * 300, "description": "d" * 2500}
    plan = build_record(MAPPING, record, export_values={}, existing=None, metadata=META)
    assert plan.body["lastname"] == "x" * 50
    assert plan.body["jobtitle"] == "T" * 100
    assert plan.body["firstname"] == "F" * 50
    assert plan.body["description"] == "d" * 2000  # memo columns too
    assert "jobtitle: cut to 100 characters (was 121)" in plan.warnings
    assert "lastname: cut to 50 characters (was 60)" in plan.warnings
    assert "description: cut to 2000 characters (was 2500)" in plan.warnings
    assert {w.column for w in plan.writes} >= {"lastname", "jobtitle", "firstname", "description"}


def test_cutting_counts_utf16_units_like_dataverse_and_never_splits_a_character() -> None:
    column = ColumnMetadata("x", "String", 5)
    assert convert_value("ab😀cd", column) == "ab😀c"  # the emoji counts two, as in .NET
    assert convert_value("abcd😀", column) == "abcd"  # not half an emoji
    fitted = fit_value("ñ" * 7, column)
    assert fitted.value == "ñ" * 5 and fitted.notes == ("cut to 5 characters (was 7)",)


@pytest.mark.parametrize(
    "value", ["someone.with.a.very.long.address@example.com", "https://example.com/a/long/path", "+34 600 000 000 00"]
)
def test_an_email_url_or_phone_too_long_is_not_cut_but_skipped(value: str) -> None:
    mapping = EntityExportMapping(
        fields=[FieldMapping(source="v", column="jobtitle"), FieldMapping(source="lastName", column="lastname")]
    )
    meta = EntityMetadata(
        "contact",
        "contacts",
        "contactid",
        "fullname",
        {
            "jobtitle": ColumnMetadata("jobtitle", "String", 12),
            "lastname": ColumnMetadata("lastname", "String", 50),
        },
    )
    plan = build_record(mapping, {"v": value, "lastName": "Lee"}, export_values={}, existing=None, metadata=meta)
    assert "jobtitle" not in plan.body and plan.body["lastname"] == "Lee"
    assert any(w.startswith("jobtitle:") and "cut" in w for w in plan.warnings)


def test_lone_surrogates_in_text_are_replaced_not_sent() -> None:
    fitted = fit_value("Ana\ud800", ColumnMetadata("x", "String", 50))
    assert fitted.value == "Ana\ufffd"
    assert fitted.notes and "surrogate" in fitted.notes[0]
    fitted.value.encode("utf-8")  # JSON bodies are UTF-8: this must not raise


@pytest.mark.parametrize(
    ("value", "column"),
    [
        (2**31, ColumnMetadata("x", "Integer")),
        ("-2147483649", ColumnMetadata("x", "Integer")),
        (2**63, ColumnMetadata("x", "BigInt")),
        ("1e12", ColumnMetadata("x", "Decimal")),
        (-1e15, ColumnMetadata("x", "Money")),
        (1e300, ColumnMetadata("x", "Double")),
        ("1700-01-01", ColumnMetadata("x", "DateTime")),
        ("2024-13-45", ColumnMetadata("x", "DateTime")),
        ("0001-01-01T00:00:00+01:00", ColumnMetadata("x", "DateTime")),
        ([], ColumnMetadata("x", "MultiSelectPicklist", options={"a": 1})),
    ],
)
def test_values_dynamics_would_refuse_for_their_shape_raise(value: object, column: ColumnMetadata) -> None:
    with pytest.raises(ValueError):
        convert_value(value, column)


def test_values_at_the_edges_of_their_type_are_kept() -> None:
    assert convert_value(2**31 - 1, ColumnMetadata("x", "Integer")) == 2**31 - 1
    assert convert_value(2**40, ColumnMetadata("x", "BigInt")) == 2**40
    assert convert_value("922337203685477", ColumnMetadata("x", "Money")) == 922337203685477.0
    assert convert_value("1753-01-01", ColumnMetadata("x", "DateTime")) == "1753-01-01"


def test_a_number_out_of_range_skips_only_its_column() -> None:
    plan = build_record(MAPPING, {"kids": 10**12, "lastName": "X"}, export_values={}, existing=None, metadata=META)
    assert "numberofchildren" not in plan.body and plan.body["lastname"] == "X"
    assert any(w.startswith("numberofchildren:") and "Integer" in w for w in plan.warnings)


def test_multi_select_keeps_the_known_labels_and_notes_the_others() -> None:
    column = ColumnMetadata("gd_topics", "MultiSelectPicklist", options={"sales": 1, "marketing": 2, "it": 3})
    fitted = fit_value("Sales;Unknown;IT;sales", column)
    assert fitted.value == "1,3"
    assert fitted.notes == ("left out 'Unknown': not labels of choice column gd_topics",)
    assert convert_value(["Marketing", 3], column) == "2,3"
    with pytest.raises(ValueError, match="not a label"):
        convert_value("Nope;Neither", column)


def test_every_column_type_has_its_own_converter() -> None:
    from shared.domain.mapping_engine import _CONVERTERS

    for kind in (
        "String",
        "Memo",
        "Integer",
        "BigInt",
        "Decimal",
        "Double",
        "Money",
        "Boolean",
        "Picklist",
        "State",
        "Status",
        "MultiSelectPicklist",
        "DateTime",
        "Lookup",
        "Customer",
        "Owner",
    ):
        assert kind in _CONVERTERS
    assert convert_value({"a": 1}, ColumnMetadata("x", "Virtual")) == {"a": 1}  # unknown types: as is
    assert convert_value("x", None) == "x"


def test_linkedin_urls_are_written_in_their_canonical_form() -> None:
    mapping = EntityExportMapping(
        fields=[FieldMapping(source="linkedinUrl", column="gd_linkedinurl"), FieldMapping(source="note", column="x")]
    )
    cases = {
        "https://es.linkedin.com/in/Jose-Garcia/?originalSubdomain=es": "https://www.linkedin.com/in/jose-garcia",
        "http://www.linkedin.com/in/JOSE-GARCIA": "https://www.linkedin.com/in/jose-garcia",
        "linkedin.com/in/jos%C3%A9-garc%C3%ADa/": "https://www.linkedin.com/in/jos%C3%A9-garc%C3%ADa",
        "https://uk.linkedin.com/company/Acme-Inc/about/": "https://www.linkedin.com/company/acme-inc",
        "not a url": "not a url",  # not LinkedIn: written as Genesy sent it
    }
    for raw, written in cases.items():
        plan = build_record(mapping, {"linkedinUrl": raw, "note": raw}, export_values={}, existing=None)
        assert plan.body["gd_linkedinurl"] == written
        assert plan.body["x"] == raw  # other fields are not touched


def test_a_missing_required_column_is_only_a_warning() -> None:
    plan = build_record(MAPPING, {"firstName": "Only"}, export_values={}, existing=None, metadata=META)
    assert plan.body["firstname"] == "Only"
    assert "lastname: required by Dynamics and no value is mapped" in plan.warnings
    assert not any(s.column == "firstname" for s in plan.skipped)


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


ALICE = SystemUser(U1, "Alice", "Alice.Martin@contoso.example", False, upn="alice@contoso.onmicrosoft.com")
BRUNO = SystemUser(U2, "Bruno", "bruno@contoso.example", False)
CHLOE = SystemUser(U3, "Chloé", None, False, upn="CONTOSO\\chloe")


def test_an_owner_named_by_email_is_auto_matched_to_an_enabled_user() -> None:
    users = UserMapping(default_owner_id=U3)
    enabled = [ALICE, BRUNO, CHLOE]
    by_email = resolve_owner({"ownerEmail": "alice.martin@CONTOSO.example"}, users, enabled, creating=True)
    assert (by_email.owner_id, by_email.source, by_email.via) == (U1, "auto-matched", "alice.martin@contoso.example")
    by_upn = resolve_owner({"ownerEmail": " Alice@Contoso.onmicrosoft.com "}, users, enabled, creating=True)
    assert (by_upn.owner_id, by_upn.source) == (U1, "auto-matched")
    by_owner_id = resolve_owner({"ownerId": "bruno@contoso.example"}, users, enabled, creating=False)
    assert (by_owner_id.owner_id, by_owner_id.source) == (U2, "auto-matched")
    # Not an enabled user's address (disabled users are not listed): the default owner, with a note.
    gone = resolve_owner({"ownerEmail": "dana.gone@contoso.example"}, users, enabled, creating=True)
    assert (gone.owner_id, gone.source) == (U3, "default") and "dana.gone" in (gone.note or "")
    # A `DOMAIN\\user` user name is no address; an update with only an owner e-mail keeps its owner.
    assert UserDirectory.of(enabled).user_with_address("contoso\\chloe") is None
    assert resolve_owner({"ownerEmail": "bruno@contoso.example"}, users, enabled, creating=False).owner_id is None


def test_the_user_mapping_wins_over_auto_match_unless_its_user_is_disabled() -> None:
    mapped = UserMapping(users=[UserMappingEntry(genesy_user="alice.martin@contoso.example", systemuser_id=U2)])
    decision = resolve_owner({"ownerEmail": "alice.martin@contoso.example"}, mapped, [ALICE, BRUNO], creating=True)
    assert (decision.owner_id, decision.source) == (U2, "users")
    fallback = resolve_owner({"ownerEmail": "alice.martin@contoso.example"}, mapped, [ALICE], creating=True)
    assert (fallback.owner_id, fallback.source) == (U1, "auto-matched") and "disabled" in (fallback.note or "")
    # Bare ids still work (no e-mail known): the previous callers' form.
    assert resolve_owner({"ownerId": U1}, mapped, [U1], creating=True).source == "ownerId"


def test_an_address_two_users_share_matches_neither() -> None:
    twin = SystemUser(U3, "Other Alice", "alice.martin@contoso.example", False)
    directory = UserDirectory.of([ALICE, twin])
    assert directory.user_with_address("alice.martin@contoso.example") is None
    assert directory.user_with_address("alice@contoso.onmicrosoft.com") == U1


def test_sender_resolution_prefers_ids_and_mappings_then_email_then_default() -> None:
    users = UserMapping(
        identities=[IdentityMapping(identity="Sales Alice", systemuser_id=U1)],
        users=[UserMappingEntry(genesy_user="bruno@genesy.ai", systemuser_id=U2)],
        default_owner_id=U3,
    )
    enabled = [ALICE, BRUNO, CHLOE]
    assert resolve_sender(["nobody@x.example", "sales alice"], users, enabled).source == "identities"
    assert resolve_sender(["bruno@genesy.ai"], users, enabled).owner_id == U2
    # An explicit mapping of a later candidate beats an e-mail match of an earlier one.
    mixed = resolve_sender(["alice.martin@contoso.example", "bruno@genesy.ai"], users, enabled)
    assert (mixed.owner_id, mixed.source) == (U2, "users")
    auto = resolve_sender(["alice.martin@contoso.example"], users, enabled)
    assert (auto.owner_id, auto.source) == (U1, "auto-matched")
    assert resolve_sender(["someone@else.example"], users, enabled).source == "default"
    assert resolve_sender([], UserMapping(), enabled).source == "none"


def test_identity_resolution_by_role() -> None:
    users = UserMapping(identities=[IdentityMapping(identity="sales alice", systemuser_id=U1)], default_owner_id=U3)
    enabled = [ALICE, BRUNO, CHLOE]
    assert resolve_identity("sales alice", "sender", users, enabled).source == "identities"
    assert resolve_identity("sales alice", "owner", users, enabled).source == "default"  # identities: senders only
    assert resolve_identity(U2, "owner", users, enabled).source == "ownerId"
    assert resolve_identity("bruno@contoso.example", "owner", users, enabled).source == "auto-matched"
    assert resolve_identity("x@y.example", "owner", UserMapping(), enabled).source == "none"


def test_the_plan_marks_each_column_with_why() -> None:
    mapping = EntityExportMapping(
        fields=[
            FieldMapping(source="title", column="jobtitle"),
            FieldMapping(source="firstName", column="firstname", policy=WritePolicy.IF_EMPTY),
            FieldMapping(source="kids", column="numberofchildren"),
            FieldMapping(source="lastName", column="lastname"),
        ],
        fixed=[FixedField(column="leadsourcecode", value="Web", policy=WritePolicy.ON_CREATE)],
        engagement=[EngagementField(column="gd_status", value="Engaged")],
    )
    record = {"title": "x" * 150, "firstName": "Ann", "kids": "many"}
    plan = build_record(mapping, record, export_values={}, existing={"firstname": "Anna"}, metadata=META)
    [title] = plan.writes
    assert title.column == "jobtitle" and title.truncated and len(title.value) == 100
    codes = {s.column: (s.code, s.value) for s in plan.skipped}
    assert codes == {
        "firstname": ("if_empty", "Ann"),
        "numberofchildren": ("unconvertible", "many"),
        "lastname": ("no_value", None),
        "leadsourcecode": ("on_create", "Web"),
        "gd_status": ("not_engaged", None),
    }


def test_engagement_detection() -> None:
    assert is_engaged({"campaigns": "Q1 Outbound"})
    assert not is_engaged({"campaigns": ""})
    assert not is_engaged({})
    assert is_engaged({}, campaign_activity_seen=True)
