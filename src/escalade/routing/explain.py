"""A routing decision in words, for a person (``escalade route --explain``)."""

from __future__ import annotations

from escalade.routing.models import Decision


def explain(decision: Decision) -> str:
    d = decision
    lines = [
        f"Category:  {d.category or '(none: a person triages)'}",
        f"Team:      {d.team}" + (f" (with {', '.join(d.also)})" if d.also else ""),
        f"Level:     {d.level or '-'}",
        f"Priority:  {d.priority or '-'}"
        + (
            (
                f"   first response within {d.response_target}"
                if d.response_target != "0m"
                else "   respond immediately"
            )
            if d.response_target
            else ""
        ),
    ]
    if d.path:
        lines.append(f"Path:      {' -> '.join([d.team, *d.path])}")
    if d.handling:
        lines.append(f"Handling:  {', '.join(d.handling)}")
    if d.never:
        lines.append("Never:")
        lines.extend(f"  - {item}" for item in d.never)
    if d.forward_to:
        lines.append(f"Forward:   {', '.join(d.forward_to)}")
    if d.authority:
        lines.append(f"Authority: {', '.join(d.authority)}")
    if d.notify:
        lines.append(f"Inform:    {', '.join(d.notify)}")
    if d.needs_triage:
        lines.append("Triage:    a person must confirm this decision")
    if d.missing:
        lines.append("Missing information:")
        lines.extend(f"  - {name}" for name in d.missing)
    lines.append("Why:")
    lines.extend(f"  {i}. {reason}" for i, reason in enumerate(d.reasons, start=1))
    if d.triage:
        lines.append("Models:")
        for g in d.triage:
            source = f" {g.reference_kind} '{g.reference}'" if g.reference else ""
            runner = (
                f"; runner-up '{g.runner_up}' {g.runner_up_probability:.2f}"
                if g.runner_up is not None and g.runner_up_probability is not None
                else ""
            )
            words = ", ".join(f"'{w}'" for w in g.top_words) or "none"
            verdict = (
                "used"
                if g.accepted
                else "not used (under its minimum similarity, or too close to the runner-up)"
                if g.reference is not None
                else "not used (under its minimum confidence)"
            )
            lines.append(
                f"  - {g.model}: {g.field} '{g.label}'{source} {g.probability:.2f}{runner}; "
                f"words that weighed most: {words}; {verdict}"
            )
    return "\n".join(lines)
