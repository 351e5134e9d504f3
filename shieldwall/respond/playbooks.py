"""Case templates as OASIS CACAO 2.0 playbooks, rendered as a checklist of case tasks.

A template is a CACAO 2.0 playbook (JSON) whose action steps carry `manual` commands: what
a person does. Applying one to a case makes one Incident Core `task` per step, in the
workflow's order, with the step's agent ("Rapid reaction team", "Requesting member's SOC")
as the task's role and its command as the task's description. Nothing is executed:
Shieldwall is not a SOAR; people do the steps and record what they found.

Every playbook, shipped or given by a user, is checked against the OASIS CACAO 2.0 JSON
schemas (`shieldwall/data/respond/cacao-schemas/`, from the oasis-open/cacao-json-schemas
repository, Apache-2.0) with `jsonschema`, and refused with the schema's reason in one line.

How the schemas are applied, and why: they declare JSON Schema draft-07, and are applied as
draft-07. They also use `unevaluatedProperties: false`, a 2019-09 keyword draft-07 ignores;
applied as 2019-09 it refuses the schemas' own examples (the base schema `command-data.json`
closes itself, so the `command` of every `manual` command is "unexpected"). So a property the
schemas do not name is not refused. On top of the schemas, `validate` checks the rules the
specification states and a JSON schema cannot (CACAO 2.0 sections 3.1, 4.1, 4.4): each
workflow key is an identifier of its own step type, every step pointer (`workflow_start`,
`on_completion`, `on_true`, `next_steps`, ...) names a step of the workflow, and an action's
`agent` and `targets` are defined in the playbook.

Bounds: a playbook file of at most `MAX_BYTES`, nested at most `bounded_json.MAX_DEPTH`
levels, with at most `MAX_STEPS` steps.
"""

from __future__ import annotations

import functools
import heapq
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shieldwall.errors import ShieldwallError
from shieldwall.stix import bounded_json

if TYPE_CHECKING:
    from shieldwall.respond.cases import Case
    from shieldwall.stix.markings import TLP
    from shieldwall.store import Store

_DATA = Path(__file__).resolve().parents[1] / "data" / "respond"
SCHEMA_DIR = _DATA / "cacao-schemas"
TEMPLATE_DIR = _DATA / "playbooks"
MAX_BYTES = 1 << 20  # a playbook of 1 MiB holds thousands of steps; ours are ~12 kB
MAX_STEPS = 500  # tasks a template may add to a case

_STEP_ID = re.compile(r"^([a-z][a-z0-9-]+[a-z0-9])--[0-9a-fA-F-]{36}$")
# Where a step names the steps that follow it (CACAO 2.0, section 4).
_POINTERS = ("on_completion", "on_success", "on_failure", "on_true", "on_false")


class PlaybookError(ShieldwallError):
    """A playbook that is not valid CACAO 2.0 or cannot be used as a case template."""


@dataclass(frozen=True)
class Step:
    """One thing a person does, as a case task renders it."""

    step_id: str  # the CACAO workflow step id
    name: str
    description: str  # the step's description and its commands, for the task
    role: str | None  # the agent's name: who does it
    activity: str | None  # the CACAO playbook activity of its first command
    condition: str | None  # the if/while/switch condition it depends on, if any


# ---- the schemas ----------------------------------------------------------------------


@functools.cache
def _validator() -> Any:
    """The draft-07 validator of `playbook.json`, every `$ref` resolved among the shipped
    schemas by their `$id` (nothing is fetched: an unknown reference fails)."""
    import jsonschema
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT7

    resources = []
    for path in sorted(SCHEMA_DIR.rglob("*.json")):
        schema = bounded_json.loads(path.read_bytes())
        resources.append((schema["$id"], Resource.from_contents(
            schema, default_specification=DRAFT7)))

    def refuse(uri: str) -> Resource:
        raise PlaybookError(f"CACAO schema reference outside the shipped schemas: {uri}")

    registry: Registry = Registry(retrieve=refuse).with_resources(resources)  # type: ignore[call-arg]
    root = bounded_json.loads((SCHEMA_DIR / "playbook.json").read_bytes())
    return jsonschema.Draft7Validator(root, registry=registry)


