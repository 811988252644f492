"""Routing: a pure function from (policy, escalation input, time) to an explained decision.

The order is fixed and every step that decides something adds a sentence to ``reasons``:

1. category: given → first rule that sets one → text match on categories (phrases in any
   word form, in their sense, not negated; one phrase alone gives way to another team's
   much closer example) → the policy's own words (similarity to categories' and teams'
   examples, descriptions, names and phrases) → triage model → default → none (a person
   triages);
2. priority: given → most urgent of the category's default and priorities whose phrases
   match → the priorities' own examples → triage model → default;
3. rules and triggers, in file order, set or raise team, level, priority and handling;
4. team: rule → category owner (or its level's team) → a team close by its own examples →
   triage model → triage queue;
5. amount bands of the category's authority action; level; missing required information.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from escalade.durations import format_duration
from escalade.errors import EscaladeError
from escalade.policy.models import (
    Category,
    Channel,
    Condition,
    HandlingRule,
    Outcome,
    Policy,
    Priority,
    TriageModel,
    Trigger,
    TriggerKind,
)
from escalade.routing.models import Decision, EscalationInput, Signals, TriageGuess
from escalade.routing.signals import PhraseIndex, match_text, read_signals
from escalade.routing.similarity import Reference, SimilarityIndex, SimilarityMatch, Thesaurus
from escalade.routing.thesaurus import SUPPORT_SYNONYMS
from escalade.sla.clocks import ClockName, sla_targets


class RoutingInputError(EscaladeError, ValueError):
    """The input names something the policy does not know."""

    def __init__(self, field_name: str, message: str):
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


class PredictionLike(Protocol):
    @property
    def label(self) -> str: ...
    @property
    def probability(self) -> float: ...
    @property
    def runner_up(self) -> str | None: ...
    @property
    def runner_up_probability(self) -> float | None: ...
    @property
    def top_words(self) -> list[str]: ...


class Predictor(Protocol):
    """A learned triage model (see ``escalade.triage``)."""

    @property
    def name(self) -> str: ...
    def predict(self, inp: EscalationInput) -> PredictionLike: ...
    def predict_many(self, inputs: Sequence[EscalationInput]) -> Sequence[PredictionLike]: ...


@dataclass
class _State:
    category: Category | None = None
    team: str | None = None
    level: str | None = None
    priority: Priority | None = None
    priority_given: bool = False
    handling: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    notify: list[str] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)
    triggers: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    guesses: list[TriageGuess] = field(default_factory=list)
    needs_triage: bool = False
    authority: list[str] = field(default_factory=list)
    level_is_floor: bool = False
    similar_team: str | None = None
    raised_by: str | None = None  # what raised the level above the category's (rule, band)
    team_from_outcome: bool = False  # a rule or trigger named the team

    def add_handling(self, ids: Sequence[str]) -> None:
        for h in ids:
            if h not in self.handling:
                self.handling.append(h)


def _money(x: float) -> str:
    return f"{x:,.2f}".rstrip("0").rstrip(".")


class Router:
    """A policy prepared for routing many escalations (the policy is read once)."""

    def __init__(self, policy: Policy, classifiers: Mapping[str, Predictor] | None = None):
        self.policy = policy
        self.classifiers = dict(classifiers or {})
        self._triage: dict[str, TriageModel] = {t.field: t for t in policy.routing.triage}
        self._team_ids = {t.id for t in policy.teams}
        self._response_cache: dict[tuple[Any, ...], str | None] = {}
        self._groupings: dict[tuple[str, tuple[str, ...]], _Grouping] = {}
        self._categories = PhraseIndex([(c.id, c.match) for c in policy.categories if c.match])
        self._priorities = PhraseIndex([(x.id, x.match) for x in policy.priorities if x.match])
        thesaurus = _thesaurus(policy)
        self._similarity = policy_similarity(policy, thesaurus)
        self._nearest: dict[str, SimilarityMatch | None] = {}  # of the batch being routed
        self._priority_similarity = priority_similarity(policy, thesaurus)
        self._nearest_priority: dict[str, SimilarityMatch | None] = {}
        conditions = [r.when for r in policy.routing.rules] + [
            t.when for t in policy.triggers if t.when is not None
        ]
        self._needs_sentiment = any(
            c.sentiment is not None or c.dissatisfied is not None for c in conditions
        ) or any(t.on == "dissatisfaction" for t in policy.triggers)
        # triggers decided at routing, each with the condition that fires it; "on:
        # dissatisfaction" means the customer's text reads as dissatisfied
        self._management: list[tuple[Trigger, Condition]] = []
        for t in policy.triggers:
            if t.kind not in (TriggerKind.management, TriggerKind.automatic):
                continue
            if t.on == "dissatisfaction":
                base = t.when.model_dump(exclude_unset=True) if t.when else {}
                self._management.append(
                    (t, Condition.model_validate({**base, "dissatisfied": True}))
                )
            elif t.when is not None and t.on in (None, "create", "classification"):
                self._management.append((t, t.when))

    # ------------------------------------------------------------------ public

    def route(
        self,
        inp: EscalationInput,
        now: datetime,
        predictions: Mapping[str, PredictionLike] | None = None,
    ) -> Decision:
        """Decide category, team, level, priority and handling for one escalation."""
        del now  # routing does not depend on the time yet; calendars act later (SLA clocks)
        p = self.policy
        signals = read_signals(inp, p.routing, with_sentiment=self._needs_sentiment)
        st = _State()
        self._given(inp, st)
        preds = dict(predictions or {})
        if st.category is None:
            self._category(inp, signals, st, preds)
        self._priority(inp, st, preds)
        self._apply_rules(inp, signals, st)
        self._team(inp, st, preds)
        self._authority(inp, st)
        self._level(st)
        self._raised_level_people(st)
        missing = self._missing(inp, st)
        cat = st.category
        also = [t for t in (cat.also if cat else []) if t != st.team]
        if also and not p.allow_multi_team:
            st.reasons.append(
                f"category '{cat.id if cat else ''}' engages {', '.join(also)} together with "
                f"{st.team}, as the policy lists them (one issue is otherwise never sent to "
                "several teams at once)"
            )
        priority = st.priority
        # validated by pydantic-core: cheaper than model_construct's Python loop, and checked
        return Decision.model_validate(
            dict(
                category=cat.id if cat else None,
                team=st.team or "",
                level=st.level,
                priority=priority.id if priority else None,
                handling=st.handling,
                missing=missing,
                reasons=st.reasons,
                also=also,
                path=[s.label() for s in (cat.path if cat else [])],
                tags=st.tags,
                notify=st.notify,
                rules=st.rules,
                triggers=st.triggers,
                needs_triage=st.needs_triage,
                signals=signals,
                triage=st.guesses,
                response_target=self._response_target(inp, st),
                authority=st.authority,
                never=[i for h in self._handling(st.handling) for i in h.never],
                forward_to=[h.forward_to for h in self._handling(st.handling) if h.forward_to],
            )
        )

    def predict_batch(self, inputs: Sequence[EscalationInput]) -> list[dict[str, PredictionLike]]:
        """Learned-model predictions for a batch at once (vectorised), per input. The
        policy's similarity model also compares the whole batch at once: its answers are
        kept for the ``route`` calls of this batch (until the next batch)."""
        if self._similarity is not None:
            texts = list({inp.text: None for inp in inputs if inp.category is None})
            self._nearest = dict(zip(texts, self._similarity.nearest_many(texts), strict=True))
        if self._priority_similarity is not None:
            texts = list({inp.text: None for inp in inputs if inp.priority is None})
            self._nearest_priority = dict(
                zip(texts, self._priority_similarity.nearest_many(texts), strict=True)
            )
        out: list[dict[str, PredictionLike]] = [{} for _ in inputs]
        for field_name in self._triage:
            clf = self.classifiers.get(field_name)
            if clf is None or not inputs:
                continue
            for i, pred in enumerate(clf.predict_many(inputs)):
                out[i][field_name] = pred
        return out

    def route_many(self, inputs: Sequence[EscalationInput], now: datetime) -> list[Decision]:
        """Route a batch; learned models and the policy's similarity model see the whole
        batch at once."""
        preds = self.predict_batch(inputs)
        return [self.route(inp, now, preds[i]) for i, inp in enumerate(inputs)]

    # ------------------------------------------------------------------ steps

    def _given(self, inp: EscalationInput, st: _State) -> None:
        p = self.policy
        if inp.category is not None:
            cat = p.find_category(inp.category)
            if cat is None:
                known = ", ".join(c.id for c in p.categories[:15])
                raise RoutingInputError(
                    "category", f"'{inp.category}' is not a category of this policy ({known})"
                )
            st.category = cat
            st.reasons.append(f"category '{cat.id}' was given with the escalation")
        if inp.priority is not None:
            pr = p.find_priority(inp.priority)
            if pr is None:
                known = ", ".join(x.id for x in p.priorities)
                raise RoutingInputError(
                    "priority", f"'{inp.priority}' is not a priority of this policy ({known})"
                )
            st.priority = pr
            st.priority_given = True
            st.reasons.append(f"priority '{pr.id}' was given with the escalation")

    def _category(
        self,
        inp: EscalationInput,
        signals: Signals,
        st: _State,
        preds: dict[str, PredictionLike],
    ) -> None:
        p = self.policy
        for rule in p.routing.rules:
            if rule.then.category and self._holds(rule.when, inp, signals, st):
                st.category = p.get_category(rule.then.category)
                st.reasons.append(
                    f"rule '{rule.id}' set category '{rule.then.category}' "
                    f"({self._why(rule.when, inp, signals)})"
                )
                return
        text = inp.text
        # most hits wins; among equals the more specific (longer) wording; then file order
        best: tuple[tuple[int, int], Category, list[str]] | None = None
        found = self._categories.hits(text)
        for cat in p.categories:
            hits = found.get(cat.id)
            if not hits:
                continue
            score = (len(hits), sum(len(h) for h in hits))
            if best is None or score > best[0]:
                best = (score, cat, hits)
        if best is not None and not self._outweighs_phrase(inp, st, best[1], best[2]):
            st.category = best[1]
            words = ", ".join(f"'{h}'" for h in best[2][:4])
            st.reasons.append(f"category '{best[1].id}': the text mentions {words}")
            return
        if self._similar(inp, st):
            return
        label = self._guess("category", inp, st, preds)
        if label is not None:
            st.category = p.get_category(label)
            return
        if p.routing.default_category:
            st.category = p.get_category(p.routing.default_category)
            st.reasons.append(
                f"no rule or phrase decided the category: policy default "
                f"'{p.routing.default_category}'"
            )
            return
        if "category" not in self._triage:
            st.reasons.append("no rule, phrase or model decided the category")

    def _priority(self, inp: EscalationInput, st: _State, preds: dict[str, PredictionLike]) -> None:
        if st.priority_given:
            return
        p = self.policy
        candidates: list[tuple[Priority, str]] = []
        if st.category is not None and st.category.priority:
            candidates.append(
                (
                    p.get_priority(st.category.priority),
                    f"category '{st.category.id}' defaults to priority '{st.category.priority}'",
                )
            )
        found = self._priorities.hits(inp.text)
        for pr in p.priorities:
            hits = found.get(pr.id)
            if hits:
                words = ", ".join(f"'{h}'" for h in hits[:3])
                candidates.append((pr, f"priority '{pr.id}': the text mentions {words}"))
                break  # priorities are most urgent first: the first that matches is the highest
        if candidates:
            chosen, why = min(candidates, key=lambda c: p.priority_rank(c[0].id))
            st.priority = chosen
            if len(candidates) > 1 and chosen is not candidates[0][0]:
                why += f" (more urgent than the category's default '{candidates[0][0].id}')"
            st.reasons.append(why)
            return
        if self._similar_priority(inp, st):
            return
        label = self._guess("priority", inp, st, preds)
        if label is not None:
            st.priority = p.get_priority(label)
            return
        if p.routing.default_priority:
            st.priority = p.get_priority(p.routing.default_priority)
            st.reasons.append(f"policy default priority '{p.routing.default_priority}'")

    def _apply_rules(self, inp: EscalationInput, signals: Signals, st: _State) -> None:
        for rule in self.policy.routing.rules:
            if not self._holds(rule.when, inp, signals, st):
                continue
            st.rules.append(rule.id)
            changed = self._apply(rule.then, st, f"rule '{rule.id}'")
            if changed or rule.then.category is None:
                why = self._why(rule.when, inp, signals)
                st.reasons.append(f"rule '{rule.id}' ({why}): {changed or 'no change'}")
            if rule.stop:
                st.reasons.append(f"rule '{rule.id}' stops further rules")
                break
        for trig, when in self._management:
            if not self._holds(when, inp, signals, st):
                continue
            st.triggers.append(trig.id)
            changed = self._apply(trig.then, st, f"{trig.kind.value} trigger '{trig.id}'")
            why = self._why(when, inp, signals)
            st.reasons.append(
                f"{trig.kind.value} trigger '{trig.id}' fired ({why}): {changed or 'recorded'}"
            )

    def _apply(self, out: Outcome, st: _State, source: str) -> str:
        """Apply an outcome of ``source`` (a rule or trigger); say what changed."""
        p = self.policy
        changes: list[str] = []
        if out.team and out.team != st.team:
            st.team = out.team
            st.team_from_outcome = True
            changes.append(f"team '{out.team}'")
        if out.level and out.level != st.level:
            st.level = out.level
            st.raised_by = source
            changes.append(f"level '{out.level}'")
        if out.min_level:
            current = st.level or (st.category.level if st.category else None)
            if current is None or p.level_rank(out.min_level) > p.level_rank(current):
                st.level = out.min_level
                st.level_is_floor = current is None  # the team may work higher still
                st.raised_by = source
                changes.append(f"level raised to '{out.min_level}'")
            elif st.level is None:
                st.level = current
        if (
            out.priority
            and not st.priority_given
            and (st.priority is None or st.priority.id != out.priority)
        ):
            st.priority = p.get_priority(out.priority)
            changes.append(f"priority '{out.priority}'")
        if out.min_priority:
            target = p.get_priority(out.min_priority)
            if st.priority is None or p.priority_rank(target.id) < p.priority_rank(st.priority.id):
                before = st.priority.id if st.priority else "none"
                st.priority = target
                changes.append(f"priority raised from '{before}' to '{target.id}'")
        new_handling = [h for h in out.handling if h not in st.handling]
        if new_handling:
            st.add_handling(new_handling)
            changes.append("handling " + ", ".join(new_handling))
        for tag in out.tags:
            if tag not in st.tags:
                st.tags.append(tag)
        new_notify = [n for n in out.notify if n not in st.notify]
        if new_notify:
            st.notify.extend(new_notify)
            changes.append("inform " + ", ".join(new_notify))
        return ", ".join(changes)

    def _team(self, inp: EscalationInput, st: _State, preds: dict[str, PredictionLike]) -> None:
        p = self.policy
        cat = st.category
        if cat is not None:
            st.add_handling(cat.handling)
        if st.team is not None:
            return
        if cat is not None:
            if cat.owner:
                st.team = cat.owner
                st.reasons.append(f"category '{cat.id}' is owned by team '{cat.owner}'")
                return
            level_team = p.get_level(cat.level).team if cat.level else None
            if level_team:
                st.team = level_team
                st.reasons.append(
                    f"category '{cat.id}' has no owner: its level '{cat.level}' is worked by "
                    f"team '{level_team}'"
                )
                return
        if st.similar_team is not None:
            st.team = st.similar_team
            return
        label = self._guess("team", inp, st, preds)
        if label is not None:
            st.team = label
            return
        queue = p.routing.triage_queue
        st.needs_triage = True
        if queue:
            st.team = queue
            st.reasons.append(
                f"nothing decided the team: triage queue '{queue}' (a person decides)"
            )
        else:
            st.team = p.teams[0].id if p.teams else ""
            st.reasons.append(
                f"nothing decided the team and the policy names no triage queue: first team "
                f"'{st.team}' (a person decides)"
            )

    def _authority(self, inp: EscalationInput, st: _State) -> None:
        cat = st.category
        if inp.amount is None or cat is None or cat.authority is None:
            return
        p = self.policy
        action = next(a for a in p.authority.actions if a.id == cat.authority)
        band = next((b for b in action.bands if b.holds(inp.amount)), None)
        if band is None:
            st.reasons.append(
                f"amount {_money(inp.amount)} is in no band of '{action.id}': a person decides"
            )
            st.needs_triage = True
            return
        st.authority = list(band.authority)
        timeline = f", {band.timeline}" if band.timeline else ""
        st.reasons.append(
            f"amount {_money(inp.amount)} {p.currency} is in band '{band.describe()}' of "
            f"'{action.id}': {', '.join(band.authority)} decides{timeline}"
        )
        level_ids = {lv.id for lv in p.levels}
        for who in band.authority:
            if who in level_ids:
                current = st.level or cat.level
                if current is None or p.level_rank(who) > p.level_rank(current):
                    st.level = who
                    st.raised_by = f"the amount band of '{action.id}'"
                    st.reasons.append(f"level raised to '{who}' by the amount band")
            elif who not in st.notify:
                st.notify.append(who)

    def _level(self, st: _State) -> None:
        p = self.policy
        cat = st.category
        if st.level is None and cat is not None and cat.level:
            st.level = cat.level
            span = f" (range {cat.level}–{cat.max_level})" if cat.max_level else ""
            st.reasons.append(f"category '{cat.id}' starts at level '{cat.level}'{span}")
        team = next((t for t in p.teams if t.id == st.team), None) if st.team else None
        if st.level is None and team and team.level:
            st.level = team.level
            st.reasons.append(f"team '{team.id}' works at level '{team.level}'")
        elif (
            st.level_is_floor
            and st.level
            and team
            and team.level
            and p.level_rank(team.level) > p.level_rank(st.level)
        ):
            st.reasons.append(
                f"team '{team.id}' works at level '{team.level}', above the floor '{st.level}'"
            )
            st.level = team.level

    def _raised_level_people(self, st: _State) -> None:
        """A rule, trigger or amount band that raised the level reaches the level's people:
        the level's team takes the escalation over from a team working below that level
        (a team a rule or trigger named stays); a team with no level of its own (a
        specialist team such as Legal) keeps it, and the level's team is informed."""
        p = self.policy
        if st.raised_by is None or st.level is None or not p.is_level(st.level):
            return
        level_team = p.get_level(st.level).team
        if not level_team or level_team == st.team:
            return
        team = next((t for t in p.teams if t.id == st.team), None) if st.team else None
        works_below = (
            team is not None
            and team.level is not None
            and p.is_level(team.level)
            and p.level_rank(team.level) < p.level_rank(st.level)
        )
        if works_below and not st.team_from_outcome:
            st.reasons.append(
                f"{st.raised_by} raised the level to '{st.level}': its team '{level_team}' "
                f"takes the escalation over from '{st.team}'"
            )
            st.team = level_team
        elif level_team not in st.notify:
            st.notify.append(level_team)
            st.reasons.append(
                f"{st.raised_by} raised the level to '{st.level}': its team '{level_team}' "
                f"is informed ('{st.team}' keeps the escalation)"
            )

    def _missing(self, inp: EscalationInput, st: _State) -> list[str]:
        if st.category is None:
            return []
        missing = [name for name in st.category.required if not inp.has_field(name)]
        if missing:
            st.reasons.append(
                f"category '{st.category.id}' requires information still missing: "
                + ", ".join(missing)
            )
        return missing

    def _handling(self, ids: Sequence[str]) -> list[HandlingRule]:
        """The policy's handling rules with these ids, in the order the decision lists them."""
        by_id = {h.id: h for h in self.policy.handling}
        return [by_id[i] for i in ids if i in by_id]

    def _response_target(self, inp: EscalationInput, st: _State) -> str | None:
        """First-response target (category SLA > team×priority row > priority > level)."""
        key = (
            st.category.id if st.category else None,
            st.team if st.team in self._team_ids else None,
            st.priority.id if st.priority else None,
            inp.channel,
            st.level,
        )
        if key not in self._response_cache:
            self._response_cache[key] = self._compute_response_target(*key)
        return self._response_cache[key]

    def _compute_response_target(
        self,
        category: str | None,
        team: str | None,
        priority: str | None,
        channel: Channel | None,
        level_id: str | None,
    ) -> str | None:
        targets = sla_targets(
            self.policy, category_id=category, team_id=team, priority_id=priority, channel=channel
        )
        response = targets.get(ClockName.response)
        if response is None and level_id:
            level = self.policy.get_level(level_id)
            if channel is not None and channel in level.response_by_channel:
                return format_duration(level.response_by_channel[channel])
            direct = level.response_direct or level.response  # it starts at this level
            return format_duration(direct) if direct is not None else None
        return format_duration(response.target) if response is not None else None

    # ------------------------------------------------------------------ the policy's own words

    def _team_of(self, kind: str, key: str) -> str | None:
        if kind == "team":
            return key
        cat = self.policy.get_category(key)
        if cat.owner:
            return cat.owner
        return self.policy.get_level(cat.level).team if cat.level else None

    def _similar_priority(self, inp: EscalationInput, st: _State) -> bool:
        """Priority from the priorities' own examples and descriptions (the seed's severity
        tables), where neither the category nor a phrase gave one."""
        index = self._priority_similarity
        if index is None:
            return False
        spec = self.policy.routing.similarity
        text = inp.text
        m = self._nearest_priority[text] if text in self._nearest_priority else index.nearest(text)
        if m is None:
            return False
        lead = m.score - (m.runner_up_score or 0.0)
        if m.score < spec.min_similarity or lead < spec.margin:
            # no priority is usual (the default or none follows): not worth a line of its own
            return False
        st.guesses.append(_example_guess("priority", m, accepted=True))
        st.priority = self.policy.get_priority(m.key)
        st.reasons.append(_similar_reason(m))
        return True

    def _nearest_to(self, text: str) -> SimilarityMatch | None:
        """The closest category or team by the policy's own words (the batch's answer
        when ``predict_batch`` computed it)."""
        if text in self._nearest:
            return self._nearest[text]
        assert self._similarity is not None
        return self._similarity.nearest(text)

    def _outweighs_phrase(
        self, inp: EscalationInput, st: _State, cat: Category, hits: list[str]
    ) -> bool:
        """Whether the policy's own words overrule a category that one phrase alone chose:
        the closest category is another team's and at least
        ``routing.similarity.overrule_phrase`` close ("every page errors out, the whole
        application is unreachable" is an outage, not the 'error' of a technical issue)."""
        spec = self.policy.routing.similarity
        if self._similarity is None or spec.overrule_phrase is None or len(hits) != 1:
            return False
        text = inp.text
        m = self._nearest_to(text)
        if m is None or m.kind != "category" or m.score < spec.overrule_phrase:
            return False
        if self._team_of("category", m.key) == self._team_of("category", cat.id):
            return False
        st.reasons.append(
            f"the text mentions '{hits[0]}' of category '{cat.id}', but its own words are "
            f"closer to another team's category (similarity {m.score:.2f} at least "
            f"{spec.overrule_phrase:.2f})"
        )
        return True

    def _similar(self, inp: EscalationInput, st: _State) -> bool:
        """Category (or team) from the policy's examples, descriptions, names and phrases;
        True when it decided. Says what it was close to, and the runner-up, either way."""
        index = self._similarity
        if index is None:
            return False
        spec = self.policy.routing.similarity
        text = inp.text
        m = self._nearest_to(text)
        if m is None:
            return False
        team = self._team_of(m.kind, m.key)
        runner_team = (
            self._team_of(m.runner_up.kind, m.runner_up.key) if m.runner_up is not None else None
        )
        lead = m.score - (m.runner_up_score or 0.0) if runner_team != team else 1.0
        accepted = m.score >= spec.min_similarity and lead >= spec.margin
        st.guesses.append(_example_guess(m.kind, m, accepted=accepted))
        if not accepted:
            # not a decision: the decision's ``triage`` list (and ``route --explain``) shows
            # what came closest, the reasons stay those of the steps that decided
            return False
        st.reasons.append(_similar_reason(m))
        if m.kind == "category":
            st.category = self.policy.get_category(m.key)
        else:
            st.similar_team = m.key
        return m.kind == "category"

    # ------------------------------------------------------------------ learned triage

    def _guess(
        self, field_name: str, inp: EscalationInput, st: _State, preds: dict[str, PredictionLike]
    ) -> str | None:
        spec = self._triage.get(field_name)
        clf = self.classifiers.get(field_name)
        if spec is None or clf is None:
            return None
        pred = preds.get(field_name) or clf.predict(inp)
        label, probability, runner, runner_p, summed = self._mapped(field_name, pred, spec)
        accepted = probability >= spec.min_confidence
        st.guesses.append(
            TriageGuess.model_validate(
                dict(
                    field=field_name,
                    model=clf.name,
                    label=label,
                    probability=round(probability, 4),
                    runner_up=runner,
                    runner_up_probability=round(runner_p, 4) if runner_p is not None else None,
                    top_words=list(pred.top_words),
                    accepted=accepted,
                )
            )
        )
        words = ", ".join(f"'{w}'" for w in pred.top_words[:5]) or "none"
        runner_text = (
            f"; runner-up '{runner}' {runner_p:.2f}"
            if runner is not None and runner_p is not None
            else ""
        )
        base = (
            f"triage model '{clf.name}' says {field_name} '{label}' with probability "
            f"{probability:.2f}{summed}{runner_text}; words that weighed most: {words}"
        )
        if not accepted:
            st.needs_triage = True
            st.reasons.append(
                f"{base}: below the minimum confidence {spec.min_confidence:.2f}, so a person "
                "decides (triage queue)"
            )
            if self.policy.routing.triage_queue and st.team is None:
                st.team = self.policy.routing.triage_queue
            return None
        st.reasons.append(base)
        return label

    def _mapped(
        self, field_name: str, pred: PredictionLike, spec: TriageModel
    ) -> tuple[str, float, str | None, float | None, str]:
        """The model's answer in the policy's ids. When several model labels map to one id
        (a model trained on intents, a policy routing to teams), their probabilities add
        up, in the model's label order; how the labels group is worked out once per model."""
        dist = getattr(pred, "probabilities", None)
        if not spec.label_map or not dist:
            return _mapped_label(pred, spec.label_map)
        key = (field_name, tuple(dist))
        grouping = self._groupings.get(key)
        if grouping is None:
            grouping = self._groupings[key] = _Grouping.of(key[1], spec.label_map)
        sums = [0.0] * len(grouping.ids)
        for g, p in zip(grouping.index, dist.values(), strict=True):
            sums[g] += p
        ranked = sorted(range(len(sums)), key=lambda g: -sums[g])  # stable: first seen wins
        best = ranked[0]
        runner = (grouping.ids[ranked[1]], sums[ranked[1]]) if len(ranked) > 1 else (None, None)
        size = grouping.sizes[best]
        summed = f" (sum of {size} model labels)" if size > 1 else ""
        return grouping.ids[best], sums[best], runner[0], runner[1], summed

    # ------------------------------------------------------------------ conditions

    def _holds(self, c: Condition, inp: EscalationInput, s: Signals, st: _State) -> bool:
        checks: list[bool] = []
        if c.text is not None:
            checks.append(bool(match_text(c.text, inp.text)))
        if c.category:
            checks.append(st.category is not None and st.category.id in c.category)
        if c.priority:
            checks.append(st.priority is not None and st.priority.id in c.priority)
        if c.channel:
            checks.append(inp.channel is not None and inp.channel in c.channel)
        if c.source:
            checks.append(inp.source is not None and inp.source in c.source)
        if c.tags:
            checks.append(bool(set(c.tags) & set(inp.tags)))
        if c.customer_tier:
            tier = (inp.customer.tier or "").lower()
            checks.append(tier in {t.lower() for t in c.customer_tier})
        if c.monthly_value is not None:
            checks.append(c.monthly_value.holds(inp.customer.monthly_value))
        if c.amount is not None:
            checks.append(c.amount.holds(inp.amount))
        if c.users_affected is not None:
            checks.append(c.users_affected.holds(inp.impact.users_affected))
        if c.revenue_per_hour is not None:
            checks.append(c.revenue_per_hour.holds(inp.impact.revenue_per_hour))
        if c.sentiment is not None:
            checks.append(c.sentiment.holds(s.sentiment))
        if c.dissatisfied is not None:
            checks.append(bool(s.dissatisfied) == c.dissatisfied)
        if c.vip is not None:
            checks.append(s.vip == c.vip)
        if c.legal_language is not None:
            checks.append(s.legal_language == c.legal_language)
        if c.threatening_language is not None:
            checks.append(s.threatening_language == c.threatening_language)
        for key, want in c.fields.items():
            have = inp.fields.get(key)
            if isinstance(want, list):
                checks.append(have in want)
            else:
                checks.append(have == want)
        return bool(checks) and all(checks)

    def _why(self, c: Condition, inp: EscalationInput, s: Signals) -> str:
        """The facts that made a condition hold, in words."""
        parts: list[str] = []
        if c.text is not None:
            hits = match_text(c.text, inp.text)
            parts.append("text mentions " + ", ".join(f"'{h}'" for h in hits[:3]))
        if c.category:
            parts.append(f"category in {', '.join(c.category)}")
        if c.priority:
            parts.append(f"priority in {', '.join(c.priority)}")
        if c.channel:
            parts.append(f"channel {inp.channel.value if inp.channel else ''}")
        if c.source:
            parts.append(f"source {inp.source}")
        if c.tags:
            parts.append("tagged " + ", ".join(sorted(set(c.tags) & set(inp.tags))))
        if c.customer_tier:
            parts.append(f"customer tier '{inp.customer.tier}'")
        if c.monthly_value is not None:
            mv = inp.customer.monthly_value
            parts.append(
                f"monthly value {_money(mv) if mv is not None else '?'} "
                f"{c.monthly_value.describe()}"
            )
        if c.amount is not None:
            amt = inp.amount
            parts.append(f"amount {_money(amt) if amt is not None else '?'} {c.amount.describe()}")
        if c.users_affected is not None:
            parts.append(
                f"{inp.impact.users_affected} users affected, {c.users_affected.describe()}"
            )
        if c.revenue_per_hour is not None:
            parts.append(
                f"revenue impact {inp.impact.revenue_per_hour}/hour {c.revenue_per_hour.describe()}"
            )
        if c.sentiment is not None:
            parts.append(f"sentiment {s.sentiment or 0:.2f} {c.sentiment.describe()}")
        if c.dissatisfied is not None:
            parts.append(
                f"dissatisfaction detected (sentiment {s.sentiment or 0:.2f} below "
                f"{self.policy.routing.dissatisfaction_below:g})"
                if s.dissatisfied
                else "no dissatisfaction detected"
            )
        if c.vip is not None:
            parts.append("VIP customer" if s.vip else "not a VIP customer")
        if c.legal_language is not None or c.threatening_language is not None:
            words = ", ".join(f"'{w}'" for w in s.legal_phrases[:3])
            parts.append(
                f"legal or threatening language: {words}" if words else "no legal language"
            )
        for key, want in c.fields.items():
            parts.append(f"{key} = {want}")
        return "; ".join(parts)


