"""Settings from the environment, and the init-db command."""
import pytest

from octopus_portal import config, create_app


def test_secret_key_is_required_outside_tests(monkeypatch):
    monkeypatch.delenv("PORTAL_SECRET_KEY", raising=False)
    with pytest.raises(config.ConfigError, match="PORTAL_SECRET_KEY is not set"):
        create_app()


def test_settings_come_from_the_env_example_names():
    settings = config.validate(config.from_environ({
        "PORTAL_SECRET_KEY": "s", "PGHOST": "db.example", "PGPORT": "6543",
        "MQTT_HOST": "broker", "MQTT_PORT": "1884", "MQTT_PORTAL_USER": "u",
        "MQTT_PORTAL_PASSWORD": "p", "PORTAL_ADMIN_USER": "root", "PORTAL_ADMIN_PASSWORD": "pw"}))
    assert settings["SECRET_KEY"] == "s"
    assert (settings["PGHOST"], settings["PGPORT"]) == ("db.example", 6543)
    assert (settings["MQTT_HOST"], settings["MQTT_PORT"]) == ("broker", 1884)
    assert (settings["MQTT_PORTAL_USER"], settings["MQTT_PORTAL_PASSWORD"]) == ("u", "p")
    assert (settings["PORTAL_ADMIN_USER"], settings["PORTAL_ADMIN_PASSWORD"]) == ("root", "pw")
    assert settings["LIVE_ENABLED"] and settings["MIGRATE_AT_START"]


@pytest.mark.parametrize("key,value", [("MQTT_PORT", "abc"), ("PGPORT", "70000")])
def test_a_bad_port_is_named(key, value):
    with pytest.raises(config.ConfigError, match=key):
        config.validate(config.from_environ({"PORTAL_SECRET_KEY": "s", key: value}))


def test_init_db_command_applies_migrations(runner):
    result = runner.invoke(args=["init-db"])
    assert result.exit_code == 0, result.output
    assert "schema up to date" in result.output
