"""Configuration: one TOML file, overridden by CALLCENTER_<SECTION>_<KEY> variables.

Every value is checked on load; the first problems are reported together in one
`ConfigError` that names the file (or variable), the key and what is wrong.
Secrets are `SecretStr`: they never appear in a repr, a log line or an error.
"""

from __future__ import annotations

import base64
import codecs
import difflib
import ipaddress
import json
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, get_origin
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, TypeAdapter, ValidationError, ValidationInfo, field_validator
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from kernel.exceptions import ConfigError

ENV_PREFIX = "CALLCENTER_"
CONFIG_ENV = "CALLCENTER_CONFIG"
QUEUE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,80}")
QUEUE_NAME_RULE = "letters, digits, '_', '-' and '.' only (a ',' splits Queue()'s arguments, '|' queue_log's fields)"
AGENT_NAME = re.compile(r"[A-Za-z0-9_.@-]{1,120}")
AGENT_NAME_RULE = "1-120 of letters, digits, '_', '.', '-', '@' (AMI actions and queue_log split on others)"
_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
DEFAULT_FILE = "callcenter.toml"


# The native ACD's routing strategies, each a policy of acd/policies.py (the kernel names them; the ACD implements them).
STRATEGIES = ("longest_idle", "fewest_calls", "round_robin", "random", "ring_all", "skills", "skills_idle")


def _ip(value: str) -> bool:
    """Whether this is an IPv4 or IPv6 address."""
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _host(value: str) -> str:
    """An IP address or a host name: a typo such as 999.1.1.1 stops the command, not the first connection hours later."""
    labels = value.removesuffix(".").split(".")
    if not _ip(value) and (len(value) > 253 or labels[-1].isdigit() or not all(_HOST_LABEL.fullmatch(label) for label in labels)):
        raise ValueError(f"{value!r} is neither an IP address nor a host name")
    return value


def _url(value: str, schemes: tuple[str, ...], example: str) -> str:
    """A URL with one of these schemes and a host (or, for unix://, a path)."""
    parts = urlsplit(value)
    if parts.scheme not in schemes or not (parts.netloc or parts.scheme == "unix" and parts.path):
        raise ValueError(f"{value!r}: a URL starting {' or '.join(f'{s}://' for s in schemes)}, e.g. {example}")
    return value


Host = Annotated[str, AfterValidator(_host)]


class _Section(BaseModel):
    # No inf or nan in any float: a ping every inf seconds or a nan timeout would make no sense and fail far from here.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


class AMISettings(_Section):
    """Where the Asterisk Manager Interface is and how to stay connected to it."""

    host: Host = "127.0.0.1"
    port: int = Field(5038, ge=1, le=65535)
    username: str = "callcenter"
    secret: SecretStr | None = None
    ping_interval: float = Field(10.0, gt=0)
    ping_timeout: float = Field(5.0, gt=0)
    connect_timeout: float = Field(5.0, gt=0)
    reconnect_min: float = Field(0.5, gt=0)
    reconnect_max: float = Field(30.0, gt=0)
    max_frame_bytes: int = Field(1 << 20, ge=1024)
    # Asterisk's queue_log, where the engine can read it (same host, a shared folder): the calls of an AMI gap or of an
    # engine restart are recovered from it. Empty: none (such calls are stored with what CoreShowChannels still tells).
    queue_log: str = ""
    # Asterisk's CDR (cdr_csv's Master.csv with newcdrcolumns, as contrib/asterisk/cdr.conf sets it), where the engine can
    # read it: the calls of a gap that never reached a queue (a caller who stayed in the IVR) are recovered from it.
    cdr: str = ""

    @field_validator("reconnect_max")
    @classmethod
    def _not_under_min(cls, value: float, info: ValidationInfo) -> float:
        """The wait between reconnects grows from reconnect_min to reconnect_max, so min may not be the larger."""
        low = info.data.get("reconnect_min")
        if low is not None and value < low:
            raise ValueError(f"{value:g} is less than reconnect_min ({low:g})")
        return value


