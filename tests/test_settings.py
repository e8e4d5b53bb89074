"""Settings come from FLOORWALKER_* variables; unsafe values are refused with the variable's name."""

import pytest

from server.settings import Settings, SettingsError


def test_defaults_are_the_embedded_single_machine_setup():
    settings = Settings.from_env({})
    assert settings.database_url.startswith("sqlite:///")
    assert settings.host == "127.0.0.1"
    assert (settings.api_port, settings.web_port) == (8000, 8550)
    assert settings.access_token_minutes <= 15


def test_production_refuses_the_placeholder_secret():
    with pytest.raises(SettingsError, match="FLOORWALKER_SECRET_KEY"):
        Settings.from_env({"FLOORWALKER_MODE": "production"})
    with pytest.raises(SettingsError, match="FLOORWALKER_SECRET_KEY"):
        Settings.from_env({"FLOORWALKER_MODE": "production", "FLOORWALKER_SECRET_KEY": "change-me"})
    keys = ",".join(f"{s}={'k' * 40}" for s in ("pos", "online_shop", "wechat", "call_centre"))
    production = {"FLOORWALKER_MODE": "production", "FLOORWALKER_SECRET_KEY": "x" * 40}
    with pytest.raises(SettingsError, match="FLOORWALKER_EVENT_KEYS"):
        Settings.from_env(production)  # the events' demo keys are refused too
    with pytest.raises(SettingsError, match="pos"):
        Settings.from_env({**production, "FLOORWALKER_EVENT_KEYS": "pos=short"})
    ok = Settings.from_env({**production, "FLOORWALKER_EVENT_KEYS": keys})
    assert ok.mode == "production" and set(ok.event_key_map) == {"pos", "online_shop", "wechat", "call_centre"}


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"FLOORWALKER_ACCESS_TOKEN_MINUTES": "60"}, "FLOORWALKER_ACCESS_TOKEN_MINUTES"),
        ({"FLOORWALKER_API_PORT": "eighty"}, "FLOORWALKER_API_PORT"),
        ({"FLOORWALKER_DATABASE_URL": "mysql://x"}, "FLOORWALKER_DATABASE_URL"),
        ({"FLOORWALKER_MODE": "staging"}, "FLOORWALKER_MODE"),
    ],
)
def test_bad_values_name_the_variable(env, name):
    with pytest.raises(SettingsError, match=name):
        Settings.from_env(env)
