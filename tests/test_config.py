"""Configuration precedence, sources, secrets, production refusal."""

from __future__ import annotations

import os
import stat

import pytest
from pydantic import ValidationError

from ainfluencer.config import ConfigError, Settings, check_production, describe_sources, signing_secret
from ainfluencer.services.secrets import generate_key


def test_precedence_env_over_file_over_default(tmp_path, monkeypatch):
    cfg = tmp_path / "config.toml"
    cfg.write_text('port = 9001\nlog_level = "DEBUG"\n')
    monkeypatch.setenv("AINF_CONFIG_FILE", str(cfg))
    monkeypatch.setenv("AINF_PORT", "9002")
    settings = Settings()
    assert settings.port == 9002 and settings.log_level == "DEBUG" and settings.session_days == 14
    sources = {row["name"]: row["source"] for row in describe_sources(settings)}
    assert sources["port"] == "environment"
    assert sources["log_level"] == "file"
    assert sources["session_days"] == "default"


def test_data_dir_config_file_is_found(tmp_path, monkeypatch):
    (tmp_path / "config.toml").write_text("[ainfluencer]\nworker_concurrency = 7\n")
    monkeypatch.setenv("AINF_DATA_DIR", str(tmp_path))
    assert Settings().worker_concurrency == 7


def test_bad_config_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("AINF_BACKUP_CRON", "every tuesday")
    with pytest.raises(ValidationError, match="not a valid cron"):
        Settings()
    monkeypatch.delenv("AINF_BACKUP_CRON")
    bad = tmp_path / "bad.toml"
    bad.write_text("port = = 1")
    monkeypatch.setenv("AINF_CONFIG_FILE", str(bad))
    with pytest.raises(ConfigError, match="not valid TOML"):
        Settings()


def test_secrets_are_masked_in_sources(monkeypatch):
    monkeypatch.setenv("AINF_SMTP_PASSWORD", "hunter2-very-secret")
    rows = describe_sources(Settings())
    shown = {r["name"]: r["value"] for r in rows}
    assert "hunter2" not in str(rows)
    assert shown["smtp_password"] == "•••••• (set)"


def test_generated_secret_key_file_mode(tmp_path):
    settings = Settings(data_dir=tmp_path)
    first = signing_secret(settings)
    assert first == signing_secret(settings)
    assert stat.S_IMODE(os.stat(tmp_path / "secret_key").st_mode) == 0o600


def test_production_refuses_default_secrets(tmp_path):
    with pytest.raises(ConfigError, match="AINF_SECRET_KEY"):
        check_production(Settings(env="production", data_dir=tmp_path))
    with pytest.raises(ConfigError, match="AINF_SECRET_KEY"):
        check_production(Settings(env="production", data_dir=tmp_path, secret_key="change-me"))
    with pytest.raises(ConfigError, match="AINF_ENCRYPTION_KEY"):
        check_production(Settings(env="production", data_dir=tmp_path, secret_key="x" * 40))
    check_production(Settings(env="production", data_dir=tmp_path, secret_key="x" * 40,
                              encryption_key=generate_key()))


def test_postgres_url_normalised():
    assert Settings(database_url="postgresql://u@h/db").effective_database_url.startswith("postgresql+psycopg://")
    assert Settings(redis_url="redis://x").effective_executor == "celery"
    assert Settings().effective_executor == "embedded"
