"""PostgreSQL access: one connection pool per app, one pooled connection per request on `g`,
and the keyset paging (by id, newest first) of the lists that page back."""
import re

import click
import psycopg
from flask import current_app, g
from flask.cli import with_appcontext
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from .migrate import migrate_with_retry

POOL = "octopus_db_pool"  # key in app.extensions


def conninfo(config):
    """The libpq connection string named by the PG* settings."""
    params = {"host": config["PGHOST"], "port": config["PGPORT"],
              "dbname": config["PGDATABASE"], "user": config["PGUSER"],
              "password": config["PGPASSWORD"], "application_name": "octopus-portal"}
    # An empty value is left out, so that libpq's own defaults (~/.pgpass, ...) still apply.
    return psycopg.conninfo.make_conninfo(
        **{key: value for key, value in params.items() if value not in ("", None)})


def migrate_database(app):
    """Apply pending migrations, waiting for the database while it starts."""
    return migrate_with_retry(conninfo(app.config), timeout=app.config["MIGRATE_TIMEOUT"],
                              log=app.logger.info)


def get_db():
    """This request's database connection (autocommit; use conn.transaction() to write)."""
    if "db" not in g:
        g.db = current_app.extensions[POOL].getconn()
    return g.db


def close_db(exc=None):
    """Give the request's connection back to the pool."""
    conn = g.pop("db", None)
    if conn is not None:
        current_app.extensions[POOL].putconn(conn)


def close_pool(app):
    """Close every pooled connection (tests, shutdown)."""
    pool = app.extensions.pop(POOL, None)
    if pool is not None:
        pool.close()


@click.command("init-db")
@with_appcontext
def init_db_command():
    """Apply the database migrations (safe to run again)."""
    applied = migrate_database(current_app)
    click.echo(f"migrations: {len(applied)} applied, schema up to date")


def init_app(app):
    """Open the app's pool and register the teardown and the CLI command."""
    pool = ConnectionPool(
        conninfo(app.config), name="octopus-portal",
        min_size=app.config["DB_POOL_MIN_SIZE"], max_size=app.config["DB_POOL_MAX_SIZE"],
        # autocommit: a page's SELECT leaves no transaction open on a pooled connection
        kwargs={"autocommit": True, "row_factory": dict_row},
        # a connection broken by a database restart is replaced instead of failing a page
        check=ConnectionPool.check_connection,
        open=False)
    pool.open(wait=False)
    app.extensions[POOL] = pool
    app.teardown_appcontext(close_db)
    app.cli.add_command(init_db_command)


def page_start(text):
    """The id of a page's "older" link (its `before`); anything else: None, the newest page."""
    return int(text) if re.fullmatch(r"[0-9]{1,18}", text) else None


def first_page(rows, limit):
    """Keyset paging by id, newest first: of `rows` fetched with LIMIT `limit` + 1, (the
    first `limit`, the id the next page starts below, or None if there is no next page)."""
    page = rows[:limit]
    return page, page[-1]["id"] if len(rows) > limit else None
