"""The policy: the escalation process as a validated, versionable file.

Owns the policy language (``models``), reading files with positions and includes
(``loader``) and checking them (``validate``). Pure apart from reading the file itself.
"""

from escalade.policy.loader import Position, Problem
from escalade.policy.models import Policy
from escalade.policy.validate import PolicyInvalid, check_files, load_policy, policy_from_text

__all__ = [
    "Policy",
    "PolicyInvalid",
    "Position",
    "Problem",
    "check_files",
    "load_policy",
    "policy_from_text",
]