def _where(path: Sequence[Any]) -> str:
    return "/".join(str(p) for p in path) or "the top level"


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def validate(playbook: Any) -> None:
    """Raise `PlaybookError` (one line: the playbook, where, the schema's reason) unless
    `playbook` is a valid CACAO 2.0 playbook that can be rendered as tasks."""
    from jsonschema.exceptions import best_match

    if not isinstance(playbook, dict):
        raise PlaybookError("not a CACAO playbook: the JSON is not an object")
    label = _label(playbook)
    error = best_match(_validator().iter_errors(playbook))
    if error is not None:
        raise PlaybookError(f"{label} does not validate against the CACAO 2.0 schemas: "
                            f"{_reason(error)} (at {_where(error.absolute_path)})")
    workflow: dict[str, Any] = playbook["workflow"]
    if len(workflow) > MAX_STEPS:
        raise PlaybookError(f"{label} has {len(workflow):,} workflow steps; at most "
                            f"{MAX_STEPS} make a case template")
    for key, step in workflow.items():
        match = _STEP_ID.match(key)
        if not match or match.group(1) != step.get("type"):
            raise PlaybookError(f"{label}: workflow key {_one_line(key, 80)!r} is not a "
                                f"{step.get('type')}--<uuid> identifier (CACAO 2.0 section 4.1)")
        for ref, field in _step_refs(step):
            if ref not in workflow:
                raise PlaybookError(f"{label}: step {key} {field} names {_one_line(ref, 80)!r}, "
                                    "which is not a step of the workflow")
        if step["type"] == "action":
            agents = playbook.get("agent_definitions") or {}
            if step["agent"] not in agents:
                raise PlaybookError(f"{label}: step {key} agent {step['agent']!r} is not in "
                                    "agent_definitions")
            targets = playbook.get("target_definitions") or {}
            for target in step.get("targets") or ():
                if target not in targets:
                    raise PlaybookError(f"{label}: step {key} target {target!r} is not in "
                                        "target_definitions")
    for field in ("workflow_start", "workflow_exception"):
        ref = playbook.get(field)
        if ref is not None and ref not in workflow:
            raise PlaybookError(f"{label}: {field} {ref!r} is not a step of the workflow")
    if workflow[playbook["workflow_start"]].get("type") != "start":
        raise PlaybookError(f"{label}: workflow_start must name a start step")


def _reason(error: Any) -> str:
    """The schema's reason in words: jsonschema's message, unless it quotes the whole
    instance (a failed `not` or `anyOf` does), then the rule and the schema that failed."""
    message = " ".join(str(error.message).split())
    if len(message) <= 200:
        return message
    title = error.schema.get("title") if isinstance(error.schema, dict) else None
    rule = "/".join(str(p) for p in list(error.relative_schema_path)[-3:])
    return f"fails the {error.validator!r} rule ({rule}) of the {title or 'CACAO'} schema"


def _label(playbook: Mapping[str, Any]) -> str:
    name = playbook.get("name")
    return f"playbook {_one_line(name, 80)!r}" if isinstance(name, str) else "playbook"


