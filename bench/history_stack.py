"""PostgreSQL alone for the history benchmark, started with the launcher's code in a folder that
may be kept and reused: its configuration (passwords) is saved beside the cluster."""
import json
import shutil
import tempfile
from pathlib import Path

import psycopg
from psycopg.rows import dict_row

from launcher.stack import Stack, free_port, isolated_config

CONFIG_FILE = "bench-config.json"


class DataStack(Stack):
    """Octopus's Stack with only PostgreSQL, state in `folder` (a new temporary one if None);
    the folder is removed by close() unless `keep`."""

    def __init__(self, folder=None, keep=False):
        if folder is None:
            folder = Path(tempfile.mkdtemp(prefix="octopus-bench-history-"))
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o755)   # PostgreSQL runs as its own user
        saved = folder / CONFIG_FILE
        if saved.exists():
            config = json.loads(saved.read_text())
            config["PGPORT"] = str(free_port())   # the port it had may be taken by now
        else:
            config = isolated_config()
            saved.touch(mode=0o600)
            saved.write_text(json.dumps(config, indent=1))
        super().__init__(config, state_dir=folder)
        self.keep = keep

    def conninfo(self, **extra):
        c = self.config
        return psycopg.conninfo.make_conninfo(
            host=c["PGHOST"], port=c["PGPORT"], dbname=c["PGDATABASE"], user=c["PGUSER"],
            password=c["PGPASSWORD"], **extra)

    def connect(self, portal=False):
        """An autocommit connection as the Octopus role; `portal`: rows as dicts, as the
        portal's pool hands them out (webapp/octopus_portal/db.py)."""
        return psycopg.connect(self.conninfo(application_name="octopus-bench-history"),
                               autocommit=True, row_factory=dict_row if portal else None)

    def connect_superuser(self):
        return psycopg.connect(self.pg.superuser_conninfo(), autocommit=True)

    def start(self):
        """PostgreSQL with the launcher's settings, schema migrated."""
        self.start_postgres()
        self.migrate()

    def restart_postgres(self):
        """Stop and start the server: shared buffers and every backend's caches empty (the
        kernel's page cache stays as it is)."""
        self.supervisor.stop("postgres")
        self.start_postgres()

    def postgres_pid(self):
        return self.supervisor.pid("postgres")

    def close(self):
        self.stop()
        if not self.keep:
            shutil.rmtree(self.state_dir, ignore_errors=True)
