"""`./octopus backup [FILE]` and `./octopus restore FILE`: what the platform cannot make again.

One archive (tar, mode 600) holds
* the platform database, `pg_dump -Fc` as its owner (PGUSER): measurements, rollups, the
  device registry, users, API keys, alert rules and alerts, Modbus devices, the audit log,
  the schema's version and the grants of every role;
* the broker's device accounts (the dynamic security plugin's file, var/mosquitto/data);
* the platform CA and the broker's certificate (var/tls), which devices trust and which
  signed their client certificates;
* manifest.json: when, which migrations, and the rows of every table, counted in the very
  snapshot that pg_dump saves, so that a restore proves it got every row back.
Not in it: `.env`, whose secrets are the operator's to keep (a restore sets the database
roles' passwords from the `.env` in use), and flows/, which lives in the repository.
doc/operations.md, "Backup and restore", says how to use it.
"""
import datetime
import io
import json
import os
import shutil
import socket
import subprocess
import tarfile
import tempfile
from pathlib import Path

import psycopg
from psycopg import sql

from . import mosquitto, postgres

FORMAT = 1
MANIFEST = "manifest.json"
DUMP = "octopus.dump"
DYNSEC = mosquitto.DYNSEC_FILE
TLS_FILES = ("ca.crt", "ca.key", "server.crt", "server.key")
PRIVATE = ("ca.key", "server.key", DYNSEC)  # written with mode 600 on restore


class BackupError(RuntimeError):
    """Something the operator must fix; the message says what."""


def pg_tool(name):
    """pg_dump or pg_restore of the newest server installed (Debian keeps them out of PATH),
    so that it is never older than the local cluster."""
    try:
        tool = postgres.server_bindir() / name
        if tool.is_file():
            return str(tool)
    except RuntimeError:
        pass
    found = shutil.which(name)
    if not found:
        raise BackupError(f"{name} not found: install Debian's postgresql-client package")
    return found


def libpq_env(conninfo):
    """The PG* variables of a connection string: the password never on a command line."""
    names = {"host": "PGHOST", "port": "PGPORT", "user": "PGUSER", "password": "PGPASSWORD",
             "dbname": "PGDATABASE", "sslmode": "PGSSLMODE"}
    params = psycopg.conninfo.conninfo_to_dict(conninfo)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update({names[k]: str(v) for k, v in params.items() if k in names and v is not None})
    return env


def run_tool(argv, conninfo):
    result = subprocess.run(argv, env=libpq_env(conninfo), capture_output=True, text=True)
    if result.returncode != 0:
        raise BackupError(f"{Path(argv[0]).name} failed: {result.stderr.strip()[-2000:]}")


def table_rows(conn):
    """{table: rows} of every table of the schema; a partitioned table counts its partitions."""
    tables = [row[0] for row in conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')"
        " AND NOT c.relispartition ORDER BY 1")]
    return {table: conn.execute(sql.SQL("SELECT count(*) FROM {}").format(
        sql.Identifier(table))).fetchone()[0] for table in tables}


def database_settings(conn):
    """The database's own settings (ALTER DATABASE ... SET, e.g. migration 010's jit = off),
    which pg_dump leaves out of a dump of one database."""
    row = conn.execute(
        "SELECT setconfig FROM pg_db_role_setting WHERE setrole = 0 AND setdatabase ="
        " (SELECT oid FROM pg_database WHERE datname = current_database())").fetchone()
    return dict(item.split("=", 1) for item in (row[0] if row else []))


def dump_database(conninfo, target):
    """pg_dump -Fc of the database into `target`; returns the manifest's database part.

    The rows are counted in a snapshot that pg_dump then reads, so they are exactly the
    dump's, even while the platform goes on ingesting."""
    with psycopg.connect(conninfo) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        with conn.transaction():
            snapshot = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
            run_tool([pg_tool("pg_dump"), "--format=custom", "--no-password",
                      f"--snapshot={snapshot}", f"--file={target}"], conninfo)
            rows = table_rows(conn)
            migrations = [r[0] for r in conn.execute(
                "SELECT version FROM schema_migrations ORDER BY 1")]
            settings = database_settings(conn)
            server = conn.execute("SHOW server_version").fetchone()[0]
    return {"rows": rows, "migrations": migrations, "database_settings": settings,
            "server_version": server}


