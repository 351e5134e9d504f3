"""TLP 2.0 (and TLP 1.0) marking definitions, and the level an object resolves to.

The resolved level is the most restrictive TLP among an object's object-level and
granular markings. Shieldwall never redacts parts of an object, so a granular RED
marking on one property makes the whole object RED: the safe reading for an
alliance where a leak cannot be recalled.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import IntEnum
from typing import Any

from shieldwall.stix.ids import valid_id

# Extension definition that FIRST's TLP 2.0 marking definitions use.
TLP2_EXTENSION_ID = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"


class TLP(IntEnum):
    """Ordered from the widest audience to the narrowest: comparisons mean 'more restricted'."""

    CLEAR = 0
    GREEN = 1
    AMBER = 2
    AMBER_STRICT = 3
    RED = 4

    @property
    def label(self) -> str:
        return "TLP:" + self.name.replace("_", "+")

    @property
    def short(self) -> str:
        return self.name.replace("_", "+").lower()

    @classmethod
    def parse(cls, text: str) -> TLP:
        """Accepts `amber+strict`, `TLP:AMBER+STRICT`, `amber_strict`, and TLP 1.0 `white`."""
        key = text.strip().upper().removeprefix("TLP:").replace("+", "_").replace("-", "_")
        if key == "WHITE":
            return cls.CLEAR
        try:
            return cls[key]
        except KeyError:
            raise ValueError(
                f"unknown TLP level {text!r} (clear, green, amber, amber+strict, red)"
            ) from None


TLP2_IDS: dict[TLP, str] = {
    TLP.CLEAR: "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    TLP.GREEN: "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    TLP.AMBER: "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    TLP.AMBER_STRICT: "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    TLP.RED: "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}

# TLP 1.0 as defined in the STIX 2.1 specification itself; WHITE reads as CLEAR.
TLP1_IDS: dict[TLP, str] = {
    TLP.CLEAR: "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9",
    TLP.GREEN: "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da",
    TLP.AMBER: "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82",
    TLP.RED: "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed",
}

# Ids other platforms mint for a TLP level and use on every instance: OpenCTI writes the
# TLP 1.0 ids above for CLEAR, GREEN, AMBER and RED and its own fixed id for AMBER+STRICT
# (its STATIC_MARKING_IDS); MISP (misp-stix) writes FIRST's TLP 2.0 ids. Anyone could
# store a definition under such an id declaring another level, so their level is pinned.
PLATFORM_TLP_IDS: dict[str, TLP] = {
    "marking-definition--826578e1-40ad-459f-bc73-ede076f81f37": TLP.AMBER_STRICT,  # OpenCTI
}

# Ids whose level is fixed: no definition anyone sends changes what they mark.
KNOWN_TLP_REFS: dict[str, TLP] = {v: k for k, v in TLP1_IDS.items()} | {
    v: k for k, v in TLP2_IDS.items()
} | PLATFORM_TLP_IDS


def tlp_marking_ref(level: TLP) -> str:
    """The TLP 2.0 marking-definition id Shieldwall writes for a level."""
    return TLP2_IDS[level]


def tlp_marking_definition(level: TLP) -> dict[str, Any]:
    """FIRST's TLP 2.0 marking-definition object, as published with the extension."""
    return {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": TLP2_IDS[level],
        "created": "2022-10-01T00:00:00.000Z",
        "name": level.label,
        "extensions": {TLP2_EXTENSION_ID: {"extension_type": "property-extension",
                                           "tlp_2_0": level.short}},
    }


def tlp_of_marking_definition(obj: Mapping[str, Any]) -> TLP | None:
    """The TLP level a marking-definition object declares, if it declares one.

    Recognises the official ids, TLP 1.0 `definition: {tlp: ...}`, the TLP 2.0
    extension property, and MISP/OpenCTI-style names such as `TLP:AMBER`.
    """
    if obj.get("id") in KNOWN_TLP_REFS:
        return KNOWN_TLP_REFS[obj["id"]]
    definition = obj.get("definition")
    if obj.get("definition_type") == "tlp" and isinstance(definition, Mapping):
        try:
            return TLP.parse(str(definition.get("tlp", "")))
        except ValueError:
            return None
    ext = (obj.get("extensions") or {}).get(TLP2_EXTENSION_ID)
    if isinstance(ext, Mapping) and "tlp_2_0" in ext:
        try:
            return TLP.parse(str(ext["tlp_2_0"]))
        except ValueError:
            return None
    for key in ("name", "x_opencti_definition"):  # MISP, OpenCTI: "TLP:RED"
        name = obj.get(key)
        if isinstance(name, str) and name.upper().startswith("TLP:"):
            try:
                return TLP.parse(name)
            except ValueError:
                return None
    return None


