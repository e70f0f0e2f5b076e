"""EntityDefinitions / AttributeMetadata documents shaped like Dataverse's metadata Web API.

Faithful where clients trip: on the base `Attributes` collection only base AttributeMetadata
properties may be selected (`MaxLength` needs the `Microsoft.Dynamics.CRM.StringAttributeMetadata`
cast), and `OptionSet` is a navigation property that must be expanded on an enum-typed cast.
"""

from __future__ import annotations

from typing import Any

from devstack.dataverse_sandbox.errors import DataverseError
from devstack.dataverse_sandbox.schema import ENTITIES, Attribute, Entity, Option

__all__ = [
    "ATTRIBUTE_CASTS",
    "BASE_ATTRIBUTE_PROPS",
    "ENTITY_PROPS",
    "attribute_document",
    "cast_of",
    "entity_document",
    "find_entity",
    "key_documents",
    "project_attribute",
]

_NS = "Microsoft.Dynamics.CRM."
_CAST_BY_TYPE = {
    "String": "StringAttributeMetadata", "Memo": "MemoAttributeMetadata",
    "Integer": "IntegerAttributeMetadata", "BigInt": "BigIntAttributeMetadata",
    "Decimal": "DecimalAttributeMetadata", "Double": "DoubleAttributeMetadata",
    "Money": "MoneyAttributeMetadata", "Boolean": "BooleanAttributeMetadata",
    "DateTime": "DateTimeAttributeMetadata", "Picklist": "PicklistAttributeMetadata",
    "State": "StateAttributeMetadata", "Status": "StatusAttributeMetadata",
    "Lookup": "LookupAttributeMetadata", "Customer": "LookupAttributeMetadata",
    "Owner": "LookupAttributeMetadata", "Uniqueidentifier": "UniqueIdentifierAttributeMetadata",
    "EntityName": "EntityNameAttributeMetadata",
}
_TYPE_NAME = {"Uniqueidentifier": "UniqueidentifierType"}
BASE_ATTRIBUTE_PROPS = frozenset({
    "MetadataId", "HasChanged", "AttributeOf", "AttributeType", "AttributeTypeName", "ColumnNumber",
    "EntityLogicalName", "IsCustomAttribute", "IsPrimaryId", "IsPrimaryName", "IsValidODataAttribute",
    "IsValidForCreate", "IsValidForRead", "IsValidForUpdate", "IsLogical", "IsManaged", "IsSecured",
    "IsFilterable", "IsSearchable", "IsRetrievable", "LogicalName", "SchemaName", "ExternalName",
    "SourceType", "Description", "DisplayName", "RequiredLevel", "IsCustomizable", "IsRenameable",
    "IsValidForAdvancedFind", "IsValidForForm", "IsValidForGrid", "IsRequiredForForm",
    "IntroducedVersion", "DeprecatedVersion", "AutoNumberFormat", "InheritsFrom",
})
_DERIVED_PROPS: dict[str, frozenset[str]] = {
    "StringAttributeMetadata": frozenset({"MaxLength", "Format", "FormatName", "DatabaseLength",
                                          "IsLocalizable", "YomiOf", "ImeMode"}),
    "MemoAttributeMetadata": frozenset({"MaxLength", "Format", "FormatName", "IsLocalizable", "ImeMode"}),
    "IntegerAttributeMetadata": frozenset({"MaxValue", "MinValue", "Format"}),
    "BigIntAttributeMetadata": frozenset({"MaxValue", "MinValue"}),
    "DecimalAttributeMetadata": frozenset({"MaxValue", "MinValue", "Precision", "ImeMode"}),
    "DoubleAttributeMetadata": frozenset({"MaxValue", "MinValue", "Precision", "ImeMode"}),
    "MoneyAttributeMetadata": frozenset({"MaxValue", "MinValue", "Precision", "PrecisionSource", "ImeMode"}),
    "BooleanAttributeMetadata": frozenset({"DefaultValue", "OptionSet"}),
    "DateTimeAttributeMetadata": frozenset({"Format", "DateTimeBehavior", "CanChangeDateTimeBehavior",
                                            "ImeMode"}),
    "PicklistAttributeMetadata": frozenset({"DefaultFormValue", "OptionSet", "GlobalOptionSet"}),
    "StateAttributeMetadata": frozenset({"DefaultFormValue", "OptionSet"}),
    "StatusAttributeMetadata": frozenset({"DefaultFormValue", "OptionSet"}),
    "LookupAttributeMetadata": frozenset({"Targets", "Format"}),
    "UniqueIdentifierAttributeMetadata": frozenset(),
    "EntityNameAttributeMetadata": frozenset(),
}
ATTRIBUTE_CASTS = frozenset(_DERIVED_PROPS)
_NAV_PROPS = frozenset({"OptionSet", "GlobalOptionSet"})
ENTITY_PROPS = frozenset({
    "MetadataId", "LogicalName", "SchemaName", "EntitySetName", "LogicalCollectionName",
    "CollectionSchemaName", "PrimaryIdAttribute", "PrimaryNameAttribute", "ObjectTypeCode", "IsActivity",
    "IsCustomEntity", "IsPrivate", "IsManaged", "OwnershipType", "DisplayName", "DisplayCollectionName",
    "Description", "HasActivities", "HasNotes", "TableType", "IsIntersect", "IsLogicalEntity",
    "IsValidForAdvancedFind", "HasChanged", "Attributes", "Keys", "ChangeTrackingEnabled",
})