def create(target, conninfo, dynsec_file, tls_dir, log=print):
    """Write the archive `target` (mode 600, complete or not at all); return its manifest."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="octopus-backup-") as work:
        dump = Path(work) / DUMP
        manifest = {"format": FORMAT,
                    "created_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
                    "database": dump_database(conninfo, dump), "files": []}
        members = [(DUMP, dump)]
        if Path(dynsec_file).is_file():
            members.append((DYNSEC, Path(dynsec_file)))
        members += [(f"tls/{name}", Path(tls_dir) / name) for name in TLS_FILES
                    if (Path(tls_dir) / name).is_file()]
        manifest["files"] = [name for name, _ in members]
        partial = target.with_name(target.name + ".partial")
        partial.unlink(missing_ok=True)
        partial.touch(mode=0o600)
        try:
            with tarfile.open(partial, "w") as tar:
                data = json.dumps(manifest, indent=2).encode()
                info = tarfile.TarInfo(MANIFEST)
                info.size, info.mode = len(data), 0o600
                tar.addfile(info, io.BytesIO(data))
                for name, path in members:
                    tar.add(path, arcname=name, recursive=False)
            os.chmod(partial, 0o600)
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)  # only left when something failed
    rows = manifest["database"]["rows"]
    files = ", ".join(manifest["files"][1:]) or "no broker or TLS files"
    log(f"backup: {target} ({target.stat().st_size:,} bytes): {len(rows)} tables, "
        f"{sum(rows.values()):,} rows; {files}")
    return manifest


def open_archive(path, work):
    """The manifest of the archive `path`, its known members extracted into `work`."""
    try:
        tar = tarfile.open(path, "r")
    except (OSError, tarfile.TarError) as exc:
        raise BackupError(f"{path}: not an Octopus backup ({exc})") from None
    with tar:
        names = tar.getnames()
        if MANIFEST not in names:
            raise BackupError(f"{path}: not an Octopus backup (no {MANIFEST})")
        manifest = json.load(tar.extractfile(MANIFEST))
        if manifest.get("format") != FORMAT:
            raise BackupError(f"{path}: backup format {manifest.get('format')}, this version "
                              f"reads {FORMAT}")
        # only the members the manifest names, each to a path of our own choosing
        for name in manifest["files"]:
            if name not in names or name not in (DUMP, DYNSEC, *(f"tls/{n}" for n in TLS_FILES)):
                raise BackupError(f"{path}: unexpected or missing member {name}")
            out = Path(work) / name
            out.parent.mkdir(parents=True, exist_ok=True)
            out.touch(mode=0o600)
            with tar.extractfile(name) as source, open(out, "wb") as sink:
                shutil.copyfileobj(source, sink)
    return manifest


def is_empty(conninfo):
    """True when the database has no table, view, sequence or function of anyone's."""
    with psycopg.connect(conninfo) as conn:
        return not conn.execute(
            "SELECT EXISTS (SELECT FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')"
            " AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%')"
            " OR EXISTS (SELECT FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
            " WHERE n.nspname NOT IN ('pg_catalog', 'information_schema'))").fetchone()[0]


def restore_database(dump, manifest, conninfo, log=print):
    """pg_restore `dump` into the empty database of `conninfo` (as its owner), in one
    transaction; then the database's settings, a check of every table's rows against the
    manifest, and the migrations a newer Octopus adds. Returns the migrations applied."""
    if not is_empty(conninfo):
        raise BackupError("the database is not empty: restore into a new, empty one")
    run_tool([pg_tool("pg_restore"), "--single-transaction", "--exit-on-error",
              "--no-password", f"--dbname={psycopg.conninfo.conninfo_to_dict(conninfo)['dbname']}",
              str(dump)], conninfo)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        for name, value in manifest["database"]["database_settings"].items():
            conn.execute(sql.SQL("ALTER DATABASE {} SET {} = {}").format(
                sql.Identifier(conn.info.dbname), sql.Identifier(name), sql.Literal(value)))
        rows = table_rows(conn)
    expected = manifest["database"]["rows"]
    if rows != expected:
        wrong = {t: (expected.get(t), rows.get(t)) for t in expected.keys() | rows.keys()
                 if expected.get(t) != rows.get(t)}
        raise BackupError(f"restored rows differ from the backup's (table: backup, restored): "
                          f"{wrong}")
    log(f"restore: database {conninfo_to_name(conninfo)}: {len(rows)} tables, "
        f"{sum(rows.values()):,} rows, as in the backup")
    from octopus_portal.migrate import migrate  # webapp/ is on PYTHONPATH
    return migrate(conninfo, log=lambda message: log(f"restore: {message}"))


