"""Routing: from an escalation package to an explained decision (category, team, level,
priority, handling, missing information, reasons). Pure: no I/O, no clock."""

from escalade.routing.models import Decision, EscalationInput
from escalade.routing.router import Router, RoutingInputError, route, route_many

__all__ = ["Decision", "EscalationInput", "Router", "RoutingInputError", "route", "route_many"]
