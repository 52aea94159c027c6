"""Configuration: config.yaml plus environment; every mistake is one line naming the setting."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bot.config import ConfigError, load_settings
from bot.logs import mask_id, mask_text
from tests.conftest import ROOT, TEST_ENV


def shipped() -> dict:
    return yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))


def write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def test_shipped_config_has_the_design_departments(tmp_path: Path) -> None:
    settings = load_settings(ROOT / "config.yaml", env=TEST_ENV)
    assert set(settings.departments) == {
        "office", "info_center", "market", "enforcement", "public_service", "arts", "heritage",
        "broadcasting", "industry",
    }
    assert settings.file.fallback_department == "info_center"
    assert (settings.sla.routine_working_minutes, settings.sla.critical_wall_minutes) == (120, 60)
    assert settings.database_url.startswith("sqlite+aiosqlite:///")
    assert settings.redis_url is None


def test_r4_2_shipped_config_holds_no_secret() -> None:
    text = (ROOT / "config.yaml").read_text(encoding="utf-8").lower()
    for value in TEST_ENV.values():
        assert value.lower() not in text
    data = shipped()
    assert not {"token", "aes_key", "app_secret", "secret", "password"} & set(data)


@pytest.mark.parametrize(
    ("missing", "named"),
    [
        ("GUANWEI_WECHAT_TOKEN", "GUANWEI_WECHAT_TOKEN"),
        ("GUANWEI_WECHAT_APPID", "GUANWEI_WECHAT_APPID"),
        ("GUANWEI_WEIBO_APP_SECRET", "GUANWEI_WEIBO_APP_SECRET"),
    ],
)
def test_missing_secret_names_the_setting(missing: str, named: str) -> None:
    env = {k: v for k, v in TEST_ENV.items() if k != missing}
    with pytest.raises(ConfigError, match=f"^{named}: not set"):
        load_settings(ROOT / "config.yaml", env=env)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("GUANWEI_WECHAT_AES_KEY", "too-short"),
        ("GUANWEI_WECHAT_AES_KEY", "!" * 43),
        ("GUANWEI_WECHAT_TOKEN", "has spaces in it"),
        ("GUANWEI_DATABASE_URL", "mysql://root@localhost/x"),
        ("GUANWEI_REDIS_URL", "localhost:6379"),
    ],
)
def test_wrong_value_names_the_setting(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=f"^{name}: "):
        load_settings(ROOT / "config.yaml", env={**TEST_ENV, name: value})


def test_aes_key_is_optional_for_plain_mode() -> None:
    env = {k: v for k, v in TEST_ENV.items() if k != "GUANWEI_WECHAT_AES_KEY"}
    settings = load_settings(ROOT / "config.yaml", env=env)
    assert settings.wechat is not None and settings.wechat.aes_key is None


def test_disabled_channel_needs_no_secret(tmp_path: Path) -> None:
    data = shipped()
    data["channels"]["weibo"]["enabled"] = False
    env = {k: v for k, v in TEST_ENV.items() if k != "GUANWEI_WEIBO_APP_SECRET"}
    settings = load_settings(write(tmp_path, data), env=env)
    assert settings.weibo_app_secret is None


def test_environment_overrides_database_and_data_dir(tmp_path: Path) -> None:
    env = {**TEST_ENV, "GUANWEI_DATABASE_URL": "postgresql://postgres@127.0.0.1/guanwei"}
    assert load_settings(ROOT / "config.yaml", env=env).database_url == "postgresql+asyncpg://postgres@127.0.0.1/guanwei"
    env = {**TEST_ENV, "GUANWEI_DATA_DIR": str(tmp_path / "elsewhere")}
    assert str(tmp_path / "elsewhere") in load_settings(ROOT / "config.yaml", env=env).database_url


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda d: d["sla"].update(routine_working_minutes="two hours"), "sla.routine_working_minutes"),
        (lambda d: d.update(fallback_department="nobody"), "fallback_department"),
        (lambda d: d["reply_hours"]["seasons"][0].update(open="25:00"), "reply_hours"),
        (lambda d: d["replies"].update(routine_ack="{nonsense}"), "replies.routine_ack"),
        (lambda d: d.update(surprise=1), "surprise"),
        (lambda d: d.update(timezone="Mars/Olympus"), "timezone"),
    ],
)
def test_wrong_file_value_names_the_key(tmp_path: Path, change, named: str) -> None:
    data = shipped()
    change(data)
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        load_settings(write(tmp_path, data), env=TEST_ENV)


def test_missing_or_broken_config_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.yaml", env=TEST_ENV)
    broken = tmp_path / "broken.yaml"
    broken.write_text("departments: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML") as info:
        load_settings(broken, env=TEST_ENV)
    assert "\n" not in str(info.value)


def test_personal_data_is_masked_in_log_text() -> None:
    line = "from oUpF8uMuAJO_M2pxb1Q9zNjWeS6o phone 13812345678 id 410102199003071234 ok"
    masked = mask_text(line)
    assert "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o" not in masked
    assert "13812345678" not in masked and "138****5678" in masked
    assert "410102199003071234" not in masked and "410102********1234" in masked
    assert mask_id("2000000042") == "200***042"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["replies"].update(routine_ack="{ref"), "replies.routine_ack: malformed template (expected '}' "
         "before end of string; write {{ and }} for literal braces)"),
        (lambda d: d["replies"].update(welcome="欢迎}"), "replies.welcome: malformed template (Single '}' encountered "
         "in format string; write {{ and }} for literal braces)"),
        (lambda d: d["replies"].update(critical_ack="{due:%H}"), "replies.critical_ack: malformed template (Invalid "
         "format specifier '%H' for object of type 'str')"),
        (lambda d: d["replies"].update(media_ack="{kind.upper}"), "replies.media_ack: unknown placeholder(s) "
         "['kind.upper']; placeholders are {bureau}, {ref}, {due}, {department}, {kind}, {answer}"),
        (lambda d: d["escalation"].update(reminders_at=[1.5]),
         "escalation.reminders_at: each fraction must be between 0 and 1"),
        (lambda d: d["escalation"].update(rungs=[]), "escalation.rungs: at least one rung is needed"),
        (lambda d: d["escalation"].update(critical_start_rung=9), "escalation.critical_start_rung: no rung 9"),
    ],
)
def test_a_reply_text_or_ladder_that_cannot_run_is_refused_at_load(tmp_path: Path, change, message: str) -> None:
    data = shipped()
    change(data)
    path = write(tmp_path, data)
    with pytest.raises(ConfigError) as info:
        load_settings(path, env=TEST_ENV, channels=False)
    assert str(info.value) == f"{path}: {message}"


def test_literal_braces_and_format_specs_in_a_reply_text_are_fine(tmp_path: Path) -> None:
    data = shipped()
    data["replies"]["routine_ack"] = "留言{ref:>8}已登记 {{编号}}"
    settings = load_settings(write(tmp_path, data), env=TEST_ENV, channels=False)
    assert settings.file.replies.routine_ack == "留言{ref:>8}已登记 {{编号}}"
