"""The gateway's settings: without GATEWAY_ENV it runs as prod and refuses the public development secret."""

import pytest
from gateway.settings import DEV_SECRET, Settings
from pydantic import ValidationError


def test_a_deployment_that_forgets_the_env_is_prod_and_refuses_the_dev_secret(monkeypatch, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env file
    for name in ("GATEWAY_ENV", "GATEWAY_JWT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValidationError, match="development default"):
        Settings()
    assert Settings(jwt_secret="x" * 40).env == "prod"


def test_dev_and_test_accept_the_dev_secret_when_said_explicitly(monkeypatch) -> None:
    monkeypatch.setenv("GATEWAY_ENV", "dev")
    assert Settings().jwt_secret == DEV_SECRET
    assert Settings(env="test").env == "test"