def conninfo_to_name(conninfo):
    return psycopg.conninfo.conninfo_to_dict(conninfo).get("dbname")


def restore_files(work, manifest, dynsec_file, tls_dir, log=print):
    """The broker's device accounts and the TLS files, put back where they are read."""
    for name in manifest["files"]:
        if name == DUMP:
            continue
        target = Path(dynsec_file) if name == DYNSEC else Path(tls_dir) / Path(name).name
        target.parent.mkdir(parents=True, exist_ok=True)
        mode = 0o600 if target.name in PRIVATE else 0o644
        target.unlink(missing_ok=True)
        target.touch(mode=mode)
        target.write_bytes((Path(work) / name).read_bytes())
        log(f"restore: {target}")


# -- the commands (launcher/__main__.py) -------------------------------------------------------

def default_file(state_dir):
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return Path(state_dir) / "backups" / f"octopus-{stamp}.tar"


def listening(host, port):
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            return True
    except OSError:
        return False


def native_paths(stack):
    """Where the native broker keeps its device accounts, and the platform's TLS folder."""
    return stack.state_dir / "mosquitto" / "data" / DYNSEC, stack.tls_dir


def backup_command(stack, file=None, log=print):
    """Back up the platform of `stack` (launcher.stack.Stack). Online while `./octopus up`
    runs; a stopped local cluster is started for the backup and stopped again."""
    config = stack.config
    started = False
    if stack.pg is not None and not listening(config["PGHOST"], config["PGPORT"]):
        stack.start_postgres()
        started = True
    try:
        return create(file or default_file(stack.state_dir), stack.conninfo(),
                      *native_paths(stack), log=log)
    finally:
        if started:
            stack.stop()


def restore_command(stack, file, log=print):
    """Replace the platform's database, device accounts and TLS files with the backup's.

    The platform must be stopped. The local cluster (made first on a new machine, with the
    roles of the .env in use) gets the database dropped and made again; an external server's
    database must be empty (its administrator makes it again)."""
    config = stack.config
    if stack.pg is not None and listening(config["PGHOST"], config["PGPORT"]):
        raise BackupError(f"PostgreSQL answers on {config['PGHOST']}:{config['PGPORT']}: stop "
                          f"Octopus (Ctrl-C on `./octopus up`) before a restore")
    if listening(stack.host, config["MQTT_PORT"]):
        raise BackupError(f"Mosquitto answers on {stack.host}:{config['MQTT_PORT']}: stop "
                          f"Octopus first (a running broker would write its device accounts "
                          f"over the restored ones)")
    with tempfile.TemporaryDirectory(prefix="octopus-restore-") as work:
        manifest = open_archive(file, work)
        log(f"restore: {file}, made {manifest['created_at']}")
        try:
            if stack.pg is not None:
                stack.start_postgres()
                database, owner = config["PGDATABASE"], config["PGUSER"]
                with psycopg.connect(stack.pg.superuser_conninfo(), autocommit=True) as conn:
                    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(database)))
                    conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
                        sql.Identifier(database), sql.Identifier(owner)))
            elif not is_empty(stack.conninfo()):
                raise BackupError(
                    f"database {config['PGDATABASE']} on {config['PGHOST']} is not empty. Its "
                    f"administrator makes it again, empty: DROP DATABASE "
                    f"{config['PGDATABASE']}; CREATE DATABASE {config['PGDATABASE']} OWNER "
                    f"{config['PGUSER']}; (doc/operations.md, \"Backup and restore\")")
            applied = restore_database(Path(work) / DUMP, manifest, stack.conninfo(), log=log)
        finally:
            stack.stop()
        restore_files(work, manifest, *native_paths(stack), log=log)
    if applied:
        log(f"restore: the backup was older than this version: applied migrations {applied}")
    return manifest