def _similar_reason(m: SimilarityMatch) -> str:
    words = ", ".join(f"'{w}'" for w in m.top_words) or "none"
    text = f"{m.kind} '{m.key}': close to {m.kind} '{m.key}' {m.reference.source} "
    text += f"'{m.reference.text}' (similarity {m.score:.2f}; words that weighed most: {words})"
    if m.runner_up is not None and m.runner_up_score is not None:
        text += (
            f"; runner-up {m.runner_up.kind} '{m.runner_up.key}' {m.runner_up_score:.2f} "
            f"({m.runner_up.source} '{m.runner_up.text}')"
        )
    return text


def policy_references(policy: Policy) -> list[Reference]:
    """The policy's own words for each category and team: examples, description, name and
    match phrases. Categories that only a rule sets (no phrases, no examples) are left out:
    their name describes the rule's condition, not a ticket."""
    spec = policy.routing.similarity
    by_rule = {r.then.category for r in policy.routing.rules if r.then.category}
    refs: list[Reference] = []
    for c in policy.categories:
        phrases = c.match.phrases if c.match else []
        if c.id in by_rule and not phrases and not c.examples:
            continue
        refs.extend(Reference("category", c.id, "example", e) for e in c.examples)
        if c.description:
            refs.append(Reference("category", c.id, "description", c.description))
        if spec.use_names and c.name:
            refs.append(Reference("category", c.id, "name", c.name))
        if spec.use_phrases and phrases:
            refs.append(Reference("category", c.id, "phrases", ", ".join(phrases)))
    for t in policy.teams:
        refs.extend(Reference("team", t.id, "example", e) for e in t.examples)
        if t.description:
            refs.append(Reference("team", t.id, "description", t.description))
    return refs