class DatabaseSettings(_Section):
    """SQLAlchemy URL: SQLite file by default, PostgreSQL in production."""

    url: str = "sqlite:///var/callcenter.db"

    @field_validator("url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        try:
            url = make_url(value)
            url.get_dialect()
        except (ArgumentError, NoSuchModuleError) as exc:
            raise ValueError(
                f"not a database URL SQLAlchemy can open ({exc}): e.g. sqlite:///var/callcenter.db or postgresql+psycopg://..."
            ) from exc
        if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
            raise ValueError(
                f"{value!r} names no file: SQLite would keep the data in memory and lose it when the command ends "
                "(e.g. sqlite:///var/callcenter.db)"
            )
        return value


class PanelSettings(_Section):
    """The CTI panel's web server."""

    host: Host = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    secret_key: SecretStr | None = None
    enabled: bool = True
    origins: list[str] = []
    secure_cookies: bool = False
    # Proxies (nginx) whose X-Forwarded-For names the client: login throttling and the recordings' access log then
    # see each agent's own address, not the proxy's. From any other peer the header is ignored.
    trusted_proxies: list[str] = []
    message_queue: str | None = None
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (an IANA name such as America/Sao_Paulo)") from exc
        return value

    service_level_s: dict[str, float] = {}
    dispositions: list[str] = ["resolved", "follow_up", "sale", "no_sale", "wrong_number", "complaint"]
    crm_url: str | None = None
    crm_timeout_s: float = Field(1.0, gt=0, le=30)
    dial_context: str = "callcenter-outbound"
    dial_ring_s: float = Field(30.0, gt=0, le=120)
    transfer_context: str = "callcenter-transfer"
    transfer_ring_s: float = Field(30.0, gt=0, le=120)
    queue_context: str = "callcenter-queues"

    @field_validator("origins")
    @classmethod
    def _exact_origins(cls, origins: list[str]) -> list[str]:
        """Socket.IO compares each with the browser's Origin header as sent, so scheme://host[:port]; "*" would let any site in."""
        for origin in origins:
            parts = urlsplit(origin)
            if parts.scheme not in ("http", "https") or not parts.hostname or parts.path or parts.query or parts.fragment:
                raise ValueError(f"{origin!r}: an origin is scheme://host[:port] as browsers send it, e.g. https://panel.example.com")
        return origins

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_addresses(cls, proxies: list[str]) -> list[str]:
        """The panel compares each with the peer's address, so each is one IP address (not a network, not a name)."""
        bad = [proxy for proxy in proxies if not _ip(proxy)]
        if bad:
            raise ValueError(f"{bad[0]!r}: an IP address, e.g. 127.0.0.1 (each proxy by its own address, no networks or names)")
        return proxies

    @field_validator("message_queue")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        """Flask-SocketIO and the engine reach Redis with it, and take nothing else."""
        return None if value is None else _url(value, ("redis", "rediss", "unix"), "redis://127.0.0.1:6379/0")

    @field_validator("crm_url")
    @classmethod
    def _crm_template(cls, value: str | None) -> str | None:
        """An http(s) URL with {number} where the caller's number goes, checked here so the message names the file and key."""
        if value is not None and "{number}" not in _url(value, ("http", "https"), "https://crm.example/api?phone={number}"):
            raise ValueError(f"{value!r}: put {{number}} where the caller's number goes")
        return value


class PathSettings(_Section):
    """Folders for data the call center writes."""

    data_dir: str = "var"
    recordings: str = "var/recordings"
    reports: str = "var/reports"


class ACDQueue(_Section):
    """One queue of our own ACD (native mode), or the skill that sets its members' penalties (app_queue mode)."""

    strategy: str = "longest_idle"
    max_length: int = Field(0, ge=0)
    max_wait_s: float = Field(0.0, ge=0)
    overflow: Literal["hangup", "queue", "voicemail", "message", "callback", "dialplan"] = "hangup"
    overflow_target: str = ""
    announce_every_s: float = Field(0.0, ge=0)
    music_class: str = "default"
    service_level_s: float = Field(20.0, ge=0)
    wrapup_s: float = Field(0.0, ge=0)
    wrapup_until_saved: bool = False
    ring_timeout_s: float = Field(15.0, gt=0)
    retry_s: float = Field(2.0, ge=0)
    autopause_after: int = Field(0, ge=0)
    widen_after_s: float = Field(0.0, ge=0)
    callback_key: str = ""
    callback_context: str = "callcenter-callback"
    skill: str = ""

    @field_validator("strategy")
    @classmethod
    def _known_strategy(cls, value: str) -> str:
        if value not in STRATEGIES:
            raise ValueError(f"unknown strategy '{value}' (one of {', '.join(sorted(STRATEGIES))})")
        return value


class ACDAgent(_Section):
    """An agent of the native ACD and the phone they answer on."""

    name: str
    interface: str
    queues: list[str]
    skills: dict[str, int] = {}

    @field_validator("name")
    @classmethod
    def _agent_name(cls, value: str) -> str:
        if not AGENT_NAME.fullmatch(value):
            raise ValueError(f"agent name {value!r}: {AGENT_NAME_RULE}")
        return value


class ACDSettings(_Section):
    """Who routes calls: Asterisk's app_queue (default) or our own ACD (native)."""

    mode: Literal["app_queue", "native"] = "app_queue"
    pause_reasons: list[str] = ["break", "lunch", "training", "meeting", "coaching", "after_call_work"]
    queues: dict[str, ACDQueue] = {}
    agents: list[ACDAgent] = []

    @field_validator("queues")
    @classmethod
    def _queue_names(cls, queues: dict[str, ACDQueue]) -> dict[str, ACDQueue]:
        for name in queues:
            if not QUEUE_NAME.fullmatch(name):
                raise ValueError(f"queue name {name!r}: {QUEUE_NAME_RULE}")
        return queues

    @field_validator("agents")
    @classmethod
    def _agents_in_known_queues(cls, agents: list[ACDAgent], info: ValidationInfo) -> list[ACDAgent]:
        """With [acd.queues] given, an agent's queue must be one of them (a typo would leave the agent in no queue)."""
        queues = info.data.get("queues") or {}
        for agent in agents:
            unknown = [q for q in agent.queues if q not in queues]
            if queues and unknown:
                raise ValueError(
                    f"agent {agent.name!r}: queue(s) {', '.join(map(repr, unknown))} not in [acd.queues] ({', '.join(queues)})"
                )
        return agents


class RecordingPolicy(_Section):
    """When a queue's calls are recorded and how long they are kept."""

    mode: Literal["all", "sample", "on_demand", "never"] = "all"
    sample_pct: float = Field(100.0, ge=0, le=100)
    retention_days: int = Field(365, ge=1)
    agents_hear_own: bool = False


class RecordingSettings(_Section):
    """Recordings: policy per queue, storage, encryption at rest and the retention floor."""

    enabled: bool = True
    default: RecordingPolicy = RecordingPolicy()
    queues: dict[str, RecordingPolicy] = {}
    min_retention_days: int = Field(90, ge=0)
    storage: Literal["local", "s3"] = "local"
    s3_bucket: str = ""
    s3_endpoint: str | None = None
    s3_prefix: str = "recordings/"
    encrypt: bool = False
    key: SecretStr | None = None

    @field_validator("key")
    @classmethod
    def _base64_key(cls, key: SecretStr | None) -> SecretStr | None:
        """Checked here so the message names the file; the vault checks its length when encryption is on."""
        if key is not None:
            try:
                base64.b64decode(key.get_secret_value(), validate=True)
            except ValueError as exc:
                raise ValueError(
                    "not base64 (make one with: python3 -c 'import os,base64;print(base64.b64encode(os.urandom(32)).decode())')"
                ) from exc
        return key

    def policy(self, queue: str | None) -> RecordingPolicy:
        """The queue's own policy, or the default."""
        return self.queues.get(queue or "", self.default)


class Settings(_Section):
    """The whole configuration."""

    ami: AMISettings = AMISettings()
    acd: ACDSettings = ACDSettings()
    database: DatabaseSettings = DatabaseSettings()
    panel: PanelSettings = PanelSettings()
    paths: PathSettings = PathSettings()
    recordings: RecordingSettings = RecordingSettings()
    source: str = "defaults"


_SECTIONS: dict[str, type[_Section]] = {
    "ami": AMISettings,
    "acd": ACDSettings,
    "database": DatabaseSettings,
    "panel": PanelSettings,
    "paths": PathSettings,
    "recordings": RecordingSettings,
}
_SECRETS = {"ami": "secret", "panel": "secret_key"}


def _setting_names() -> dict[str, tuple[str, str]]:
    """Every variable that is a setting: CALLCENTER_<SECTION>_<KEY> -> (section, key)."""
    return {f"{ENV_PREFIX}{s.upper()}_{k.upper()}": (s, k) for s, model in _SECTIONS.items() for k in model.model_fields}


def _env_overrides(environ: Mapping[str, str]) -> tuple[dict[str, dict[str, Any]], dict[tuple[str, str], str], list[str]]:
    """The settings the environment sets. A CALLCENTER_ variable that is no setting is another tool's (the test suite's,
    a wrapper script's) and is left alone, unless it is one letter or so away from a setting, or names a section: then
    it is a typo, and the error says which setting was meant."""
    data: dict[str, dict[str, Any]] = {}
    origin: dict[tuple[str, str], str] = {}
    problems: list[str] = []
    names = _setting_names()
    for name, raw in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX) or name == CONFIG_ENV:
            continue
        if name not in names:
            close = difflib.get_close_matches(name, names, n=1, cutoff=0.85)
            in_section = any(name.startswith(f"{ENV_PREFIX}{s.upper()}_") for s in _SECTIONS)
            if close or in_section:
                hint = f"did you mean {close[0]}?" if close else f"no such setting in [{name[len(ENV_PREFIX) :].split('_')[0].lower()}]"
                problems.append(f"{name}: unknown setting ({hint})")
            continue
        section, key = names[name]
        annotation = _SECTIONS[section].model_fields[key].annotation
        try:
            if _structured(annotation):
                value = json.loads(raw)
            else:
                value = TypeAdapter(annotation).validate_strings(raw)
        except json.JSONDecodeError as exc:
            problems.append(f'{name}: not JSON ({exc}); a list or table is set as JSON, e.g. {name}=\'["a", "b"]\'')
            continue
        except ValidationError as exc:
            problems.append(f"{name}: {exc.errors()[0]['msg']}")
            continue
        data.setdefault(section, {})[key] = value.get_secret_value() if isinstance(value, SecretStr) else value
        origin[(section, key)] = name
    return data, origin, problems


