"""Apply the numbered SQL migrations in postgres/migrations, once each, in order.

Safe to run twice and from several processes at once (an advisory lock serialises them).
Used by the launcher, by the portal at boot and by `flask --app octopus_portal init-db`
(which the Docker image runs), and by the tests: one runner for every path.
"""
import os
import re
import time
from pathlib import Path

import psycopg

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "postgres" / "migrations"
MIGRATION_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")
LOCK_KEY = 0x0C7090  # any constant shared by every runner of this schema


def migrations_dir():
    """Where the migration files are: OCTOPUS_MIGRATIONS_DIR or the repository's folder."""
    return Path(os.environ.get("OCTOPUS_MIGRATIONS_DIR", DEFAULT_DIR))


def pending_files(directory):
    """The migration files in order, checked for well-formed, unique numbers."""
    files = sorted(p for p in Path(directory).iterdir() if p.suffix == ".sql")
    seen = {}
    for path in files:
        match = MIGRATION_NAME.match(path.name)
        if not match:
            raise ValueError(f"{path}: migration files are named NNN_lower_case_name.sql")
        version = int(match.group(1))
        if version in seen:
            raise ValueError(f"{path} and {seen[version]} share the number {version:03d}")
        seen[version] = path
    return [(v, seen[v]) for v in sorted(seen)]


def migrate(conninfo="", directory=None, log=print):
    """Apply every migration not yet recorded in schema_migrations; return their numbers."""
    applied = []
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
            for version, path in pending_files(directory or migrations_dir()):
                if version in done:
                    continue
                with conn.transaction():
                    conn.execute(path.read_text())
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                        (version, path.name),
                    )
                log(f"migrations: applied {path.name}")
                applied.append(version)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
    return applied


def migrate_with_retry(conninfo="", timeout=60.0, log=print):
    """migrate(), retrying while the database is still starting (containers, boot)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return migrate(conninfo, log=log)
        except psycopg.OperationalError as exc:
            if time.monotonic() > deadline:
                raise
            log(f"migrations: database not reachable yet ({str(exc).strip()}), retrying")
            time.sleep(1)

