"""Checking a policy: shape (Pydantic) and meaning (references, bands, loops, time zones).

``check_document`` returns *every* problem at once, each with the file, line and column it
concerns. ``load_policy`` returns a valid :class:`Policy` or raises
:class:`PolicyInvalid` carrying those problems.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
from pydantic import ValidationError

from escalade.errors import EscaladeError
from escalade.policy import templates
from escalade.policy.loader import (
    Document,
    Path_,
    PolicyFileError,
    Position,
    Problem,
    document_from_text,
    load_document,
)
from escalade.policy.models import ESCALADE_ROLES, Band, Policy, Recipient


class PolicyInvalid(EscaladeError):
    def __init__(self, problems: list[Problem]):
        self.problems = sorted(set(problems))
        super().__init__("\n".join(str(p) for p in self.problems))


def _loc_text(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts)


# Pydantic adds the member type of a union to an error's location (``fields.x.str``)
_UNION_TAGS = {"str", "bool", "int", "float", "dict", "list", "none", "date", "time"}


def _clean_loc(loc: tuple[Any, ...]) -> tuple[str | int, ...]:
    """Drop Pydantic's internal markers (function names, union tags) from a location."""
    return tuple(
        x
        for x in loc
        if isinstance(x, int)
        or not (str(x).startswith("function-") or "[" in str(x) or str(x) in _UNION_TAGS)
    )


