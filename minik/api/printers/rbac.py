"""RBAC objects: Role and ClusterRole (Name, Created At), and their bindings.

As upstream's `printRole` and `printRoleBinding`: a role shows its creation
time in RFC 3339, not an age; a binding shows `Kind/name` of its role and,
wide, its users, groups and service accounts (`namespace/name`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from minik.api.printers.base import AGE, NAME, age_cell, col, name_cell, printer

CREATED_AT = col("Created At", "CreationTimestamp is a timestamp representing the server time "
                 "when this object was created.", type="date")
ROLE = col("Role", "RoleRef can only reference a ClusterRole in the global namespace.")
USERS = col("Users", "Users in the roleBinding", wide=True)
GROUPS = col("Groups", "Groups in the roleBinding", wide=True)
SERVICE_ACCOUNTS = col("ServiceAccounts", "ServiceAccounts in the roleBinding", wide=True)


def _role(obj: dict[str, Any], now: datetime) -> list[Any]:
    return [name_cell(obj), (obj.get("metadata") or {}).get("creationTimestamp") or ""]


printer("Role", NAME, CREATED_AT)(_role)
printer("ClusterRole", NAME, CREATED_AT)(_role)


def _subjects(subjects: list[dict[str, Any]], kind: str) -> str:
    shown = []
    for subject in subjects:
        if subject.get("kind") != kind:
            continue
        name, namespace = subject.get("name", ""), subject.get("namespace")
        shown.append(f"{namespace}/{name}" if kind == "ServiceAccount" and namespace else name)
    return ", ".join(shown)


def _binding(obj: dict[str, Any], now: datetime) -> list[Any]:
    ref = obj.get("roleRef") or {}
    subjects = obj.get("subjects") or []
    return [name_cell(obj), f"{ref.get('kind', '')}/{ref.get('name', '')}", age_cell(obj, now),
            *(_subjects(subjects, kind) for kind in ("User", "Group", "ServiceAccount"))]


printer("RoleBinding", NAME, ROLE, AGE, USERS, GROUPS, SERVICE_ACCOUNTS)(_binding)
printer("ClusterRoleBinding", NAME, ROLE, AGE, USERS, GROUPS, SERVICE_ACCOUNTS)(_binding)
