"""Configuration: config.yaml for everything that is not secret, the environment for secrets.

Environment variables (or a `.env` file in the working directory, which `guanwei init` writes)
override the file and are the only place secrets may live (rule R4.2). Any wrong or missing value
raises `ConfigError` whose message names the setting; the CLI prints it on one line.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from dotenv import dotenv_values
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from escalation.calendar import ReplyHours
from escalation.ladder import LadderPolicy, Rung
from escalation.sla import SlaPolicy

ENV_PREFIX = "GUANWEI_"
DEFAULT_CONFIG_NAME = "config.yaml"


class ConfigError(Exception):
    """A setting is wrong or missing. The message starts with the setting's name."""


class ServerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    data_dir: str = "data"
    max_body_bytes: int = Field(256 * 1024, ge=1024)
    replay_window_seconds: int = Field(300, ge=10, le=86400)
    messages_per_sender_per_minute: int = Field(20, ge=1, le=10_000)
    requests_per_ip_per_minute: int = Field(6000, ge=1, le=1_000_000)


class ChannelSwitch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool = True


class WeChatChannel(ChannelSwitch):
    # Safe mode signs the body too; plain-mode pushes are then refused (403).
    require_safe_mode: bool = False


class ChannelsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    wechat: WeChatChannel = WeChatChannel()
    weibo: ChannelSwitch = ChannelSwitch()


class SlaConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    routine_working_minutes: int = Field(120, ge=1, le=60 * 24 * 10)
    critical_wall_minutes: int = Field(60, ge=1, le=60 * 24)


# Every reply text may use each of these (bot.replies fills the ones it has, the others read ""); the values
# are examples, used to try each text once at load so that a malformed one stops the command, not a push.
REPLY_PLACEHOLDERS = {"bureau": "某市文化和旅游局", "ref": "000012", "due": "今天16:30", "department": "市场管理处",
                      "kind": "图片", "answer": "您好，每天9点开放。"}


class RepliesConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    welcome: str
    routine_ack: str
    critical_ack: str
    followup_ack: str
    media_ack: str
    faq_answer: str
    unsupported: str
    rate_limited: str = "您发送消息过于频繁，请稍后再试。您之前的留言已登记，我们会按时答复。"

    @field_validator("*")
    @classmethod
    def _a_template_that_formats(cls, text: str) -> str:
        text = " ".join(text.split())  # YAML folded text: keep one line, no stray spaces
        try:
            fields = [name for _, name, _, _ in string.Formatter().parse(text) if name is not None]
        except ValueError as exc:  # "{ref", a lone "}"
            raise ValueError(f"malformed template ({exc}; write {{{{ and }}}} for literal braces)") from None
        unknown = set(fields) - set(REPLY_PLACEHOLDERS)
        if unknown:
            raise ValueError(f"unknown placeholder(s) {sorted(unknown)}; placeholders are "
                             f"{', '.join('{' + name + '}' for name in REPLY_PLACEHOLDERS)}")
        try:  # what bot.replies does with every reply: fill it in (format specs and conversions included)
            text.format_map(REPLY_PLACEHOLDERS)
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
            raise ValueError(f"malformed template ({exc})") from None
        return text


class KnowledgeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # How often the server looks for edited word lists or a newly imported FAQ (SIGHUP: at once).
    reload_check_seconds: float = Field(10.0, ge=1.0, le=3600.0)


CONTACT_ROLES = ("department_staff", "department_head", "info_center", "office", "leader", "on_duty")
NOTIFIER_CHANNELS = ("log", "wecom_robot", "wechat_template", "email")


class RungConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    notify: list[str]
    timeout_minutes: int = Field(0, ge=0, le=60 * 24 * 10)
    critical_timeout_minutes: int = Field(0, ge=0, le=60 * 24)

    @field_validator("notify")
    @classmethod
    def _known_roles(cls, roles: list[str]) -> list[str]:
        unknown = set(roles) - set(CONTACT_ROLES)
        if unknown:
            raise ValueError(f"unknown role(s) {sorted(unknown)}; roles are {', '.join(CONTACT_ROLES)}")
        return roles


