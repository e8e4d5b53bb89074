"""Dependencies handlers declare by name: the authenticated caller and the process settings."""

from __future__ import annotations

from litestar.di import NamedDependency

from server.auth.scope import Caller
from server.settings import Settings

CallerDep = NamedDependency[Caller]
SettingsDep = NamedDependency[Settings]