def _label(text: str) -> dict[str, Any]:
    loc = {"Label": text, "LanguageCode": 1033, "IsManaged": True, "MetadataId": None, "HasChanged": None}
    return {"LocalizedLabels": [loc] if text else [], "UserLocalizedLabel": loc if text else None}


def find_entity(key: str) -> Entity:
    """`LogicalName='contact'` or a MetadataId GUID."""
    k = key.strip()
    if k.startswith("LogicalName="):
        name = k.split("=", 1)[1].strip().strip("'")
        ent = ENTITIES.get(name)
    else:
        ent = next((e for e in ENTITIES.values() if e.metadata_id == k.lower()), None)
    if ent is None:
        raise DataverseError(404, "0x80040217", f"Could not find entity with key {k}")
    return ent


def cast_of(attr: Attribute) -> str:
    return _CAST_BY_TYPE[attr.type]


def entity_document(ent: Entity, change_tracking: bool = True) -> dict[str, Any]:
    """The EntityMetadata of `ent`; `change_tracking` is its ChangeTrackingEnabled (the sandbox's knob)."""
    return {
        "MetadataId": ent.metadata_id,
        "LogicalName": ent.logical_name,
        "SchemaName": ent.schema_name,
        "EntitySetName": ent.entity_set,
        "LogicalCollectionName": ent.entity_set,
        "CollectionSchemaName": ent.schema_name + "s",
        "PrimaryIdAttribute": ent.primary_id,
        "PrimaryNameAttribute": ent.primary_name,
        "ObjectTypeCode": ent.object_type_code,
        "IsActivity": ent.is_activity,
        "IsCustomEntity": False,
        "IsPrivate": False,
        "IsManaged": True,
        "IsIntersect": False,
        "IsLogicalEntity": False,
        "IsValidForAdvancedFind": True,
        "HasActivities": not ent.is_activity,
        "HasNotes": True,
        "HasChanged": None,
        "TableType": "Standard",
        "ChangeTrackingEnabled": change_tracking,
        "OwnershipType": ent.ownership,
        "DisplayName": _label(ent.display_name),
        "DisplayCollectionName": _label(ent.display_name + "s"),
        "Description": _label(""),
    }


