"""The .env file: generated once with secrets, completed later, never overwritten."""
import os

from dotenv import dotenv_values

from launcher import settings
from tests.helpers import ROOT

EXAMPLE = ROOT / ".env.example"


def test_first_run_generates_every_secret_privately(tmp_path):
    env = tmp_path / ".env"
    added = settings.ensure_env_file(EXAMPLE, env, environ={})
    values = dotenv_values(env)
    assert set(added) == set(dotenv_values(EXAMPLE))
    for key in settings.SECRET_KEYS:
        assert len(values[key]) >= 24, key
    assert len({values[k] for k in settings.SECRET_KEYS}) == len(settings.SECRET_KEYS)
    assert os.stat(env).st_mode & 0o777 == 0o600
    assert values["OCTOPUS_PG_LOCAL"] == "true"


def test_second_run_changes_nothing(tmp_path):
    env = tmp_path / ".env"
    settings.ensure_env_file(EXAMPLE, env, environ={})
    before = env.read_text()
    assert settings.ensure_env_file(EXAMPLE, env, environ={}) == []
    assert env.read_text() == before


def test_keys_missing_from_an_older_file_are_added_and_hand_edits_kept(tmp_path):
    env = tmp_path / ".env"
    env.write_text("PGPASSWORD=kept\nMY_OWN=1\n")
    added = settings.ensure_env_file(EXAMPLE, env, environ={})
    values = dotenv_values(env)
    assert "PGPASSWORD" not in added and values["PGPASSWORD"] == "kept"
    assert values["MY_OWN"] == "1" and values["PORTAL_SECRET_KEY"]


def test_a_shared_subscription_stays_single_quoted_when_the_file_is_completed(tmp_path):
    """Compose expands `$share` in an unquoted .env value: the quotes must survive."""
    env = tmp_path / ".env"
    env.write_text("INGEST_SUBSCRIPTION='$share/octopus-ingest/#'\nMY_OWN='$x'\n")
    settings.ensure_env_file(EXAMPLE, env, environ={})
    text = env.read_text()
    assert "INGEST_SUBSCRIPTION='$share/octopus-ingest/#'\n" in text
    assert "MY_OWN='$x'\n" in text
    assert dotenv_values(env)["INGEST_SUBSCRIPTION"] == "$share/octopus-ingest/#"


def test_pg_variables_in_the_environment_name_an_external_server(tmp_path):
    env = tmp_path / ".env"
    settings.ensure_env_file(EXAMPLE, env, environ={"PGHOST": "db.example", "PGPASSWORD": "x"})
    values = dotenv_values(env)
    assert values["OCTOPUS_PG_LOCAL"] == "false"
    assert (values["PGHOST"], values["PGPASSWORD"]) == ("db.example", "x")


def test_environment_overrides_the_file(tmp_path):
    env = tmp_path / ".env"
    settings.ensure_env_file(EXAMPLE, env, environ={})
    assert settings.load(env, environ={"PORTAL_PORT": "5999"})["PORTAL_PORT"] == "5999"