def _step_refs(step: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """Every (step id, property) a step points to."""
    for field in _POINTERS:
        ref = step.get(field)
        if isinstance(ref, str):
            yield ref, field
    for ref in step.get("next_steps") or ():
        yield ref, "next_steps"
    cases = step.get("cases")
    if isinstance(cases, dict):
        for ref in cases.values():
            if isinstance(ref, str):
                yield ref, "cases"


# ---- loading ------------------------------------------------------------------------


def loads(data: bytes | str, source: str = "playbook") -> dict[str, Any]:
    """A playbook from JSON text, bounded in size and depth, validated."""
    raw = data.encode() if isinstance(data, str) else data
    if len(raw) > MAX_BYTES:
        raise PlaybookError(f"{source}: {len(raw):,} bytes; a playbook may be at most "
                            f"{MAX_BYTES:,}")
    try:
        playbook = bounded_json.loads(raw)
    except ValueError as exc:
        raise PlaybookError(f"{source}: not JSON ({_one_line(str(exc), 120)})") from None
    validate(playbook)
    return playbook


def load(path: Path) -> dict[str, Any]:
    """A playbook file, read no further than the size bound."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        raise PlaybookError(f"{path}: {exc.strerror or exc}") from None
    return loads(data, str(path))


def templates() -> dict[str, dict[str, Any]]:
    """The shipped templates by name (their file's stem), each validated."""
    return {path.stem: load(path) for path in sorted(TEMPLATE_DIR.glob("*.json"))}


def template(name: str) -> dict[str, Any]:
    """A shipped template by name, or a playbook file when `name` is a path to one."""
    shipped = TEMPLATE_DIR / f"{name}.json"
    if re.fullmatch(r"[a-z0-9][a-z0-9-]{0,62}", name) and shipped.is_file():
        return load(shipped)
    path = Path(name)
    if path.suffix == ".json" and path.is_file():
        return load(path)
    known = ", ".join(path.stem for path in sorted(TEMPLATE_DIR.glob("*.json")))
    raise PlaybookError(f"no template {name!r}: choose one of {known}, or give a CACAO "
                        "playbook file (.json)")


# ---- rendering --------------------------------------------------------------------------


def steps(playbook: Mapping[str, Any]) -> list[Step]:
    """The playbook's action and playbook-action steps in the order a person does them.

    A step comes after every step that leads to it (a topological order of the steps
    reachable from `workflow_start`): where branches join, the join waits for all of them;
    among steps ready at once, the one met first on a walk along the pointers (a parallel
    step's branches in their listed order, an if-condition's true branch before its false
    one) comes first; a loop is cut where it closes. The first step of a conditional
    branch carries its condition ("if ...", "if not: ...", "while ...", "when ... is ..."),
    unless another step leads to it unconditionally. Steps no pointer reaches are left
    out, as no execution would reach them."""
    workflow: Mapping[str, Any] = playbook["workflow"]
    agents: Mapping[str, Any] = playbook.get("agent_definitions") or {}
    order: dict[str, int] = {}  # discovery order of the reachable steps
    edges: dict[str, list[str]] = {}
    labels: dict[str, str | None] = {}
    stack = [playbook["workflow_start"]]
    while stack:  # an explicit stack: no recursion on a file's structure
        key = stack.pop()
        if key in order or key not in workflow:
            continue
        order[key] = len(order)
        following = [(ref, label) for ref, label in _following(workflow[key]) if ref in workflow]
        edges[key] = [ref for ref, _ in following]
        for ref, label in following:
            labels[ref] = label if labels.get(ref, label) is not None else None
        stack.extend(ref for ref, _ in reversed(following))
    waiting = dict.fromkeys(order, 0)
    for key in order:
        for ref in set(edges[key]):
            waiting[ref] += 1
    ready = [(order[k], k) for k, n in waiting.items() if n == 0]
    heapq.heapify(ready)
    done: set[str] = set()
    out: list[Step] = []
    while len(done) < len(order):
        if not ready:  # a loop: take the first step met of those left
            key = min((k for k in order if k not in done), key=order.__getitem__)
        else:
            key = heapq.heappop(ready)[1]
            if key in done:
                continue
        done.add(key)
        step = workflow[key]
        if step.get("type") in ("action", "playbook-action"):
            out.append(_render(key, step, agents, labels.get(key)))
        for ref in set(edges[key]):
            waiting[ref] -= 1
            if waiting[ref] == 0 and ref not in done:
                heapq.heappush(ready, (order[ref], ref))
    return out


def _following(step: Mapping[str, Any]) -> list[tuple[str, str | None]]:
    """The steps after `step`, in the order a person takes them, each with the condition
    that leads there (None when it follows whatever happens)."""
    kind = step.get("type")
    cond = _one_line(str(step.get("condition", "")), 200)
    join = step.get("on_completion")
    branches: list[tuple[str, str | None]] = []
    if kind == "if-condition":
        branches = [(step["on_true"], f"if {cond}")]
        if step.get("on_false"):
            branches.append((step["on_false"], f"if not: {cond}"))
    elif kind == "while-condition":
        branches = [(step["on_true"], f"while {cond}")]
    elif kind == "switch-condition":
        branches = [(ref, f"when {cond} is {case}")
                    for case, ref in (step.get("cases") or {}).items() if isinstance(ref, str)]
    branches = [(ref, None if ref == join else label) for ref, label in branches]
    rest = [(ref, None) for ref in step.get("next_steps") or ()]
    rest += [(step[f], None) for f in ("on_completion", "on_success", "on_failure")
             if isinstance(step.get(f), str)]
    return branches + rest


def _render(key: str, step: Mapping[str, Any], agents: Mapping[str, Any],
            condition: str | None) -> Step:
    lines: list[str] = []
    if step.get("description"):
        lines.append(str(step["description"]))
    activity = None
    for command in step.get("commands") or ():
        text = command.get("command") or command.get("description")
        if not text and command.get("command_b64"):
            text = _b64(command["command_b64"])
        if text:
            lines.append(f"Do: {text}")
        activity = activity or command.get("playbook_activity")
    if step.get("type") == "playbook-action" and step.get("playbook_id"):
        lines.append(f"Follow playbook {step['playbook_id']}.")
    agent = agents.get(step.get("agent") or "")
    role = agent.get("name") if isinstance(agent, Mapping) else None
    name = str(step.get("name") or step.get("description") or key)
    return Step(key, _one_line(name, 200), "\n".join(lines), role, activity, condition)


def _b64(text: str) -> str | None:
    import base64
    import binascii

    try:
        return base64.b64decode(text, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None


# ---- applying a template to a case -------------------------------------------------------


def step_mark(playbook: Mapping[str, Any], step: Step) -> str:
    """The line that ties a task to its playbook step: applying again skips the steps
    whose task the case already holds."""
    return f"From playbook {playbook['id']} step {step.step_id}."


def task_description(playbook: Mapping[str, Any], step: Step) -> str:
    lines = []
    if step.condition:
        lines.append(f"Only {step.condition}")
    if step.role:
        lines.append(f"Who: {step.role}")
    if step.description:
        lines.append(step.description)
    lines.append(f"{playbook.get('name')}: {step_mark(playbook, step)}")
    return "\n".join(lines)


def apply(store: Store, member: str, case: Case, playbook: Mapping[str, Any], *,
          tlp: TLP | None = None) -> list[dict[str, Any]]:
    """Add one task per step of `playbook` to `case` (a `respond.cases.Case` the node's
    member may read), marked as any new item of the case (`cases.item_marking`); the steps
    whose task the case already holds are skipped. Returns the tasks added, in order."""
    from shieldwall.respond.cases import add_to_case, item_marking
    from shieldwall.respond.model import task

    validate(playbook)
    held = "\n".join(str(t.get("description") or "") for t in case.tasks)
    marking = item_marking(case, tlp)
    new = [task(creator=member, name=step.name, marking=marking,
                description=task_description(playbook, step))
           for step in steps(playbook) if step_mark(playbook, step) not in held]
    if new:
        add_to_case(store, member, case.id, *new)
    return new