class ContactConfig(BaseModel):
    """Who is alerted. Addresses that are secrets (robot webhook URLs hold a key) come from the environment."""

    model_config = ConfigDict(extra="forbid")
    name: str
    role: str
    department: str | None = None
    channel: str = "log"
    address: str | None = None
    address_env: str | None = None

    @field_validator("role")
    @classmethod
    def _known_role(cls, role: str) -> str:
        if role not in CONTACT_ROLES:
            raise ValueError(f"unknown role {role!r}; roles are {', '.join(CONTACT_ROLES)}")
        return role

    @field_validator("channel")
    @classmethod
    def _known_channel(cls, channel: str) -> str:
        if channel not in NOTIFIER_CHANNELS:
            raise ValueError(f"unknown channel {channel!r}; channels are {', '.join(NOTIFIER_CHANNELS)}")
        return channel

    @model_validator(mode="after")
    def _address_where_needed(self) -> ContactConfig:
        if self.channel == "wecom_robot" and self.address:
            raise ValueError("a robot webhook URL holds its key: give address_env, not address")
        if self.channel != "log" and not (self.address or self.address_env):
            raise ValueError(f"channel {self.channel} needs address or address_env")
        return self


class EscalationConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reminders_at: list[float] = [0.5, 0.8]
    critical_start_rung: int = 2
    rungs: list[RungConfig]
    contacts: list[ContactConfig] = []
    sweep_interval_seconds: float = Field(30.0, ge=1.0, le=600.0)
    leader_lock_seconds: float = Field(60.0, ge=3.0, le=3600.0)
    reopen_within_days: int = Field(7, ge=0, le=90)

    def ladder(self) -> LadderPolicy:
        """The reminder fractions and the rungs as the scheduler runs them (escalation.ladder checks them)."""
        rungs = tuple(Rung(level, r.name, tuple(r.notify), r.timeout_minutes, r.critical_timeout_minutes)
                      for level, r in enumerate(self.rungs, 1))
        return LadderPolicy(rungs, tuple(self.reminders_at), critical_start_level=self.critical_start_rung)

    @model_validator(mode="after")
    def _a_ladder_that_runs(self) -> EscalationConfig:
        # Checked at load, by every command: not first found by the scheduler inside `serve` or `sweep`.
        if not self.rungs:
            raise ValueError("rungs: at least one rung is needed")
        try:
            self.ladder()
        except ValueError as exc:  # the ladder's own names; the file calls one of them critical_start_rung
            raise ValueError(str(exc).replace("critical_start_level", "critical_start_rung")) from None
        return self


class EmailConfig(BaseModel):
    """SMTP for alert e-mails; GUANWEI_SMTP_USER and GUANWEI_SMTP_PASSWORD come from the environment."""

    model_config = ConfigDict(extra="forbid")
    host: str = "127.0.0.1"
    port: int = Field(25, ge=1, le=65535)
    sender: str = "guanwei@localhost"
    starttls: bool = False
    use_tls: bool = False


class TemplateConfig(BaseModel):
    """WeChat template messages to staff; GUANWEI_WECHAT_APPSECRET comes from the environment."""

    model_config = ConfigDict(extra="forbid")
    template_id: str = ""
    api_base_url: str = "https://api.weixin.qq.com/cgi-bin/"


class NotifiersConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: EmailConfig = EmailConfig()
    wechat_template: TemplateConfig = TemplateConfig()


class PlatformApiConfig(BaseModel):
    """Where answers are sent. Tests and `guanwei fake-platform` point these at loopback."""

    model_config = ConfigDict(extra="forbid")
    wechat_base_url: str = "https://api.weixin.qq.com/cgi-bin/"
    weibo_base_url: str = "https://m.api.weibo.com"
    weibo_post_base_url: str = "https://api.weibo.com"  # statuses/share: the publishing desk's posts


class ClamdConfig(BaseModel):
    """ClamAV's daemon: a unix socket path, or host and port (the socket wins when both are set)."""

    model_config = ConfigDict(extra="forbid")
    socket: str | None = "/var/run/clamav/clamd.ctl"
    host: str | None = None
    port: int = Field(3310, ge=1, le=65535)
    timeout_seconds: float = Field(30.0, ge=1.0, le=600.0)


class MediaLimitsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    image_max_mb: float = Field(2, gt=0)
    voice_max_mb: float = Field(5, gt=0)
    voice_max_seconds: float = Field(60, gt=0)
    video_max_mb: float = Field(20, gt=0)