def _pydantic_problems(
    doc: Document,
    exc: ValidationError,
    original: Callable[[Path_], Path_] | None = None,
) -> list[Problem]:
    """Pydantic's errors as problems; ``original`` maps a location in pruned data back to
    the document as written."""
    by_loc: dict[tuple[str | int, ...], list[tuple[Position, str]]] = {}
    for err in exc.errors(include_url=False):
        loc = _clean_loc(tuple(err["loc"]))
        if original is not None:
            loc = original(loc)
        msg = err["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        where = _loc_text(loc)
        pos = doc.where(loc)
        if err["type"] == "extra_forbidden" and loc:
            where = _loc_text(loc[:-1])
            msg = f"unknown key '{loc[-1]}'{_did_you_mean(loc, exc)}"
            pos = doc.where_key(loc)
        elif err["type"] == "missing" and loc:
            where = _loc_text(loc[:-1])
            msg = f"'{loc[-1]}' is required"
        by_loc.setdefault((*loc, where), []).append((pos, f"{where}: {msg}" if where else msg))
    problems = []
    for found in by_loc.values():
        if len(found) == 1:
            problems.append(Problem(*found[0]))
            continue
        # one value that fits no member of a union: one problem, naming what would fit
        kinds = [m.split("Input should be ", 1)[-1] for _, m in found]
        head = found[0][1].split(": ", 1)[0] if ": " in found[0][1] else ""
        text = "Input should be " + " or ".join(dict.fromkeys(kinds))
        problems.append(Problem(found[0][0], f"{head}: {text}" if head else text))
    return problems


def _did_you_mean(loc: tuple[str | int, ...], exc: ValidationError) -> str:
    """A hint naming the keys allowed where an unknown key was found."""
    import difflib

    fields = _fields_at(loc[:-1]) + (["include"] if len(loc) == 1 else [])
    if not fields:
        return ""
    close = difflib.get_close_matches(str(loc[-1]), fields, n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


def _fields_at(path: tuple[str | int, ...]) -> list[str]:
    """The keys a policy model accepts at ``path`` (empty when unknown)."""
    model: Any = Policy
    for part in path:
        if isinstance(part, int):
            continue
        info = getattr(model, "model_fields", {}).get(part)
        if info is None:
            return []
        model = _model_in(info.annotation)
        if model is None:
            return []
    return [f.alias or name for name, f in model.model_fields.items()]


def _model_in(annotation: Any) -> Any:
    """The Pydantic model inside ``list[X]``, ``X | None`` and the like, if any."""
    from typing import get_args

    from pydantic import BaseModel

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


@dataclass
class _Ctx:
    doc: Document
    policy: Policy
    problems: list[Problem]
    # items set aside for shape errors: list path -> original index of each item kept
    kept: dict[Path_, list[int]] = field(default_factory=dict)
    # sections dropped whole for shape errors: references into them are not checked
    dropped_sections: set[str] = field(default_factory=set)

    def original(self, path: Path_) -> Path_:
        """``path`` in the policy as written (before malformed items were set aside)."""
        out = tuple(path)
        for lp, kept in self.kept.items():
            n = len(lp)
            if out[:n] != lp or len(out) <= n:
                continue
            index = out[n]
            if isinstance(index, int) and index < len(kept):
                out = (*lp, kept[index], *out[n + 1 :])
        return out

    def where(self, path: Path_) -> Position:
        return self.doc.where(self.original(path))

    def add(self, path: Path_, message: str) -> None:
        orig = self.original(path)
        self.problems.append(Problem(self.doc.where(orig), f"{_loc_text(orig)}: {message}"))


def _ids(items: Iterable[Any]) -> set[str]:
    return {it.id for it in items}


def _check_duplicates(ctx: _Ctx) -> None:
    p = ctx.policy
    sections: list[tuple[Path_, list[Any]]] = [
        (("calendars",), list(p.calendars)),
        (("levels",), list(p.levels)),
        (("roles",), list(p.roles)),
        (("people",), list(p.people)),
        (("teams",), list(p.teams)),
        (("schedules",), list(p.schedules)),
        (("priorities",), list(p.priorities)),
        (("handling",), list(p.handling)),
        (("categories",), list(p.categories)),
        (("routing", "rules"), list(p.routing.rules)),
        (("ladders",), list(p.ladders)),
        (("followups",), list(p.followups)),
        (("triggers",), list(p.triggers)),
        (("authority", "actions"), list(p.authority.actions)),
        (("templates",), list(p.templates)),
        (("notifications",), list(p.notifications)),
        (("metrics",), list(p.metrics)),
        (("channels",), list(p.channels)),
    ]
    for path, items in sections:
        seen: dict[str, int] = {}
        for i, it in enumerate(items):
            if it.id in seen:
                ctx.add(
                    (*path, i, "id"),
                    f"duplicate id '{it.id}' (first used at {ctx.where((*path, seen[it.id]))})",
                )
            else:
                seen[it.id] = i
    # a team and a role with one name would make path steps ambiguous
    for i, t in enumerate(p.teams):
        if t.id in _ids(p.people):
            ctx.add(("teams", i, "id"), f"'{t.id}' is both a team and a person: rename one")


def _check_timezones(ctx: _Ctx) -> None:
    def check(path: Path_, tz: str | None) -> None:
        if tz is None:
            return
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            ctx.add(path, f"unknown time zone '{tz}': use an IANA name such as Europe/Berlin")

    for i, c in enumerate(ctx.policy.calendars):
        check(("calendars", i, "timezone"), c.timezone)
        for j, h in enumerate(c.holidays):
            try:
                holidays.country_holidays(h.country, subdiv=h.subdivision)
            except NotImplementedError:
                ctx.add(
                    ("calendars", i, "holidays", j, "country"),
                    f"no holiday calendar for country '{h.country}'"
                    + (f" subdivision '{h.subdivision}'" if h.subdivision else ""),
                )
    for i, s in enumerate(ctx.policy.schedules):
        check(("schedules", i, "timezone"), s.timezone)
    for i, person in enumerate(ctx.policy.people):
        check(("people", i, "timezone"), person.timezone)


_SINGULAR = {
    "people": "person",
    "priorities": "priority",
    "categories": "category",
    "handling": "handling rule",
    "teams": "team",
    "levels": "level",
    "roles": "role",
    "calendars": "calendar",
    "schedules": "schedule",
    "ladders": "ladder",
    "templates": "template",
}


class _Refs:
    """Reference checks against the policy's ids."""

    def __init__(self, ctx: _Ctx):
        p = ctx.policy
        self.ctx = ctx
        self.teams = _ids(p.teams)
        self.levels = _ids(p.levels)
        self.roles = _ids(p.roles) | {"lead", "manager"}
        self.people = _ids(p.people)
        self.calendars = _ids(p.calendars)
        self.schedules = _ids(p.schedules)
        self.priorities = _ids(p.priorities)
        self.categories = _ids(p.categories)
        self.ladders = _ids(p.ladders)
        self.templates = _ids(p.templates)
        self.handling = _ids(p.handling)

    def need(self, path: Path_, value: str | None, kinds: Iterable[str]) -> None:
        if value is None:
            return
        kinds = list(kinds)
        if any(k in self.ctx.dropped_sections for k in kinds):
            return  # that section is malformed and already reported
        for kind in kinds:
            if value in getattr(self, kind):
                return
        names = " or ".join(_SINGULAR.get(k, k) for k in kinds)
        known = sorted(set().union(*(getattr(self, k) for k in kinds)))
        hint = (
            f"; known: {', '.join(known[:12])}" if known else f"; the policy defines no {kinds[0]}"
        )
        self.ctx.add(path, f"unknown {names} '{value}'{hint}")

    def need_all(self, path: Path_, values: Iterable[str], kinds: Iterable[str]) -> None:
        kinds = list(kinds)
        for i, v in enumerate(values):
            self.need((*path, i), v, kinds)

    def recipient(self, path: Path_, r: Recipient) -> None:
        self.need((*path, "person"), r.person, ["people"])
        self.need((*path, "role"), r.role, ["roles"])
        self.need((*path, "team"), r.team, ["teams"])
        self.need((*path, "schedule"), r.schedule, ["schedules"])


def _check_references(ctx: _Ctx) -> None:
    p = ctx.policy
    r = _Refs(ctx)
    r.need(("default_calendar",), p.default_calendar, ["calendars"])
    for i, lv in enumerate(p.levels):
        r.need(("levels", i, "team"), lv.team, ["teams"])
        r.need(("levels", i, "calendar"), lv.calendar, ["calendars"])
    for i, person in enumerate(p.people):
        r.need_all(("people", i, "roles"), person.roles, ["roles"])
    for i, role in enumerate(p.roles):
        r.need(("roles", i, "schedule"), role.schedule, ["schedules"])
    for i, t in enumerate(p.teams):
        r.need(("teams", i, "level"), t.level, ["levels"])
        r.need(("teams", i, "calendar"), t.calendar, ["calendars"])
        r.need(("teams", i, "schedule"), t.schedule, ["schedules"])
        r.need(("teams", i, "manager"), t.manager, ["people", "roles"])
        for j, m in enumerate(t.members):
            r.need(("teams", i, "members", j, "person"), m.person, ["people"])
    for i, s in enumerate(p.schedules):
        for j, layer in enumerate(s.layers):
            r.need_all(("schedules", i, "layers", j, "people"), layer.people, ["people"])
    for i, pr in enumerate(p.priorities):
        r.need(("priorities", i, "ladder"), pr.ladder, ["ladders"])
        r.need(("priorities", i, "calendar"), pr.calendar, ["calendars"])
        if pr.postmortem:
            r.need(
                ("priorities", i, "postmortem", "template"), pr.postmortem.template, ["templates"]
            )
    for i, row in enumerate(p.sla.rows):
        r.need(("sla", "rows", i, "team"), row.team, ["teams"])
        r.need(("sla", "rows", i, "priority"), row.priority, ["priorities"])
    for i, c in enumerate(p.categories):
        base: Path_ = ("categories", i)
        r.need((*base, "owner"), c.owner, ["teams"])
        r.need_all((*base, "also"), c.also, ["teams"])
        r.need((*base, "level"), c.level, ["levels"])
        r.need((*base, "max_level"), c.max_level, ["levels"])
        r.need((*base, "auto_escalate_up_to"), c.auto_escalate_up_to, ["levels"])
        r.need((*base, "priority"), c.priority, ["priorities"])
        r.need_all((*base, "handling"), c.handling, ["handling"])
        if c.authority is not None and c.authority not in _ids(p.authority.actions):
            ctx.add((*base, "authority"), f"unknown authority action '{c.authority}'")
        for j, step in enumerate(c.path):
            r.need((*base, "path", j, "team"), step.team, ["teams"])
            r.need((*base, "path", j, "role"), step.role, ["roles"])
            r.need((*base, "path", j, "level"), step.level, ["levels"])
        if c.owner is None and (c.level is None or _level_team(p, c.level) is None):
            ctx.add((*base,), "no owner: give 'owner' (a team) or a 'level' that has a team")
        if (
            c.level in r.levels
            and c.max_level in r.levels
            and p.level_rank(c.max_level or "") < p.level_rank(c.level or "")
        ):
            ctx.add((*base, "max_level"), f"max_level '{c.max_level}' is below level '{c.level}'")
    rt = p.routing
    r.need(("routing", "default_category"), rt.default_category, ["categories"])
    r.need(("routing", "default_priority"), rt.default_priority, ["priorities"])
    r.need(("routing", "triage_queue"), rt.triage_queue, ["teams"])
    for i, rule in enumerate(rt.rules):
        _check_condition(r, ("routing", "rules", i, "when"), rule.when)
        _check_outcome(r, ("routing", "rules", i, "then"), rule.then)
    for i, lad in enumerate(p.ladders):
        for j, lstep in enumerate(lad.steps):
            lbase = ("ladders", i, "steps", j)
            for k, who in enumerate(lstep.notify):
                r.recipient((*lbase, "notify", k), who)
            r.need((*lbase, "level"), lstep.level, ["levels"])
            r.need((*lbase, "template"), lstep.template, ["templates"])
    for i, f in enumerate(p.followups):
        r.recipient(("followups", i, "to"), f.to)
        r.need_all(("followups", i, "priorities"), f.priorities, ["priorities"])
    for i, trig in enumerate(p.triggers):
        if trig.when:
            _check_condition(r, ("triggers", i, "when"), trig.when)
        _check_outcome(r, ("triggers", i, "then"), trig.then)
    principals = ["teams", "roles", "levels"]
    r.need_all(("authority", "columns"), p.authority.columns, principals)
    for i, act in enumerate(p.authority.actions):
        abase: Path_ = ("authority", "actions", i)
        r.need_all((*abase, "allow"), act.allow, principals)
        r.need_all((*abase, "lead_only"), act.lead_only, ["teams"])
        for j, band in enumerate(act.bands):
            r.need_all((*abase, "bands", j, "authority"), band.authority, principals)
        _check_bands(ctx, (*abase, "bands"), act.bands)
    for i, tpl in enumerate(p.templates):
        r.need_all(("templates", i, "priorities"), tpl.priorities, ["priorities"])
        _check_template(ctx, ("templates", i), tpl.id, tpl.subject, tpl.body)
    for i, n in enumerate(p.notifications):
        if n.when:
            _check_condition(r, ("notifications", i, "when"), n.when)
        r.need_all(("notifications", i, "priorities"), n.priorities, ["priorities"])
        r.need_all(("notifications", i, "teams"), n.teams, ["teams"])
        r.recipient(("notifications", i, "to"), n.to)
        r.need(("notifications", i, "template"), n.template, ["templates"])
    r.need(("alerts", "category"), p.alerts.category, ["categories"])
    r.need(("alerts", "default_priority"), p.alerts.default_priority, ["priorities"])
    for sev, prio in p.alerts.severity.items():
        r.need(("alerts", "severity", sev), prio, ["priorities"])
    for name, hook in p.alerts.webhooks.items():
        for value, prio in hook.priorities.items():
            r.need(("alerts", "webhooks", name, "priorities", value), prio, ["priorities"])
        for value, cat in hook.categories.items():
            r.need(("alerts", "webhooks", name, "categories", value), cat, ["categories"])
    for i, h in enumerate(p.handling):
        r.need(("handling", i, "approver"), h.approver, ["roles", "people"])
        r.need_all(("handling", i, "visible_to"), h.visible_to, ["roles", "teams"])
    for i, ch in enumerate(p.channels):
        r.need_all(("channels", i, "when", "teams"), ch.when.teams, ["teams"])
        r.need_all(("channels", i, "when", "people"), ch.when.people, ["people"])
        r.need_all(("channels", i, "when", "priorities"), ch.when.priorities, ["priorities"])
    for i, c in enumerate(p.categories):
        r.need_all(("categories", i, "visible_to"), c.visible_to, ["roles", "teams"])
    roles = {x.id for x in p.roles}
    for what in ("policies", "schedules", "overrides"):
        for i, role in enumerate(getattr(p.editing, what)):
            if role not in roles and role not in ESCALADE_ROLES:
                ctx.add(
                    ("editing", what, i),
                    f"unknown role '{role}': a role of the policy or one of Escalade's "
                    f"({', '.join(ESCALADE_ROLES)})",
                )


def _level_team(p: Policy, level_id: str) -> str | None:
    for lv in p.levels:
        if lv.id == level_id:
            return lv.team
    return None


def _check_condition(r: _Refs, path: Path_, cond: Any) -> None:
    r.need_all((*path, "category"), cond.category, ["categories"])
    r.need_all((*path, "priority"), cond.priority, ["priorities"])


def _check_outcome(r: _Refs, path: Path_, out: Any) -> None:
    r.need((*path, "category"), out.category, ["categories"])
    r.need((*path, "team"), out.team, ["teams"])
    r.need((*path, "level"), out.level, ["levels"])
    r.need((*path, "min_level"), out.min_level, ["levels"])
    r.need((*path, "priority"), out.priority, ["priorities"])
    r.need((*path, "min_priority"), out.min_priority, ["priorities"])
    r.need_all((*path, "handling"), out.handling, ["handling"])
    r.need_all((*path, "notify"), out.notify, ["roles", "people", "teams"])


def _check_bands(ctx: _Ctx, path: Path_, bands: list[Band]) -> None:
    """Bands must tile the amounts in order: no gap, no overlap."""
    for j in range(1, len(bands)):
        prev, cur = bands[j - 1], bands[j]
        hi, lo = prev.upper(), cur.lower()
        where = (*path, j)
        if hi is None:
            ctx.add(
                where, f"overlapping bands: band {j} (unbounded above) already covers this band"
            )
            continue
        if lo is None:
            ctx.add(
                where,
                f"overlapping bands: band {j + 1} has no lower bound but band {j} ends at {hi:g}",
            )
            continue
        if lo > hi:
            ctx.add(
                where, f"gap between bands: amounts between {hi:g} and {lo:g} have no authority"
            )
        elif lo < hi:
            ctx.add(where, f"overlapping bands: {lo:g} to {hi:g} is in two bands")
        elif prev.through is not None and cur.from_ is not None:
            ctx.add(where, f"overlapping bands: {hi:g} is in both (use 'over: {hi:g}')")
        elif prev.below is not None and cur.over is not None:
            ctx.add(where, f"gap between bands: exactly {hi:g} is in no band (use 'from: {hi:g}')")


def _check_template(
    ctx: _Ctx, path: Path_, template_id: str, subject: str | None, body: str
) -> None:
    """A template that does not parse, or uses a name not in scope, is an error naming
    the template and the line of its text (see ``policy.templates``)."""
    for key, text in (("subject", subject), ("body", body)):
        if text is None:
            continue
        for line, problem in templates.check(text):
            ctx.add((*path, key), f"template '{template_id}' {key}, line {line}: {problem}")


def _check_paths(ctx: _Ctx) -> None:
    """An escalation path that returns to a team it already passed through loops."""
    for i, c in enumerate(ctx.policy.categories):
        seen: dict[str, int] = {}
        start = c.owner or (_level_team(ctx.policy, c.level) if c.level else None)
        if start:
            seen[start] = -1
        for j, step in enumerate(c.path):
            key = step.label()
            if key in seen:
                first = "the initial owner" if seen[key] < 0 else f"step {seen[key] + 1}"
                ctx.add(
                    ("categories", i, "path", j),
                    f"escalation path loops: '{key}' is already {first} of the path",
                )
            else:
                seen[key] = j


def _check_status_page(ctx: _Ctx) -> None:
    """Status-page updates need the policy's ``status_page``; its template must exist."""
    p = ctx.policy
    if p.status_page is not None:
        _Refs(ctx).need(("status_page", "template"), p.status_page.template, ["templates"])
    if p.status_page is not None:
        return
    need = "needs a top-level 'status_page' (where its updates go)"
    for i, pr in enumerate(p.priorities):
        if "status_page" in pr.updates:
            ctx.add(("priorities", i, "updates", "status_page"), f"a status-page cadence {need}")
    for i, row in enumerate(p.sla.rows):
        if "status_page" in row.updates:
            ctx.add(("sla", "rows", i, "updates", "status_page"), f"a status-page cadence {need}")
    for i, n in enumerate(p.notifications):
        if n.to.status_page and not n.address:
            ctx.add(("notifications", i, "to", "status_page"), f"a status-page message {need}")
    for i, lad in enumerate(p.ladders):
        for j, step in enumerate(lad.steps):
            for k, who in enumerate(step.notify):
                if who.status_page:
                    ctx.add(
                        ("ladders", i, "steps", j, "notify", k, "status_page"),
                        f"a status-page message {need}",
                    )


_NESTED_LISTS = {("routing", "rules"), ("authority", "actions"), ("sla", "rows")}


def _item_path(loc: tuple[str | int, ...]) -> tuple[str | int, ...] | None:
    """The list item of a policy section that a Pydantic error lies in, if any."""
    if len(loc) >= 2 and isinstance(loc[1], int):
        return loc[:2]
    if len(loc) >= 3 and tuple(loc[:2]) in _NESTED_LISTS and isinstance(loc[2], int):
        return loc[:3]
    return None


def _prune(data: Any, items: set[tuple[str | int, ...]]) -> tuple[Any, set[str]]:
    """A copy of ``data`` without the given section items; also the ids they had."""
    import copy

    data = copy.deepcopy(data)
    dropped: set[str] = set()
    for path in sorted(items, key=lambda p: p[-1], reverse=True):
        parent = data
        for key in path[:-1]:
            parent = parent[key]
        item = parent[path[-1]]
        if isinstance(item, dict) and isinstance(item.get("id"), str):
            dropped.add(item["id"])
        del parent[path[-1]]
    return data, dropped


def _set_aside(data: Any, loc: tuple[str | int, ...]) -> tuple[str | int, ...] | None:
    """Remove (in place) the map entry holding a shape error that lies outside any section
    item, so that the rest can be checked; the path removed, or None if nothing could be."""
    if loc[:1] == ("id",):
        data["id"] = "policy"  # a stand-in: the policy's own id is already reported
        return ("id",)
    parent: Any = data
    best: tuple[dict[Any, Any], str | int, tuple[str | int, ...]] | None = None
    for depth, key in enumerate(loc):
        if not isinstance(parent, dict) or key not in parent:
            break
        best = (parent, key, loc[: depth + 1])
        parent = parent[key]
    if best is None:
        return None
    holder, key, path = best
    del holder[key]
    return path


# sections whose ids other sections refer to (named as in _Refs)
_REFERENCED = {
    "teams",
    "levels",
    "roles",
    "people",
    "calendars",
    "schedules",
    "priorities",
    "categories",
    "ladders",
    "templates",
    "handling",
}


PolicyCheck = Callable[[Policy, Path], Iterable[tuple[tuple[str | int, ...], str]]]
"""A check beyond the policy's text, given the valid policy and its file's folder:
(path in the policy, message) for each problem (``escalade.loading`` checks model files)."""


def check_document(doc: Document, checks: Sequence[PolicyCheck] = ()) -> list[Problem]:
    """Every problem with a parsed policy document; empty when it is valid.

    Shape errors come first; the items that have them are then set aside so that the
    meaning of the rest (references, bands, loops, time zones) is checked too.
    """
    import copy

    problems: list[Problem] = list(doc.problems)
    if not isinstance(doc.data, dict):
        return sorted(set(problems))
    data = copy.deepcopy(doc.data)
    dropped: set[str] = set()
    ctx = _Ctx(doc, Policy(id="policy"), [])
    for _ in range(6):
        try:
            policy = Policy.model_validate(data)
            break
        except ValidationError as exc:
            problems.extend(_pydantic_problems(doc, exc, ctx.original))
            bad_items: set[tuple[str | int, ...]] = set()
            for err in exc.errors(include_url=False):
                loc = _clean_loc(tuple(err["loc"]))
                item = _item_path(loc)
                if item is not None:
                    bad_items.add(item)
                    continue
                removed = _set_aside(data, loc)
                if removed is None:
                    return sorted(set(problems))
                if len(removed) == 1 and removed[0] in _REFERENCED:
                    ctx.dropped_sections.add(str(removed[0]))
            try:
                for item in sorted(bad_items, key=lambda p: p[-1], reverse=True):
                    lp, index = item[:-1], item[-1]
                    kept = ctx.kept.setdefault(lp, list(range(len(_get(data, lp)))))
                    del kept[int(index)]
                data, ids = _prune(data, bad_items)
            except (KeyError, IndexError, TypeError, ValueError):
                return sorted(set(problems))
            dropped |= ids
    else:
        return sorted(set(problems))
    ctx.policy = policy
    _check_duplicates(ctx)
    _check_timezones(ctx)
    _check_references(ctx)
    _check_paths(ctx)
    _check_status_page(ctx)
    for check in checks:  # beyond the text: e.g. the model files it names (escalade.loading)
        for path, message in check(policy, Path(doc.root.file).parent):
            ctx.add(path, message)
    for problem in ctx.problems:
        # a reference to an item already reported as malformed is not a second problem
        if not any(f"'{d}'" in problem.message and "unknown" in problem.message for d in dropped):
            problems.append(problem)
    return sorted(set(problems))


def _get(data: Any, path: Path_) -> Any:
    for key in path:
        data = data[key]
    return data


def _validated(doc: Document, checks: Sequence[PolicyCheck] = ()) -> Policy:
    problems = check_document(doc, checks)
    if problems:
        raise PolicyInvalid(problems)
    return Policy.model_validate(doc.data)


def load_policy(
    path: str | Path,
    checks: Sequence[PolicyCheck] = (),
    *,
    allow_includes_outside: bool = False,
) -> Policy:
    """A valid policy from a file, or PolicyInvalid with every problem (``checks``: more
    checks beyond the text; ``escalade.loading.load_policy`` adds the model files')."""
    try:
        doc = load_document(path, allow_includes_outside=allow_includes_outside)
    except PolicyFileError as exc:
        raise PolicyInvalid(exc.problems) from None
    return _validated(doc, checks)


def policy_from_text(text: str, display: str = "<policy>") -> Policy:
    try:
        doc = document_from_text(text, display)
    except PolicyFileError as exc:
        raise PolicyInvalid(exc.problems) from None
    return _validated(doc)


def check_files(
    paths: Iterable[str | Path],
    checks: Sequence[PolicyCheck] = (),
    *,
    allow_includes_outside: bool = False,
) -> Iterator[Problem]:
    """Problems for each file in turn (used by ``escalade policy check``)."""
    for path in paths:
        try:
            doc = load_document(path, allow_includes_outside=allow_includes_outside)
        except PolicyFileError as exc:
            yield from sorted(set(exc.problems))
            continue
        yield from check_document(doc, checks)


# --------------------------------------------------------------------------- warnings
# A warning is a rule that is valid but can never act: the policy loads and runs, and
# ``escalade policy check`` prints it (on stderr, "FILE:LINE:COL: warning: …") without
# failing. Each kind of warning is one function (path in the policy, message).

PolicyWarning = Callable[[Policy], Iterable[tuple[Path_, str]]]

# what a trigger's ``then`` can change when it fires, by the moment it fires
# (docs/policy-language.md "Triggers"); ``category`` only names what a threshold opens
_ROUTING_EFFECTS = ("team", "level", "min_level", "priority", "min_priority", "handling",
                    "tags", "notify")  # fmt: skip
_IN_FLIGHT_EFFECTS = ("team", "level", "min_level", "priority", "min_priority", "notify")
_NOT_BY_ITSELF = {"agent", "customer_request", "supervisor_request"}


def trigger_without_effect(policy: Policy) -> Iterator[tuple[Path_, str]]:
    """Triggers that can never act: ones the engine never fires (``manual`` kind, or no
    ``when`` on an ``on`` that does not fire by itself), and ones that fire but whose
    ``then`` sets nothing that applies at that moment."""
    for i, t in enumerate(policy.triggers):
        path: Path_ = ("triggers", i)
        if t.kind.value == "threshold" or t.on == "alert":
            continue  # a threshold opens or links escalations; an alert trigger names them
        if t.kind.value == "manual":
            yield (
                path,
                (
                    f"trigger '{t.id}' never acts: kind 'manual' only documents the process "
                    "(an 'escalate' action with its reason does the work)"
                ),
            )
            continue
        if t.on in _NOT_BY_ITSELF:
            yield (
                path,
                (
                    f"trigger '{t.id}' never acts: 'on: {t.on}' is a person's action, "
                    "which the engine does not fire triggers for"
                ),
            )
            continue
        if t.when is None and t.on not in ("sla_breach", "dissatisfaction"):
            on = f"'on: {t.on}'" if t.on else "no 'on'"
            yield (
                path,
                (
                    f"trigger '{t.id}' never acts: it has no 'when' and {on} does not fire it "
                    "by itself"
                ),
            )
            continue
        effects = _IN_FLIGHT_EFFECTS if t.on == "sla_breach" else _ROUTING_EFFECTS
        if not any(getattr(t.then, key) for key in effects):
            moment = "on an SLA breach" if t.on == "sla_breach" else "at routing"
            yield (
                (*path, "then"),
                (
                    f"trigger '{t.id}' has no effect: its 'then' sets none of "
                    f"{', '.join(effects)}, which are what a trigger changes {moment}"
                ),
            )


def role_step_warnings(policy: Policy) -> Iterator[tuple[Path_, str]]:
    """Escalation path steps naming a role that reaches nobody: no person holds it and it
    has no on-call schedule (``lead``: the step's team has no lead; ``manager``: neither a
    manager nor a lead). Such a step tells the team's shared address instead."""
    held = {r for p in policy.people for r in p.roles}
    scheduled = {r.id for r in policy.roles if r.schedule}
    teams = {t.id: t for t in policy.teams}
    for i, cat in enumerate(policy.categories):
        team_id = cat.owner or (_level_team(policy, cat.level) if cat.level else None)
        for j, step in enumerate(cat.path):
            team_id = step.team or team_id
            role = step.role
            if role is None:
                continue
            team = teams.get(team_id) if team_id else None
            if role == "lead":
                if team is not None and not team.leads():
                    yield (
                        ("categories", i, "path", j, "role"),
                        f"path step to the lead of team '{team.id}', which has no lead: the "
                        "step reaches the team's shared address, not a person",
                    )
            elif role == "manager":
                if team is not None and team.manager is None and not team.leads():
                    yield (
                        ("categories", i, "path", j, "role"),
                        f"path step to the manager of team '{team.id}', which has neither a "
                        "manager nor a lead: the step reaches the team's shared address",
                    )
            elif role not in held and role not in scheduled:
                yield (
                    ("categories", i, "path", j, "role"),
                    f"path step to role '{role}', which no person holds and which has no "
                    "on-call schedule: the step reaches the team's shared address, not a "
                    "person (add the role to a person's roles, or a schedule to the role)",
                )


def warn_no_priority(policy: Policy) -> Iterator[tuple[Path_, str]]:
    """Categories whose tickets can end up with no priority (issue 16, class 7): the
    category names none and the policy has no ``routing.default_priority``. Such a ticket
    gets no priority SLA, no ladder and no priority follow-ups unless its text happens to
    name a priority (seed 001: a security report sat three days untouched)."""
    if policy.routing.default_priority or not policy.priorities:
        return
    for i, cat in enumerate(policy.categories):
        if cat.priority:
            continue
        yield (
            ("categories", i),
            f"category '{cat.id}' has no priority and the policy has no "
            "routing.default_priority: its tickets get no priority (no priority SLA, "
            "ladder or follow-ups) unless their text names one; give it 'priority:' "
            "or set routing.default_priority",
        )
    if not policy.categories:
        yield (
            ("routing",),
            "no routing.default_priority: a ticket that nothing gives a priority gets "
            "none (no priority SLA, ladder or follow-ups)",
        )


WARNINGS: tuple[PolicyWarning, ...] = (
    trigger_without_effect,
    role_step_warnings,
    warn_no_priority,
)
"""Every kind of warning ``escalade policy check`` gives a valid policy."""


def policy_warnings(doc: Document, policy: Policy) -> list[Problem]:
    """Warnings for a valid policy read from ``doc``, each where it is in the file."""
    out: list[Problem] = []
    for warn in WARNINGS:
        for path, message in warn(policy):
            out.append(Problem(doc.where(path), f"warning: {_loc_text(path)}: {message}"))
    return sorted(set(out))


def warn_files(
    paths: Iterable[str | Path], *, allow_includes_outside: bool = False
) -> Iterator[Problem]:
    """Warnings of each valid policy file in turn (a file with problems gets none: its
    problems come first). Each reads ``FILE:LINE:COL: warning: …``."""
    for path in paths:
        try:
            doc = load_document(path, allow_includes_outside=allow_includes_outside)
        except PolicyFileError:
            continue
        if check_document(doc):
            continue
        yield from policy_warnings(doc, Policy.model_validate(doc.data))
