"""The one settings object of a process, read from FLOORWALKER_* environment variables."""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

PLACEHOLDER_SECRETS = frozenset({"", "change-me", "changeme", "secret", "floorwalker-dev-secret-not-for-production"})
DEV_SECRET = "floorwalker-dev-secret-not-for-production"


class SettingsError(ValueError):
    """A setting is missing or unsafe; the message names the variable."""


class Settings(msgspec.Struct, kw_only=True, frozen=True):
    # dev | demo | production. Outside dev/demo, placeholder secrets are refused.
    mode: str = "dev"
    # sqlite:///path/to/file (embedded default) or postgresql://user@host:port/db
    database_url: str = "sqlite:///var/floorwalker.sqlite3"
    # Signs access tokens (HS256). Must be a long random string in production.
    secret_key: str = DEV_SECRET
    # Access tokens live at most 15 minutes (refused above); refresh tokens for days.
    access_token_minutes: int = 15
    refresh_token_days: int = 30
    # Where `serve`, `app --web` and `run` listen; nothing binds beyond 127.0.0.1 unless asked.
    host: str = "127.0.0.1"
    api_port: int = 8000
    web_port: int = 8550
    # Where the app finds the API.
    server_url: str = "http://127.0.0.1:8000"
    # Redis for cross-worker pokes and shared counters in production; empty on one machine.
    redis_url: str = ""
    # How often each API process looks at the change counters for live pokes (milliseconds).
    # 0: 500 without Redis; with Redis (pokes published at once) 5000, a safety net only.
    poke_poll_ms: int = 0
    # Largest request body accepted, in bytes (a bigger one answers 413).
    max_body_bytes: int = 1_000_000
    # Login throttling: failures within the window, per account and per client address.
    login_window_seconds: int = 900
    login_max_failures_per_account: int = 5
    login_max_failures_per_address: int = 30
    # Connections the PostgreSQL pool keeps per process.
    db_pool_size: int = 10
    # How often the leader sweeps the rules (seconds); 0 turns the sweep off (tests that need a
    # fixed task list run their servers so).
    rules_sweep_seconds: int = 60
    # How often the leader makes notifications (feed, due tasks), plans pushes and dispatches them
    # (seconds); 0 turns it off (tests' servers run without it unless they ask).
    notify_seconds: int = 5
    # Keys that sign behaviour events (POST /api/events), one per source system:
    # "pos=…,online_shop=…,wechat=…,call_centre=…". Empty: the demo keys "<source>-demo-key"
    # (refused in production).
    event_keys: str = ""
    # Web Push to browsers (VAPID): the application server's private key (PEM, or the raw key in
    # base64url) and the contact it names. Empty key: made once per database in dev/demo
    # (var/vapid-<database>.pem); required in production for browser push.
    vapid_private_key: str = ""
    vapid_subject: str = "mailto:ops@floorwalker.example"
    # Android push through FCM HTTP v1: the Firebase project and a service-account JSON file.
    # Empty: FCM is off. fcm_endpoint is for a stand-in (tests); Google's by default.
    fcm_project_id: str = ""
    fcm_credentials_file: str = ""
    fcm_endpoint: str = "https://fcm.googleapis.com"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for field in msgspec.structs.fields(cls):
            raw = env.get(f"FLOORWALKER_{field.name.upper()}")
            if raw is None:
                continue
            if field.type is int:
                try:
                    values[field.name] = int(raw)
                except ValueError:
                    raise SettingsError(
                        f"FLOORWALKER_{field.name.upper()} must be a whole number, got {raw!r}"
                    ) from None
            else:
                values[field.name] = raw
        settings = cls(**values)
        settings.check()
        return settings

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def event_key_map(self) -> dict[str, bytes]:
        if not self.event_keys:
            return {s: f"{s}-demo-key".encode() for s in ("pos", "online_shop", "wechat", "call_centre")}
        pairs = (p.partition("=") for p in self.event_keys.split(",") if p.strip())
        return {s.strip(): k.strip().encode() for s, _, k in pairs}

    @property
    def sqlite_path(self) -> Path:
        return Path(self.database_url.removeprefix("sqlite:///"))

    def check(self) -> None:
        if self.mode not in {"dev", "demo", "production"}:
            raise SettingsError(f"FLOORWALKER_MODE must be dev, demo or production, got {self.mode!r}")
        if self.mode == "production" and (self.secret_key in PLACEHOLDER_SECRETS or len(self.secret_key) < 32):
            raise SettingsError(
                "FLOORWALKER_SECRET_KEY is a placeholder or shorter than 32 characters; "
                "set a long random value (python -c 'import secrets; print(secrets.token_urlsafe(48))')"
            )
        if self.mode == "production" and not self.event_keys:
            raise SettingsError(
                "FLOORWALKER_EVENT_KEYS is empty: set one long random key per source (pos=…,online_shop=…)"
            )
        for part in filter(None, (p.strip() for p in self.event_keys.split(","))):
            source, _, key = part.partition("=")
            if not source.strip() or len(key.strip()) < (32 if self.mode == "production" else 8):
                raise SettingsError(f"FLOORWALKER_EVENT_KEYS: {source or part!r} needs a key (source=key, long enough)")
        if not (1 <= self.access_token_minutes <= 15):
            raise SettingsError("FLOORWALKER_ACCESS_TOKEN_MINUTES must be between 1 and 15")
        if not (
            self.database_url.startswith("sqlite:///") or self.database_url.startswith(("postgresql://", "postgres://"))
        ):
            raise SettingsError(
                f"FLOORWALKER_DATABASE_URL must start with sqlite:/// or postgresql://, got {self.database_url!r}"
            )
