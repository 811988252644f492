"""Message templates: one sandboxed Jinja2 environment, the names a template may use, the
built-in templates every message falls back to, and the check run when a policy loads. Pure.

A value that is missing renders as ``(not given)`` — never as a blank: an undefined name or
key, ``None`` and the empty string alike. ``| default('…')`` still chooses other words for
a missing value, and ``{% if x %}`` still tests it (a missing value is false).

A template may use only the names in ``TOP_LEVEL`` and, under ``escalation``, the keys in
``ESCALATION_KEYS``; anything else is a policy error naming the template and its line
(``check``). The escalation's free-form parts (``customer``, ``impact``, ``fields``,
``ticket``, ``package``, ``decision``) take any key.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import jinja2
from jinja2 import meta, nodes
from jinja2.sandbox import SandboxedEnvironment

MISSING = "(not given)"

ESCALATION_KEYS = frozenset(
    {
        "ref",
        "subject",
        "description",
        "team",
        "team_name",
        "age",
        "level",
        "priority",
        "priority_name",
        "category",
        "category_name",
        "state",
        "status",
        "owner",
        "assignee_name",
        "agent_name",
        "customer",
        "impact",
        "fields",
        "history",
        "technical_context",
        "signals",
        "ticket",
        "channel",
        "amount",
        "reasons",
        "response_target",
        "tags",
        "handling",
        "missing",
        "never",
        "forward_to",
        "ticket_notes",
        "created_at",
        "resolved_at",
        "resolution",
        "resolution_time",
    }
)
"""What ``escalation`` holds in a template (``escalation.messages.template_context``)."""

TOP_LEVEL = frozenset(
    {
        "ref",
        "escalation",
        "customer",
        "impact",
        "fields",
        "ticket",
        "package",
        "decision",
        "message",
    }
)
"""The names a template may use at its top level (Jinja's own globals aside). ``message``
is what the sender said about this one message: ``why`` it was sent (a breach, a
notification that did not arrive), ladder ``step`` and ``note``, ``cause``, ``mention``."""


class Missing(jinja2.ChainableUndefined):
    """A value the escalation does not have: renders as ``(not given)``; its parts are
    missing too (``escalation.customer.name`` when there is no customer)."""

    __slots__ = ()

    def __str__(self) -> str:
        return MISSING


def _finalize(value: Any) -> Any:
    if value is None or value == "" or isinstance(value, jinja2.Undefined):
        return MISSING
    return value


ENV = SandboxedEnvironment(autoescape=False, undefined=Missing, finalize=_finalize)


@lru_cache(maxsize=512)
def compiled(source: str) -> jinja2.Template:
    template = ENV.from_string(source)
    # Jinja keeps a template's globals as a ChainMap over the environment's and flattens it
    # on every render; ours never change after start-up, so flatten them once.
    template.globals = dict(template.globals)
    return template


def check(source: str) -> list[tuple[int, str]]:
    """Problems of one template text as ``(line, message)``: a syntax error, a name that
    is not in scope, or an ``escalation`` key that does not exist."""
    try:
        tree = ENV.parse(source)
    except jinja2.TemplateSyntaxError as exc:
        return [(exc.lineno, exc.message or "syntax error")]
    problems: list[tuple[int, str]] = []
    known = TOP_LEVEL | set(ENV.globals)
    unknown = meta.find_undeclared_variables(tree) - known
    for name in sorted(unknown):
        line = next(
            (n.lineno for n in tree.find_all(nodes.Name) if n.name == name and n.ctx == "load"),
            1,
        )
        problems.append(
            (line, f"unknown variable '{name}' (known: {', '.join(sorted(TOP_LEVEL))})")
        )
    for attr in tree.find_all(nodes.Getattr):
        if (
            isinstance(attr.node, nodes.Name)
            and attr.node.name == "escalation"
            and attr.attr not in ESCALATION_KEYS
        ):
            problems.append((attr.lineno, f"unknown variable 'escalation.{attr.attr}'"))
    for item in tree.find_all(nodes.Getitem):
        arg = item.arg
        if (
            isinstance(item.node, nodes.Name)
            and item.node.name == "escalation"
            and isinstance(arg, nodes.Const)
            and isinstance(arg.value, str)
            and arg.value not in ESCALATION_KEYS
        ):
            problems.append((item.lineno, f"unknown variable 'escalation.{arg.value}'"))
    return sorted(problems)


# ---------------------------------------------------------------- built-in templates

HANDLING_SECTION = """\
{% if escalation.never or escalation.forward_to or escalation.ticket_notes %}
Handling ({{ escalation.handling | join(', ') }}):
{% for item in escalation.never %}- NEVER: {{ item }}
{% endfor %}{% for address in escalation.forward_to %}- Forward to: {{ address }}
{% endfor %}{% for note in escalation.ticket_notes %}- Ticket note: {{ note }}
{% endfor %}{% endif %}"""
"""What every internal message about an escalation shows of its handling rules: the things
never to do, where it is forwarded, the ticket notes. Appended to an internal template that
does not show ``escalation.never`` itself."""

_INTERNAL_BODY = (
    """\
{% if message.why %}{{ message.why }}
{% endif %}{% if message.step %}Ladder {{ message.ladder }}, step {{ message.step }}\
{% if message.note %}: {{ message.note }}{% endif %}
{% elif message.note %}{{ message.note }}
{% endif %}{% if message.cause %}Escalated ({{ message.cause }})
{% endif %}{{ escalation.ref }}: {{ escalation.subject }}
Priority: {{ escalation.priority }}   Category: {{ escalation.category }}
Team: {{ escalation.team_name }}   Level: {{ escalation.level }}   State: {{ escalation.state }}
Owner: {{ escalation.owner }}   Open for: {{ escalation.age }}
Customer: {{ escalation.customer.name }} <{{ escalation.customer.email }}>
Why: {{ escalation.reasons | join('; ') }}
"""
    + HANDLING_SECTION
)

BUILTIN: dict[tuple[str, str | None], tuple[str, str]] = {
    ("internal", None): (
        "[{{ escalation.priority }}] {{ escalation.ref }}: {{ escalation.subject }}",
        _INTERNAL_BODY,
    ),
    ("stakeholder", None): (
        "FYI [{{ escalation.priority }}] {{ escalation.ref }}: {{ escalation.subject }}",
        _INTERNAL_BODY,
    ),
    ("customer", None): (
        "Re: {{ escalation.subject }} [{{ escalation.ref }}]",
        """\
Hello {{ escalation.customer.name | default('there') }},

We have received your request "{{ escalation.subject }}" (reference {{ escalation.ref }})
and passed it to our {{ escalation.team_name }}.
""",
    ),
}
"""Built-in ``(subject, body)`` per ``(audience, channel)`` (``None``: any channel), for a
message that names no template and whose policy declares no ``default`` template for it."""
