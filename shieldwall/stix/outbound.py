"""An object on its way out of the node states the TLP level the node holds it at.

The store resolves each object's level when it arrives (`markings.resolve_tlp`): its TLP
refs, custom TLP definitions this node knows, or the node's default TLP for an object that
carries none. Another system reads only what the object itself says: an unmarked object
held here at AMBER (the default) would be read at *its* default, perhaps CLEAR, and a ref to
a custom definition it does not hold as unmarked. So an export, a TAXII page or a push adds
FIRST's TLP 2.0 ref for the held level to any object whose standard TLP refs do not already
say it. The stored text is never changed: the ref is added to the copy that leaves.

Only the standard ids (TLP 1.0 of the STIX 2.1 specification, FIRST's TLP 2.0) count as
stating a level: every TLP-aware platform knows them; a platform's own ids (OpenCTI's
AMBER+STRICT) or a member's custom definitions may mean nothing to the receiver.
"""

from __future__ import annotations

from typing import Any

from shieldwall.stix.canonical import canonical_json, loads
from shieldwall.stix.markings import TLP, TLP1_IDS, TLP2_IDS, marking_refs, tlp_marking_ref

STANDARD_TLP_REFS: dict[str, TLP] = {v: k for k, v in TLP1_IDS.items()} | {
    v: k for k, v in TLP2_IDS.items()
}

# For each held level, the standard ids that state it (or something stricter).
_STATING: dict[int, frozenset[str]] = {
    level: frozenset(ref for ref, lv in STANDARD_TLP_REFS.items() if lv >= level)
    for level in TLP
}
_REFS_KEY = '"object_marking_refs":['
_ID_LENGTH = len(TLP2_IDS[TLP.CLEAR])


def stated_tlp(obj: dict[str, Any]) -> TLP:
    """The level any TLP-aware reader gives `obj`: its most restrictive standard TLP ref;
    CLEAR (the widest a reader's default could be) when it carries none."""
    found = TLP.CLEAR
    for ref in marking_refs(obj):
        level = STANDARD_TLP_REFS.get(ref)
        if level is not None and level > found:
            found = level
    return found


def state_held_tlp(obj: dict[str, Any], held: TLP) -> bool:
    """Adds the TLP 2.0 ref for `held` to `obj` (in place) unless it states it already;
    returns whether it added one. Its other refs stay."""
    if held == TLP.CLEAR or stated_tlp(obj) >= held:
        return False
    refs = obj.get("object_marking_refs")
    others = [r for r in refs if r != tlp_marking_ref(held)] if isinstance(refs, list) else []
    obj["object_marking_refs"] = [tlp_marking_ref(held), *others]
    return True


def held_text(text: str, held: int) -> str | None:
    """The canonical text of a stored object stating `held` (a `TLP`), or None when the
    stored text already does. Decided on the text, unparsed, as a TAXII page serves
    thousands (0.6 us an object measured): a ref counts only inside an
    `"object_marking_refs":[...]` array or as a `"marking_ref"` value (in a string, such as
    a description quoting them, the quotes are escaped)."""
    if not held or _states(text, held):
        return None
    obj = loads(text)
    state_held_tlp(obj, TLP(held))
    return canonical_json(obj)


def _states(text: str, held: int) -> bool:
    stating = _STATING[held]
    start = text.find(_REFS_KEY)
    first = start + len(_REFS_KEY) + 1
    if start >= 0 and text[first:first + _ID_LENGTH] in stating:  # the usual one ref
        return True
    while start >= 0:
        end = text.find("]", start)
        for ref in text[start + len(_REFS_KEY):end].split(","):
            if ref.strip('"') in stating:
                return True
        start = text.find(_REFS_KEY, end)
    return '"marking_ref":"' in text and any(f'"marking_ref":"{ref}"' in text for ref in stating)