def declared_tlp(objs: Iterable[Any], into: dict[str, TLP] | None = None) -> dict[str, TLP]:
    """The levels the custom TLP marking definitions among `objs` declare, by id, added to
    `into` (returned). Where an id is declared twice the stricter level stays: sending a
    definition again cannot lower what it marks. Pinned ids (`KNOWN_TLP_REFS`) are left
    out, whatever a definition under one says, and so is an id that is not a STIX id (an
    object marked with one holds no such ref either).

    Whose definitions count is the caller's rule (docs/taxii.md, "Custom TLP marking
    definitions"): those of the member, peer or import that delivers what they mark,
    and the node's own, never another member's.
    """
    found = {} if into is None else into
    for obj in objs:
        if type(obj) is not dict or obj.get("type") != "marking-definition":
            continue
        mid = obj.get("id")
        if valid_id(mid) and mid not in KNOWN_TLP_REFS:
            level = tlp_of_marking_definition(obj)
            if level is not None:
                found[mid] = max(level, found.get(mid, level))
    return found


def stricter(*levels: Mapping[str, TLP]) -> dict[str, TLP]:
    """Merge id -> level maps; where several hold an id, the stricter level."""
    out: dict[str, TLP] = {}
    for m in levels:
        for mid, level in m.items():
            out[mid] = max(level, out.get(mid, level))
    return out


def marking_refs(obj: Mapping[str, Any]) -> Iterable[str]:
    """The marking-definition ids an object refers to. Anything else in those places (an
    unvalidated peer's object) is no marking this node knows, like an unknown id."""
    refs, granular = obj.get("object_marking_refs"), obj.get("granular_markings")
    for ref in refs if isinstance(refs, list) else ():
        if isinstance(ref, str):
            yield ref
    for gm in granular if isinstance(granular, list) else ():
        if isinstance(gm, Mapping) and isinstance(gm.get("marking_ref"), str):
            yield gm["marking_ref"]


def resolve_tlp(
    obj: Mapping[str, Any],
    default: TLP = TLP.AMBER,
    extra: Mapping[str, TLP] | None = None,
) -> TLP:
    """The most restrictive TLP an object carries; `default` when it carries none.

    `extra` maps marking-definition ids seen elsewhere (custom TLP definitions from
    MISP or another platform) to their level.
    """
    if obj.get("type") == "marking-definition":
        # Marking definitions themselves are public vocabulary, not intelligence.
        own = tlp_of_marking_definition(obj)
        if own is not None and not obj.get("object_marking_refs"):
            return TLP.CLEAR
    found: TLP | None = None
    for ref in marking_refs(obj):
        level = KNOWN_TLP_REFS.get(ref)
        if level is None and extra:
            level = extra.get(ref)
        if level is not None and (found is None or level > found):
            found = level
    return default if found is None else found

# Custom property by which a producer names who may receive an object marked AMBER,
# AMBER+STRICT or RED: member names, or sharing groups as `group:NAME`.
AUDIENCE_PROPERTY = "x_shieldwall_audience"

# Types whose own audience alone decides who reads them (beside the levels open to every
# reader): the member that delivered or created such an object does not read it unless the
# audience names it. A node's consultation policy is stored by the node's own member for
# the coordination cell; its thresholds are for the roles the policy names, and the
# node's member, whose users and TAXII clients are not all the cell, must not read them
# only because its node stored them.
CONSULTATION_POLICY_TYPE = "x-shieldwall-consultation-policy"
AUDIENCE_ONLY_TYPES: frozenset[str] = frozenset({CONSULTATION_POLICY_TYPE})
# Types only the node itself writes: never accepted from a member over TAXII nor from a
# peer. The policy's id is derived from the cell's name, so without this any member could
# post a newer version with thresholds of its own and steer the cell's recommendations.
LOCAL_ONLY_TYPES: frozenset[str] = frozenset({CONSULTATION_POLICY_TYPE})


def narrowest_audience(
    inputs: Iterable[tuple[TLP, Iterable[str] | None, str | None]], floor: TLP
) -> tuple[TLP, tuple[str, ...] | None]:
    """The marking for an object derived from `inputs` (level, audience, delivering member).

    A sighting repeats its indicator's value; a candidate campaign repeats the members,
    ids and shared values of what it groups. Marking either at a fixed level would hand a
    RED input to every ally, so the derived object takes the most restrictive level, and,
    when any input is named to an audience (or is AMBER+STRICT or RED, which without one
    is held by whoever delivered it), only the members every such input names. None means
    no audience constraint; an empty tuple means nobody beyond the object's creator.
    """
    level = floor
    audience: set[str] | None = None
    for tlp, names, source in inputs:
        level = max(level, tlp)
        named = {str(n) for n in names or ()}
        if not named and tlp < TLP.AMBER_STRICT:
            continue
        if source:
            named.add(source)
        audience = named if audience is None else audience & named
    return level, None if audience is None else tuple(sorted(audience))


def audience_property(audience: Iterable[str] | None, creator: str) -> dict[str, Any]:
    """The audience of an object derived with `narrowest_audience`, as the properties to
    set on it: its creator stays in (a node may always read what it made); {} when the
    inputs put no constraint on the audience."""
    if audience is None:
        return {}
    return {AUDIENCE_PROPERTY: sorted({*audience, creator} - {""})}
