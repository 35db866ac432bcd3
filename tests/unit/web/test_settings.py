"""The dashboard's settings: without WEB_ENV it runs as prod and refuses the public development storage secret."""

import pytest
from bitfolio_web.settings import DEV_STORAGE_SECRET, Settings
from pydantic import ValidationError


def test_a_dashboard_that_forgets_the_env_is_prod_and_refuses_the_dev_storage_secret(monkeypatch, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env file
    for name in ("WEB_ENV", "WEB_STORAGE_SECRET"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValidationError, match="development default"):
        Settings()
    assert Settings(storage_secret="s" * 40).env == "prod"


def test_dev_and_test_accept_the_dev_storage_secret_when_said_explicitly(monkeypatch) -> None:
    monkeypatch.setenv("WEB_ENV", "dev")
    assert Settings().storage_secret == DEV_STORAGE_SECRET
    assert Settings(env="test").env == "test"
