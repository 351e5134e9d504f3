"""The roster: responders of each member, their skills and availability.

The coordination cell keeps it to choose a team (`assist dispatch` refuses a responder it
does not list, or one not available). A responder is `MEMBER:PERSON`; the member is the
node that reads the case for them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import delete, insert, select

from shieldwall.respond.model import RespondError, parse_responder
from shieldwall.respond.tables import responders
from shieldwall.stix.timestamps import now_us
from shieldwall.store import Store

AVAILABILITY = ("available", "on-mission", "unavailable")
_MAX_SKILLS = 50


@dataclass(frozen=True)
class Responder:
    member: str
    person: str
    name: str
    skills: tuple[str, ...]
    availability: str

    @property
    def handle(self) -> str:
        return f"{self.member}:{self.person}"


def _skills(values: Iterable[str]) -> tuple[str, ...]:
    out = tuple(dict.fromkeys(v.strip().lower() for v in values if v.strip()))
    if len(out) > _MAX_SKILLS:
        raise RespondError(f"at most {_MAX_SKILLS} skills")
    for s in out:
        if not s.replace("-", "").isalnum() or len(s) > 63:
            raise RespondError(f"skill {s!r}: a lower-case word with '-', e.g. forensics")
    return out


def add(store: Store, handle: str, *, name: str, skills: Sequence[str],
        availability: str = "available") -> Responder:
    """Add a responder, or replace what the roster says of them."""
    member, person = parse_responder(handle)
    if availability not in AVAILABILITY:
        raise RespondError(f"availability {availability!r}: choose one of "
                           f"{', '.join(AVAILABILITY)}")
    name = name.strip()[:300] or person
    r = Responder(member, person, name, _skills(skills), availability)
    with store.transaction() as conn:
        conn.execute(delete(responders).where(responders.c.member == member,
                                              responders.c.person == person))
        conn.execute(insert(responders).values(
            member=member, person=person, name=r.name, skills=",".join(r.skills),
            availability=availability, updated_us=now_us()))
    return r


def list_responders(store: Store, *, skill: str | None = None,
                    available_only: bool = False) -> list[Responder]:
    q = select(responders).order_by(responders.c.member, responders.c.person)
    with store.engine.connect() as conn:
        rows = conn.execute(q).all()
    out = [Responder(r.member, r.person, r.name, tuple(s for s in r.skills.split(",") if s),
                     r.availability) for r in rows]
    if skill:
        out = [r for r in out if skill.lower() in r.skills]
    if available_only:
        out = [r for r in out if r.availability == "available"]
    return out


def check_team(store: Store, team: Sequence[str]) -> list[Responder]:
    """The roster's entries for `team`, refused when one is not listed or not available."""
    listed = {r.handle: r for r in list_responders(store)}
    out = []
    for handle in team:
        member, person = parse_responder(handle)
        r = listed.get(f"{member}:{person}")
        if r is None:
            raise RespondError(f"{handle} is not on the roster ('shieldwall responder add "
                               f"{handle} --name ... --skills ...')")
        if r.availability != "available":
            raise RespondError(f"{handle} is {r.availability}")
        out.append(r)
    return out


def set_availability(store: Store, handles: Iterable[str], availability: str) -> None:
    """Mark responders (a dispatched team: on-mission; back: available)."""
    from sqlalchemy import update

    with store.transaction() as conn:
        for handle in handles:
            member, person = parse_responder(handle)
            conn.execute(update(responders).where(
                responders.c.member == member, responders.c.person == person
            ).values(availability=availability, updated_us=now_us()))