class PublishingConfig(BaseModel):
    """The publishing desk (R4.3, R4.4, R8.3): push window, items per push, weekly minimum, media, clamd."""

    model_config = ConfigDict(extra="forbid")
    push_window_start: str = Field("10:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    push_window_end: str = Field("12:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    items_per_push_min: int = Field(1, ge=1, le=8)
    items_per_push_max: int = Field(4, ge=1, le=8)
    pushes_per_week_min: int = Field(3, ge=0, le=20)
    channels: list[str] = ["wechat", "weibo"]
    media: MediaLimitsConfig = MediaLimitsConfig()
    clamd: ClamdConfig = ClamdConfig()

    @field_validator("channels")
    @classmethod
    def _known_channels(cls, channels: list[str]) -> list[str]:
        unknown = set(channels) - {"wechat", "weibo"}
        if unknown or not channels:
            raise ValueError("one or both of wechat, weibo")
        return channels


class FileConfig(BaseModel):
    """The shape of config.yaml."""

    model_config = ConfigDict(extra="forbid")
    bureau_name: str
    server: ServerConfig = ServerConfig()
    channels: ChannelsConfig = ChannelsConfig()
    timezone: str = "Asia/Shanghai"
    reply_hours: dict[str, Any]
    sla: SlaConfig = SlaConfig()
    departments: dict[str, str]
    fallback_department: str = "info_center"
    knowledge: KnowledgeConfig = KnowledgeConfig()
    escalation: EscalationConfig
    notifiers: NotifiersConfig = NotifiersConfig()
    platform_api: PlatformApiConfig = PlatformApiConfig()
    publishing: PublishingConfig = PublishingConfig()
    replies: RepliesConfig


@dataclass(frozen=True)
class WeChatSecrets:
    token: str
    appid: str
    aes_key: str | None  # None: plain mode only


@dataclass(frozen=True)
class Settings:
    """Everything the application needs, validated."""

    file: FileConfig
    config_path: Path
    tz: ZoneInfo
    reply_hours: ReplyHours
    sla: SlaPolicy
    database_url: str
    redis_url: str | None
    wechat: WeChatSecrets | None  # None when the channel is disabled
    weibo_app_secret: str | None

    @property
    def departments(self) -> dict[str, str]:
        return self.file.departments

    def department_name(self, key: str) -> str:
        return self.file.departments.get(key, key)


class _UniqueKeyLoader(yaml.SafeLoader):
    """The safe loader, refusing a key given twice in one mapping: PyYAML would silently keep the last one, and
    in a config file that hides a mistake (a department named twice, a second `sla:` overriding the first)."""


def _mapping_without_duplicates(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    first_line: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            seen = key in first_line
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, "found an unhashable key", key_node.start_mark) from None
        if seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first given at line {first_line[key]})", key_node.start_mark)
        first_line[key] = key_node.start_mark.line + 1
    return loader.construct_mapping(node, deep=True)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{ENV_PREFIX}CONFIG: config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{ENV_PREFIX}CONFIG: cannot read {path}: {exc}") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" line {where.line + 1}" if where else ""
        raise ConfigError(f"{path}{line}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: must be a mapping of settings")
    return data


def _first_error(exc: ValidationError, path: Path) -> ConfigError:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "(top level)"
    message = err["msg"].removeprefix("Value error, ")
    # A check of a whole section names the setting inside it first ("reminders_at: …"): one dotted name.
    inner = re.match(r"([a-z_]+): ", message) if err["type"] == "value_error" else None
    if inner:
        where, message = f"{where}.{inner[1]}", message[inner.end():]
    return ConfigError(f"{path}: {where}: {message}")


def _database_url(value: str | None, data_dir: Path) -> str:
    name = f"{ENV_PREFIX}DATABASE_URL"
    if not value:
        return f"sqlite+aiosqlite:///{(data_dir / 'guanwei.sqlite3').resolve()}"
    scheme = value.split("://", 1)[0] if "://" in value else ""
    # Accept the URLs people copy from elsewhere and pick the async driver ourselves.
    if scheme in ("sqlite", "sqlite+aiosqlite"):
        return "sqlite+aiosqlite://" + value.split("://", 1)[1]
    if scheme in ("postgres", "postgresql", "postgresql+asyncpg"):
        return "postgresql+asyncpg://" + value.split("://", 1)[1]
    raise ConfigError(f"{name}: unsupported database URL scheme {scheme or value!r} (use sqlite:/// or postgresql://)")


