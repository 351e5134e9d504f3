"""The web dashboard: the alliance's common picture, per member, in a browser."""

from shieldwall.web.app import create_dashboard, mount
from shieldwall.web.users import ROLES, Users, create_user

__all__ = ["ROLES", "Users", "create_dashboard", "create_user", "mount"]