# shares of the similarity given to words (stems and pairs), character pieces and
# thesaurus concepts; measured on the tune third of benchmarks/zero_history
BLOCK_WEIGHTS = (0.4, 0.4, 0.2)


def priority_similarity(
    policy: Policy, thesaurus: Thesaurus | None = None
) -> SimilarityIndex | None:
    """The priorities' similarity model (their examples and descriptions: the seed's
    severity tables), or None when switched off or when no priority has examples."""
    spec = policy.routing.similarity
    if not spec.enabled or not spec.priorities:
        return None
    refs = [
        Reference("priority", x.id, "example", e) for x in policy.priorities for e in x.examples
    ]
    if not refs:
        return None
    refs += [
        Reference("priority", x.id, "description", x.description)
        for x in policy.priorities
        if x.description
    ]
    index = SimilarityIndex(
        refs,
        thesaurus=thesaurus or _thesaurus(policy),
        weights=BLOCK_WEIGHTS,
        incidental=_incidental(policy),
    )
    return index if len(index) else None


def _incidental(policy: Policy) -> list[str]:
    """Contexts in which words are no evidence: every ``exclude`` of the policy's matches."""
    matches = [c.match for c in policy.categories if c.match] + [
        x.match for x in policy.priorities if x.match
    ]
    return sorted({e for m in matches for e in m.exclude})


