"""Piccolo's configuration module (PICCOLO_CONF=server.piccolo_conf): the engine and the app."""

from piccolo.conf.apps import AppRegistry

from server.db import engine_for
from server.settings import Settings

DB = engine_for(Settings.from_env().database_url)

APP_REGISTRY = AppRegistry(apps=["server.piccolo_app"])
