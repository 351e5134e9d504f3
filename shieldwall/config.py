"""A node's configuration: `shieldwall.toml` in the node's home, `SHIELDWALL_*` overrides.

The home holds everything a node is: its config, its SQLite database (unless a
database URL points elsewhere), its logs. Environment variables win over the file
so that a container or CI can reconfigure a node without editing it.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

import tomli_w
from pydantic import BaseModel, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from shieldwall.errors import ShieldwallError
from shieldwall.observe.config import ObserveConfig
from shieldwall.outputs.config import OutputsConfig
from shieldwall.policy.model import TIERS
from shieldwall.stix.markings import TLP

CONFIG_NAME = "shieldwall.toml"


class ConfigError(ShieldwallError):
    """The node's home or config is missing or wrong; the message says how to fix it."""


class ServerConfig(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8021
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_client_ca: str | None = None  # mutual TLS: peers' client certificates' CA
    allow_anonymous_discovery: bool = False
    # How members reach this server (https://taxii.cert-a.example:8021): discovery's
    # absolute API root URLs start with it; unset, with the URL of each request.
    public_url: str | None = None
    max_content_length: int = 100 * 1024 * 1024
    # One object's JSON, posted or pulled; larger ones are refused and counted, like any
    # refusal. STIX objects are kilobytes; a report with thousands of refs ~1 MB.
    max_object_bytes: int = 16 * 1024 * 1024


class FederationConfig(BaseModel):
    """What one pull from a peer may cost at most (docs/federation.md, "Limits"). The
    bytes of one answer, and of one object, are capped as a POST is: by
    `server.max_content_length` and `server.max_object_bytes`."""

    # Seconds for one whole request, connection to last byte: a peer trickling a byte at
    # a time never trips a timeout per read. A 10,000-object page (~4 MB) needs 0.3 Mbit/s.
    request_deadline: float = 120.0
    # Pages per collection per round; the next round goes on from the saved cursor.
    # A 1M-object backlog is 100 pages of 10,000 (1,000 from a server paging by 1,000).
    max_pages: int = 1_000


class BlindConfig(BaseModel):
    """What this node, as an owner of blind sets, answers each ally (docs/blind.md):
    evaluations per UTC day, and when a day counts as unusual (`alarm_factor` times the
    ally's median day, and at least `alarm_floor` values)."""

    daily_quota: int = 2_000_000
    alarm_factor: float = 10.0
    alarm_floor: int = 10_000


PEER_AUTH = ("bearer", "basic", "api-key", "none")


class PeerConfig(BaseModel):
    """A peer; its secret (bearer token, Basic password, API key) is never kept here, only
    the file that holds it (`token_file`). TLS client certificate and CA are files too."""

    name: str
    url: str
    token_file: str = ""
    auth: str = "bearer"  # one of PEER_AUTH
    user: str | None = None  # for basic
    api_key_header: str | None = None  # for api-key, e.g. X-API-Key
    tls_cert: str | None = None  # a client certificate (PEM), with tls_key
    tls_key: str | None = None
    tls_ca: str | None = None  # the CA that signed the peer's certificate
    tier: str = "ally"
    pull: list[str] = Field(default_factory=list)
    push: list[str] = Field(default_factory=list)
    # Members whose objects this peer may relay to us ("*": all); see federation/rules.py.
    relay_for: list[str] = Field(default_factory=list)


class NodeConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SHIELDWALL_", env_nested_delimiter="__",
                                      extra="ignore")

    member: str
    tier: str = "ally"
    home: Path
    database_url: str | None = None
    default_tlp: str = "amber"
    sighting_tlp: str = "amber"
    # The coordination cell's member name: assistance requests are addressed to it, and only
    # its node's dispatches count for them (docs/respond.md).
    cell: str = "coordination"
    server: ServerConfig = Field(default_factory=ServerConfig)
    federation: FederationConfig = Field(default_factory=FederationConfig)
    blind: BlindConfig = Field(default_factory=BlindConfig)
    peers: list[PeerConfig] = Field(default_factory=list)
    outputs: OutputsConfig = Field(default_factory=OutputsConfig)  # alerts (docs/sensors.md)
    observe: ObserveConfig = Field(default_factory=ObserveConfig)  # /metrics, JSON logs

    @field_validator("tier")
    @classmethod
    def _tier(cls, v: str) -> str:
        if v not in TIERS:
            raise ValueError(f"tier must be one of {', '.join(TIERS)}")
        return v

    @field_validator("default_tlp", "sighting_tlp")
    @classmethod
    def _tlp(cls, v: str) -> str:
        return TLP.parse(v).short

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The file's values arrive as init kwargs; the environment must win over them.
        return (env_settings, init_settings)

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'shieldwall.db'}"

    @property
    def default_tlp_level(self) -> TLP:
        return TLP.parse(self.default_tlp)

    @property
    def sighting_tlp_level(self) -> TLP:
        return TLP.parse(self.sighting_tlp)

    def save(self) -> None:
        data = self.model_dump(mode="json", exclude={"home"}, exclude_none=True)
        for section in ("outputs", "observe"):  # unset: left out, for [[outputs.targets]]
            if getattr(self, section) == type(getattr(self, section))():
                data.pop(section)
        (self.home / CONFIG_NAME).write_text(tomli_w.dumps(data))


def resolve_home(home: str | os.PathLike[str] | None) -> Path:
    """`--home`, else `$SHIELDWALL_HOME`, else `./.shieldwall`."""
    if home:
        return Path(home).expanduser().resolve()
    env = os.environ.get("SHIELDWALL_HOME")
    return Path(env).expanduser().resolve() if env else Path(".shieldwall").resolve()


def load_config(home: Path) -> NodeConfig:
    path = home / CONFIG_NAME
    if not path.is_file():
        raise ConfigError(
            f"no node at {home} (missing {CONFIG_NAME}); run 'shieldwall init --member NAME' first"
        )
    try:
        data: dict[str, Any] = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    try:
        return NodeConfig(home=home, **data)
    except ValidationError as exc:  # the first problem, where it is, in one line
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"{path}: {where}: {msg}") from None
    except ValueError as exc:
        first = str(exc).splitlines()
        raise ConfigError(f"{path}: {' '.join(first[:3])}") from None


def init_home(home: Path, member: str, **settings: Any) -> NodeConfig:
    if (home / CONFIG_NAME).exists():
        raise ConfigError(f"a node already exists at {home}; choose another --home")
    home.mkdir(parents=True, exist_ok=True)
    cfg = NodeConfig(home=home, member=member, **settings)
    cfg.save()
    return cfg