def _wechat_secrets(env: Mapping[str, str]) -> WeChatSecrets:
    token = env.get(f"{ENV_PREFIX}WECHAT_TOKEN", "").strip()
    if not token:
        raise ConfigError(f"{ENV_PREFIX}WECHAT_TOKEN: not set (the token from the WeChat admin console; "
                          "`guanwei init` writes development values to .env)")
    if not re.fullmatch(r"[A-Za-z0-9]{3,32}", token):
        raise ConfigError(f"{ENV_PREFIX}WECHAT_TOKEN: must be 3–32 letters or digits, as WeChat requires")
    appid = env.get(f"{ENV_PREFIX}WECHAT_APPID", "").strip()
    if not appid:
        raise ConfigError(f"{ENV_PREFIX}WECHAT_APPID: not set (the account's AppID, wx…)")
    aes_key = env.get(f"{ENV_PREFIX}WECHAT_AES_KEY", "").strip() or None
    if aes_key is not None:
        try:
            raw = base64.b64decode(aes_key + "=", validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(aes_key) != 43 or len(raw) != 32:
            raise ConfigError(f"{ENV_PREFIX}WECHAT_AES_KEY: must be the 43-character EncodingAESKey "
                              "from the WeChat admin console")
    return WeChatSecrets(token=token, appid=appid, aes_key=aes_key)


def environment() -> dict[str, str]:
    """`.env` in the working directory (what `guanwei init` writes), overlaid by the real environment."""
    return {**{k: v for k, v in dotenv_values(".env").items() if v is not None}, **os.environ}


def resolve_config_path(config_path: str | Path | None, env: Mapping[str, str] | None = None) -> Path:
    """The --config option, else $GUANWEI_CONFIG, else ./config.yaml."""
    env = os.environ if env is None else env
    return Path(config_path or env.get(f"{ENV_PREFIX}CONFIG") or DEFAULT_CONFIG_NAME)


def load_file_config(path: Path) -> FileConfig:
    """config.yaml alone, validated: enough for commands that need no secret (classify)."""
    try:
        return FileConfig.model_validate(_read_yaml(path))
    except ValidationError as exc:
        raise _first_error(exc, path) from None


def load_settings(
    config_path: str | Path | None = None, env: Mapping[str, str] | None = None, *, channels: bool = True
) -> Settings:
    """Read config.yaml and the environment into validated `Settings`.

    `env` defaults to `.env` in the working directory overlaid by `os.environ`; tests pass their own.
    `channels=False` skips the platform secrets, for commands that only read the database.
    """
    if env is None:
        env = environment()
    path = resolve_config_path(config_path, env)
    file = load_file_config(path)
    try:
        tz = ZoneInfo(file.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{path}: timezone: unknown time zone {file.timezone!r}") from None
    try:
        reply_hours = ReplyHours.from_mapping(file.reply_hours, timezone=file.timezone)
    except ValueError as exc:
        raise ConfigError(f"{path}: reply_hours: {exc}") from None
    if not file.departments:
        raise ConfigError(f"{path}: departments: at least one department is required")
    if file.fallback_department not in file.departments:
        raise ConfigError(f"{path}: fallback_department: {file.fallback_department!r} is not a department key")

    data_dir = Path(env.get(f"{ENV_PREFIX}DATA_DIR") or file.server.data_dir)
    database_url = _database_url(env.get(f"{ENV_PREFIX}DATABASE_URL"), data_dir)
    redis_url = env.get(f"{ENV_PREFIX}REDIS_URL", "").strip() or None
    if redis_url and not redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(f"{ENV_PREFIX}REDIS_URL: must start with redis://, rediss:// or unix://")

    platform_url = env.get(f"{ENV_PREFIX}PLATFORM_API_URL", "").strip().rstrip("/")
    if platform_url:
        # One base for both platforms: `guanwei fake-platform` serves WeChat's and Weibo's paths together.
        if not platform_url.startswith(("http://", "https://")):
            raise ConfigError(f"{ENV_PREFIX}PLATFORM_API_URL: must start with http:// or https://")
        file.platform_api.wechat_base_url = f"{platform_url}/cgi-bin/"
        file.platform_api.weibo_base_url = platform_url
        file.platform_api.weibo_post_base_url = platform_url
    wechat = _wechat_secrets(env) if channels and file.channels.wechat.enabled else None
    if wechat and file.channels.wechat.require_safe_mode and not wechat.aes_key:
        raise ConfigError(f"{ENV_PREFIX}WECHAT_AES_KEY: not set, but channels.wechat.require_safe_mode is true")
    weibo_secret = None
    if channels and file.channels.weibo.enabled:
        weibo_secret = env.get(f"{ENV_PREFIX}WEIBO_APP_SECRET", "").strip()
        if not weibo_secret:
            raise ConfigError(f"{ENV_PREFIX}WEIBO_APP_SECRET: not set (the fans-service app secret; "
                              "or set channels.weibo.enabled: false in config.yaml)")
    return Settings(
        file=file,
        config_path=path,
        tz=tz,
        reply_hours=reply_hours,
        sla=SlaPolicy(file.sla.routine_working_minutes, file.sla.critical_wall_minutes),
        database_url=database_url,
        redis_url=redis_url,
        wechat=wechat,
        weibo_app_secret=weibo_secret,
    )