def _thesaurus(policy: Policy) -> Thesaurus:
    spec = policy.routing.similarity
    groups: dict[str, list[str]] = {}
    if spec.thesaurus:
        groups.update({k: list(v) for k, v in SUPPORT_SYNONYMS.items()})
    for i, group in enumerate(spec.synonyms):
        groups[f"policy-{i}"] = list(group)
    return Thesaurus(groups)


def policy_similarity(policy: Policy, thesaurus: Thesaurus | None = None) -> SimilarityIndex | None:
    """The policy's similarity model, or None when it is switched off or has no words."""
    if not policy.routing.similarity.enabled:
        return None
    index = SimilarityIndex(
        policy_references(policy),
        thesaurus=thesaurus or _thesaurus(policy),
        weights=BLOCK_WEIGHTS,
        incidental=_incidental(policy),
    )
    return index if len(index) else None


@dataclass(frozen=True)
class _Grouping:
    """How a model's labels (in the order its probabilities come) add up into policy ids."""

    index: tuple[int, ...]  # each model label's policy id, as a position in ``ids``
    ids: tuple[str, ...]  # policy ids in order of first appearance
    sizes: tuple[int, ...]  # how many model labels map to each id

    @classmethod
    def of(cls, labels: Sequence[str], label_map: Mapping[str, str]) -> _Grouping:
        ids: dict[str, int] = {}
        index = tuple(ids.setdefault(label_map.get(raw, raw), len(ids)) for raw in labels)
        sizes = [0] * len(ids)
        for g in index:
            sizes[g] += 1
        return cls(index, tuple(ids), tuple(sizes))


