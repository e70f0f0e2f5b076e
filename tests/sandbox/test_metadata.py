"""Metadata endpoints: EntityDefinitions, AttributeMetadata (base vs. cast) and picklist options."""

from __future__ import annotations

import httpx

from tests.sandbox.conftest import error_of

CRM = "Microsoft.Dynamics.CRM."


def test_entity_definition_by_logical_name(api: httpx.Client) -> None:
    body = api.get("EntityDefinitions(LogicalName='contact')",
                   params={"$select": "LogicalName,EntitySetName,PrimaryIdAttribute,PrimaryNameAttribute"}).json()
    assert (body["EntitySetName"], body["PrimaryIdAttribute"], body["PrimaryNameAttribute"]) == (
        "contacts", "contactid", "fullname")
    assert "MetadataId" in body and "ObjectTypeCode" not in body


def test_entity_definitions_filter(api: httpx.Client) -> None:
    body = api.get("EntityDefinitions", params={"$select": "LogicalName,EntitySetName",
                                                "$filter": "LogicalName eq 'task'"}).json()
    assert [(v["LogicalName"], v["EntitySetName"]) for v in body["value"]] == [("task", "tasks")]


def test_attributes_with_base_properties(api: httpx.Client) -> None:
    body = api.get("EntityDefinitions(LogicalName='contact')/Attributes",
                   params={"$select": "LogicalName,AttributeType,AttributeTypeName,RequiredLevel,IsValidForCreate"}
                   ).json()
    attrs = {a["LogicalName"]: a for a in body["value"]}
    assert attrs["lastname"]["RequiredLevel"]["Value"] == "ApplicationRequired"
    assert attrs["firstname"]["RequiredLevel"]["Value"] == "None"
    assert attrs["gd_campaign_reply_analysis"]["AttributeType"] == "Memo"
    assert attrs["parentcustomerid"]["AttributeType"] == "Customer"
    assert attrs["ownerid"]["AttributeTypeName"]["Value"] == "OwnerType"
    assert attrs["leadsourcecode"]["AttributeType"] == "Picklist"
    assert attrs["fullname"]["IsValidForCreate"] is False
    assert attrs["firstname"]["@odata.type"] == f"#{CRM}StringAttributeMetadata"


def test_max_length_needs_the_string_cast(api: httpx.Client) -> None:
    base = api.get("EntityDefinitions(LogicalName='contact')/Attributes", params={"$select": "LogicalName,MaxLength"})
    assert base.status_code == 400
    assert error_of(base)["code"] == "0x80060888" and "MaxLength" in error_of(base)["message"]
    cast = api.get(f"EntityDefinitions(LogicalName='contact')/Attributes/{CRM}StringAttributeMetadata",
                   params={"$select": "LogicalName,MaxLength"}).json()
    lengths = {a["LogicalName"]: a["MaxLength"] for a in cast["value"]}
    assert lengths["firstname"] == 50 and lengths["emailaddress1"] == 100 and lengths["gd_linkedinurl"] == 200
    assert "leadsourcecode" not in lengths


def test_unselected_attributes_carry_derived_properties(api: httpx.Client) -> None:
    body = api.get("EntityDefinitions(LogicalName='account')", params={"$expand": "Attributes"}).json()
    attrs = {a["LogicalName"]: a for a in body["Attributes"]}
    assert attrs["name"]["MaxLength"] == 160
    assert attrs["numberofemployees"]["AttributeType"] == "Integer"
    assert attrs["revenue"]["AttributeType"] == "Money"
    assert attrs["ownerid"]["Targets"] == ["systemuser", "team"]


def test_expand_attributes_with_nested_select(api: httpx.Client) -> None:
    body = api.get("EntityDefinitions(LogicalName='lead')",
                   params={"$select": "LogicalName", "$expand": "Attributes($select=LogicalName,AttributeType)"}
                   ).json()
    assert {"companyname", "lastname", "gd_campaign_status"} <= {a["LogicalName"] for a in body["Attributes"]}


def test_picklist_options_collection_cast(api: httpx.Client) -> None:
    body = api.get(f"EntityDefinitions(LogicalName='contact')/Attributes/{CRM}PicklistAttributeMetadata",
                   params={"$select": "LogicalName", "$expand": "OptionSet($select=Options)"}).json()
    by_name = {a["LogicalName"]: a for a in body["value"]}
    options = by_name["leadsourcecode"]["OptionSet"]["Options"]
    labels = {o["Value"]: o["Label"]["UserLocalizedLabel"]["Label"] for o in options}
    assert labels[8] == "Web"
    assert options[0]["Label"]["LocalizedLabels"][0]["LanguageCode"] == 1033


def test_picklist_options_single_attribute_cast(api: httpx.Client) -> None:
    body = api.get(f"EntityDefinitions(LogicalName='account')/Attributes(LogicalName='industrycode')/"
                   f"{CRM}PicklistAttributeMetadata", params={"$select": "LogicalName",
                                                             "$expand": "OptionSet($select=Options)"}).json()
    assert body["LogicalName"] == "industrycode"
    assert {o["Value"]: o["Label"]["UserLocalizedLabel"]["Label"] for o in body["OptionSet"]["Options"]}[7] == (
        "Consulting")


def test_status_options_name_their_state(api: httpx.Client) -> None:
    body = api.get(f"EntityDefinitions(LogicalName='task')/Attributes(LogicalName='statuscode')/"
                   f"{CRM}StatusAttributeMetadata", params={"$expand": "OptionSet"}).json()
    states = {o["Value"]: o["State"] for o in body["OptionSet"]["Options"]}
    assert states[5] == 1 and states[2] == 0


def test_option_set_is_not_on_base_attribute_type(api: httpx.Client) -> None:
    resp = api.get("EntityDefinitions(LogicalName='contact')/Attributes", params={"$expand": "OptionSet"})
    assert resp.status_code == 400


def test_unknown_entity_is_404(api: httpx.Client) -> None:
    assert api.get("EntityDefinitions(LogicalName='nosuch')").status_code == 404


def test_whoami_and_unknown_entity_set(api: httpx.Client) -> None:
    assert api.get("WhoAmI").status_code == 200
    resp = api.get("nosuchthings")
    assert resp.status_code == 404 and error_of(resp)["code"] == "0x80060888"
