"""A PostgreSQL cluster in a project-local folder, and the Octopus role and database in it."""
import glob
import os
import pwd
import shutil
import tempfile
from pathlib import Path

import psycopg
from psycopg import sql

SUPERUSER = "postgres"
# NOLOGIN group roles that migration 010 grants to (postgres/migrations/010_database_roles.sql):
# what Node-RED's flows may do, and read-only access to the measurement data (dashboards).
FLOWS_GROUP = "octopus_flows"
READER_GROUP = "octopus_reader"


def server_bindir():
    """The newest PostgreSQL server binaries installed (Debian keeps them out of PATH)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"),
                   key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("postgres")
    if on_path:
        return Path(on_path).resolve().parent
    raise RuntimeError("PostgreSQL server not found: install Debian's postgresql package "
                       "(`./octopus up` does), or set OCTOPUS_PG_LOCAL=false and PG* for a server")


def run_as():
    """PostgreSQL refuses to run as root: as root, run it as the `postgres` system user."""
    if os.geteuid() != 0:
        return {}
    try:
        pwd.getpwnam(SUPERUSER)
    except KeyError:
        raise RuntimeError("running as root needs the `postgres` system user, which Debian's "
                           "postgresql package creates") from None
    return {"user": SUPERUSER, "group": SUPERUSER, "extra_groups": []}


class LocalCluster:
    """A cluster in `datadir`, listening on `bind:port` over TCP only, password auth everywhere."""

    def __init__(self, datadir, port, bind, superuser_password):
        self.datadir = Path(datadir)
        self.port = int(port)
        self.bind = bind
        self.superuser_password = superuser_password
        self.bindir = server_bindir()

    def initdb_command(self, pwfile):
        return [str(self.bindir / "initdb"), "-D", str(self.datadir), "-U", SUPERUSER,
                f"--pwfile={pwfile}", "--auth=scram-sha-256", "-E", "UTF8",
                "--locale=C.UTF-8"]

    def initialized(self):
        return (self.datadir / "PG_VERSION").exists()

    def prepare(self, run):
        """Create the cluster on first run (`run(argv, **popen_kwargs)` runs a command)."""
        if self.initialized():
            return False
        self.datadir.mkdir(parents=True, exist_ok=True)
        owner = run_as()
        if owner:
            shutil.chown(self.datadir, owner["user"], owner["group"])
        os.chmod(self.datadir, 0o700)
        with tempfile.NamedTemporaryFile("w", suffix=".pw", delete=False) as f:
            f.write(self.superuser_password + "\n")
        try:
            if owner:
                shutil.chown(f.name, owner["user"], owner["group"])
            run(self.initdb_command(f.name), **owner)
        finally:
            os.unlink(f.name)
        return True

    def server_command(self):
        # No Unix socket: the data folder may sit where the server user cannot create one,
        # and every client here speaks TCP anyway.
        return [str(self.bindir / "postgres"), "-D", str(self.datadir), "-p", str(self.port),
                "-c", f"listen_addresses={self.bind}", "-c", "unix_socket_directories=",
                "-c", "log_line_prefix=%m [%p] ", "-c", "log_min_messages=warning"]

    def superuser_conninfo(self, dbname="postgres"):
        return psycopg.conninfo.make_conninfo(
            host=self.bind, port=self.port, user=SUPERUSER,
            password=self.superuser_password, dbname=dbname, connect_timeout=3)


def ensure_role_and_database(superuser_conninfo, user, password, database):
    """Create (or re-password) the application role and its database; safe to run twice."""
    with psycopg.connect(superuser_conninfo, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (user,)).fetchone()
        verb = "ALTER" if exists else "CREATE"
        # Role DDL takes no bind parameters; the password goes in as a quoted literal.
        conn.execute(sql.SQL("{} ROLE {} LOGIN PASSWORD {}").format(
            sql.SQL(verb), sql.Identifier(user), sql.Literal(password)))
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                            (database,)).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(database), sql.Identifier(user)))


def ensure_platform_roles(superuser_conninfo, logins, statement_timeouts=None):
    """The group roles of migration 010 and the login roles that are their members.

    `logins` maps a login role's name to (password, group); `statement_timeouts` a login
    role's name to its statement_timeout ('30s'; '0': none). Safe to run twice: a
    missing role is made, an existing one gets the password and the timeout again (so a
    changed .env applies). Run before the migrations, which grant to the groups.
    """
    with psycopg.connect(superuser_conninfo, autocommit=True) as conn:
        for group in (FLOWS_GROUP, READER_GROUP):
            if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (group,)).fetchone():
                conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(group)))
        for user, (password, group) in logins.items():
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (user,)).fetchone()
            verb = "ALTER" if exists else "CREATE"
            conn.execute(sql.SQL("{} ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {}")
                         .format(sql.SQL(verb), sql.Identifier(user), sql.Literal(password)))
            conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(group),
                                                          sql.Identifier(user)))
        for user, timeout in (statement_timeouts or {}).items():
            if timeout == "0":
                conn.execute(sql.SQL("ALTER ROLE {} RESET statement_timeout")
                             .format(sql.Identifier(user)))
            else:  # PostgreSQL refuses a value it cannot read, with the reason
                conn.execute(sql.SQL("ALTER ROLE {} SET statement_timeout = {}")
                             .format(sql.Identifier(user), sql.Literal(timeout)))