def _mapped_label(
    pred: PredictionLike, label_map: Mapping[str, str]
) -> tuple[str, float, str | None, float | None, str]:
    """A model's top label and runner-up in the policy's ids, one by one."""
    label = label_map.get(pred.label, pred.label)
    runner_label = label_map.get(pred.runner_up, pred.runner_up) if pred.runner_up else None
    return label, pred.probability, runner_label, pred.runner_up_probability, ""


def route(
    policy: Policy,
    inp: EscalationInput,
    now: datetime,
    classifiers: Mapping[str, Predictor] | None = None,
) -> Decision:
    """One decision (see :class:`Router`)."""
    return Router(policy, classifiers).route(inp, now)


def route_many(
    policy: Policy,
    inputs: Sequence[EscalationInput],
    now: datetime,
    classifiers: Mapping[str, Predictor] | None = None,
) -> list[Decision]:
    return Router(policy, classifiers).route_many(inputs, now)


def _example_guess(field: str, m: SimilarityMatch, *, accepted: bool) -> TriageGuess:
    """What the policy's own words said, as a triage guess: the label, the example it was
    closest to, the runner-up and the words that weighed most."""
    return TriageGuess.model_validate(
        dict(
            field=field,
            model="policy examples",
            label=m.key,
            probability=round(m.score, 4),
            runner_up=m.runner_up.key if m.runner_up else None,
            runner_up_probability=(
                round(m.runner_up_score, 4) if m.runner_up_score is not None else None
            ),
            top_words=list(m.top_words),
            accepted=accepted,
            reference=m.reference.text,
            reference_kind=m.reference.source,
        )
    )