def _options_document(attr: Attribute, ent: Entity) -> dict[str, Any]:
    def option(o: Option) -> dict[str, Any]:
        doc: dict[str, Any] = {"Value": o.value, "Label": _label(o.label), "Description": _label(""),
                               "Color": None, "IsManaged": True, "ExternalValue": None,
                               "ParentValues": [], "MetadataId": None, "HasChanged": None}
        if attr.type == "Status":
            doc["State"] = o.state
            doc["@odata.type"] = "#Microsoft.Dynamics.CRM.StatusOptionMetadata"
        if attr.type == "State":
            doc["InvariantName"] = o.label
            doc["DefaultStatus"] = next((s.value for s in ent.attributes["statuscode"].options
                                         if s.state == o.value), None)
            doc["@odata.type"] = "#Microsoft.Dynamics.CRM.StateOptionMetadata"
        return doc

    meta_id = attr.metadata_id(ent.logical_name + ":optionset")
    if attr.type == "Boolean":
        return {"MetadataId": meta_id, "Name": f"{ent.logical_name}_{attr.logical_name}", "IsGlobal": False,
                "OptionSetType": "Boolean", "TrueOption": option(Option(1, "Yes")),
                "FalseOption": option(Option(0, "No"))}
    return {"MetadataId": meta_id, "Name": f"{ent.logical_name}_{attr.logical_name}", "IsGlobal": False,
            "OptionSetType": attr.type, "Options": [option(o) for o in attr.options]}


def attribute_document(ent: Entity, attr: Attribute) -> dict[str, Any]:
    """The full concrete-type document of one column (OptionSet only via `project_attribute`)."""
    cast = cast_of(attr)
    doc: dict[str, Any] = {
        "@odata.type": f"#{_NS}{cast}",
        "MetadataId": attr.metadata_id(ent.logical_name),
        "HasChanged": None,
        "AttributeOf": None,
        "AttributeType": attr.type,
        "AttributeTypeName": {"Value": _TYPE_NAME.get(attr.type, f"{attr.type}Type")},
        "ColumnNumber": list(ent.attributes).index(attr.logical_name) + 1,
        "EntityLogicalName": ent.logical_name,
        "IsCustomAttribute": attr.custom,
        "IsPrimaryId": attr.is_primary_id,
        "IsPrimaryName": attr.is_primary_name,
        "IsValidODataAttribute": True,
        "IsValidForCreate": attr.valid_for_create,
        "IsValidForRead": True,
        "IsValidForUpdate": attr.valid_for_update,
        "IsLogical": False,
        "IsManaged": not attr.custom,
        "IsSecured": False,
        "IsFilterable": True,
        "IsSearchable": True,
        "IsRetrievable": True,
        "IsCustomizable": {"Value": True, "CanBeChanged": True, "ManagedPropertyLogicalName": "iscustomizable"},
        "IsRenameable": {"Value": True, "CanBeChanged": True, "ManagedPropertyLogicalName": "isrenameable"},
        "IsValidForAdvancedFind": {"Value": True, "CanBeChanged": True,
                                   "ManagedPropertyLogicalName": "canmodifysearchsettings"},
        "IsValidForForm": True,
        "IsValidForGrid": True,
        "IsRequiredForForm": attr.required in ("ApplicationRequired", "SystemRequired"),
        "LogicalName": attr.logical_name,
        "SchemaName": attr.schema_name,
        "ExternalName": None,
        "SourceType": 0,
        "IntroducedVersion": "1.0" if not attr.custom else "1.0.0.0",
        "DeprecatedVersion": None,
        "AutoNumberFormat": None,
        "InheritsFrom": None,
        "Description": _label(""),
        "DisplayName": _label(attr.display_name),
        "RequiredLevel": {"Value": attr.required, "CanBeChanged": not attr.is_primary_id,
                          "ManagedPropertyLogicalName": "canmodifyrequirementlevelsettings"},
    }
    if cast in ("StringAttributeMetadata", "MemoAttributeMetadata"):
        doc.update({"MaxLength": attr.max_length, "Format": attr.string_format if attr.type == "String" else "TextArea",
                    "FormatName": {"Value": attr.string_format if attr.type == "String" else "TextArea"},
                    "IsLocalizable": False, "ImeMode": "Auto"})
        if attr.type == "String":
            doc.update({"DatabaseLength": (attr.max_length or 0) * 2, "YomiOf": None})
    elif cast in ("IntegerAttributeMetadata", "BigIntAttributeMetadata"):
        lo, hi = (-2147483648, 2147483647) if attr.type == "Integer" else (-(2**63), 2**63 - 1)
        doc.update({"MinValue": int(attr.min_value) if attr.min_value is not None else lo,
                    "MaxValue": int(attr.max_value) if attr.max_value is not None else hi})
        if attr.type == "Integer":
            doc["Format"] = "None"
    elif cast in ("DecimalAttributeMetadata", "DoubleAttributeMetadata", "MoneyAttributeMetadata"):
        doc.update({"MinValue": attr.min_value if attr.min_value is not None else -100000000000.0,
                    "MaxValue": attr.max_value if attr.max_value is not None else 100000000000.0,
                    "Precision": 2, "ImeMode": "Auto"})
        if attr.type == "Money":
            doc["PrecisionSource"] = 2
    elif cast == "DateTimeAttributeMetadata":
        doc.update({"Format": "DateOnly" if attr.date_only else "DateAndTime",
                    "DateTimeBehavior": {"Value": "DateOnly" if attr.date_only else "UserLocal"},
                    "CanChangeDateTimeBehavior": {"Value": False, "CanBeChanged": False,
                                                  "ManagedPropertyLogicalName": "canchangedatetimebehavior"},
                    "ImeMode": "Auto"})
    elif cast == "BooleanAttributeMetadata":
        doc["DefaultValue"] = False
    elif cast in ("PicklistAttributeMetadata", "StateAttributeMetadata", "StatusAttributeMetadata"):
        doc["DefaultFormValue"] = attr.options[0].value if attr.options and attr.type == "Picklist" else -1
    elif cast == "LookupAttributeMetadata":
        doc.update({"Targets": list(attr.targets), "Format": "None"})
    return doc