def _structured(annotation: Any) -> bool:
    """Whether a setting is a list or a table: the environment gives those as JSON, as TOML would nest them."""
    return get_origin(annotation) in (list, dict) or isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _read_toml(file: Path) -> dict[str, Any]:
    """The file's TOML (a UTF-8 BOM, as Windows editors write, is allowed); a byte that is not UTF-8 is named by line and column."""
    raw = file.read_bytes().removeprefix(codecs.BOM_UTF8)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, start = raw.count(b"\n", 0, exc.start) + 1, raw.rfind(b"\n", 0, exc.start) + 1
        column = len(raw[start : exc.start].decode("utf-8", "replace")) + 1
        raise ConfigError(f"{file}: line {line}, column {column}: not UTF-8 (save the file as UTF-8)") from exc
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: not valid TOML: {exc}") from exc


def _known_keys(parent: tuple[str, ...]) -> list[str]:
    """The keys a table of the file may have: the sections at the top, a section's fields inside it."""
    if not parent:
        return list(_SECTIONS)
    model = _SECTIONS.get(parent[0])
    return list(model.model_fields) if model is not None and len(parent) == 1 else []


def load(path: str | Path | None = None, *, require: Iterable[str] = (), environ: Mapping[str, str] | None = None) -> Settings:
    """Read, merge and check the configuration; `require` names sections whose secret must be set."""
    environ = os.environ if environ is None else environ
    explicit = path is not None or CONFIG_ENV in environ
    file = Path(path or environ.get(CONFIG_ENV) or DEFAULT_FILE)
    data: dict[str, Any] = {}
    if file.exists():
        try:
            data = _read_toml(file)
        except OSError as exc:  # a folder, no permission
            raise ConfigError(f"{file}: cannot read the config file: {exc.strerror or exc}") from exc
        source = str(file)
    elif explicit:
        raise ConfigError(f"{file}: config file not found")
    else:
        source = "defaults"
    overrides, origin, problems = _env_overrides(environ)
    if "source" in data:
        problems.append(f"{source}: source: unknown key")
        del data["source"]
    for section, values in overrides.items():
        target = data.setdefault(section, {})
        if isinstance(target, dict):
            target.update(values)
    try:
        settings = Settings.model_validate({**data, "source": source})
    except ValidationError as exc:
        for error in exc.errors():
            loc = tuple(str(part) for part in error["loc"])
            where = origin.get(loc[:2]) if len(loc) >= 2 else None  # type: ignore[arg-type]
            key = ".".join(loc)
            if error["type"] == "extra_forbidden":
                known = _known_keys(loc[:-1])
                close = difflib.get_close_matches(loc[-1], known, n=1, cutoff=0.6)
                problems.append(f"{where or source}: {key}: unknown key" + (f" (did you mean {close[0]}?)" if close else ""))
            else:
                problems.append(f"{where or source}: {key}: {error['msg']}")
        settings = None
    for section in require:
        secret = _SECRETS.get(section)
        if settings is not None and secret and getattr(getattr(settings, section), secret) is None:
            problems.append(
                f"{source}: {section}.{secret}: missing (set it in the file or in {ENV_PREFIX}{section.upper()}_{secret.upper()})"
            )
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))
    assert settings is not None
    return settings
