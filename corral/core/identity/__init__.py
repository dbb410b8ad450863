"""Identity and RBAC: users (humans and agents), sessions, API tokens, roles, bindings, delegations.

``effective_permissions(user, project)`` = global role permissions ∪ project role
permissions ∪ active delegations whose delegator still holds the permission in
the delegation's scope; a token's permissions are its scopes ∩ that set.
"""
