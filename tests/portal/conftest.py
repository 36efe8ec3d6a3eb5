"""Portal fixtures: an app on a fresh real database and its clients (the broker, when a
test needs one, is the shared `mqtt_broker` fixture)."""
import pytest

from octopus_portal import create_app, shutdown

from .helpers import ADMIN_PASSWORD, ADMIN_USER, login


def portal_config(db, **overrides):
    """A test config for create_app(): the given database, no MQTT unless asked."""
    config = {
        "TESTING": True,
        "SECRET_KEY": "test-secret-key",
        "PGHOST": db["host"], "PGPORT": db["port"], "PGDATABASE": db["dbname"],
        "PGUSER": db["user"], "PGPASSWORD": db["password"],
        "PORTAL_ADMIN_USER": ADMIN_USER, "PORTAL_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "LIVE_ENABLED": False,
    }
    config.update(overrides)
    return config


@pytest.fixture
def make_app(fresh_db):
    """Build apps on the test's database (shut down afterwards): make_app(**config_overrides)."""
    apps = []

    def make(**overrides):
        app = create_app(portal_config(fresh_db, **overrides))
        apps.append(app)
        return app

    yield make
    for app in apps:
        shutdown(app)


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def logged_in(client):
    """The test client, logged in as the first admin."""
    response = login(client)
    assert response.status_code == 302, response.get_data(as_text=True)
    return client


@pytest.fixture
def db(fresh_db):
    """A direct connection to the test's database, to insert data and check what was stored."""
    import psycopg
    from psycopg.rows import dict_row
    with psycopg.connect(**fresh_db, autocommit=True, row_factory=dict_row) as conn:
        yield conn