def project_attribute(ent: Entity, attr: Attribute, select: list[str] | None, expand: dict[str, Any] | None,
                      cast: str | None) -> dict[str, Any]:
    """Apply `$select`/`$expand` to one attribute as seen through `cast` (None = base AttributeMetadata)."""
    allowed = BASE_ATTRIBUTE_PROPS | (_DERIVED_PROPS[cast] if cast else frozenset())
    type_name = f"{_NS}{cast or 'AttributeMetadata'}"
    doc = attribute_document(ent, attr)
    if select:
        for name in select:
            if name not in allowed or name in _NAV_PROPS:
                raise DataverseError.unknown_property(name, type_name)
        out = {k: doc[k] for k in ("@odata.type", "MetadataId", *select) if k in doc}
    else:
        out = doc
    for nav, options in (expand or {}).items():
        if nav != "OptionSet" or "OptionSet" not in allowed:
            raise DataverseError.unknown_property(nav, type_name)
        options_doc = _options_document(attr, ent)
        nested_select = options.get("$select") if isinstance(options, dict) else None
        if nested_select:
            options_doc = {k: options_doc[k] for k in ("MetadataId", *nested_select) if k in options_doc}
        out["OptionSet"] = options_doc
    return out


def key_documents(ent: Entity) -> list[dict[str, Any]]:
    return [{"MetadataId": ent.metadata_id, "LogicalName": f"{ent.logical_name}_{'_'.join(cols)}_key",
             "SchemaName": f"{ent.logical_name}_{'_'.join(cols)}_key", "KeyAttributes": list(cols),
             "EntityKeyIndexStatus": "Active", "EntityLogicalName": ent.logical_name}
            for cols in ent.alternate_keys]
