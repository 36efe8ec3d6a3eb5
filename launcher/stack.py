"""The whole native platform: what runs, in which order, with which environment."""
import contextlib
import os
import shutil
import signal
import socket
import sys
import urllib.error
import urllib.request
from pathlib import Path

from . import mosquitto, postgres, settings
from .processes import Supervisor
from .settings import flag

ROOT = Path(__file__).resolve().parents[1]
SERVICE_PORTS = ("MQTT_PORT", "MQTT_WS_PORT", "MQTT_TLS_PORT", "MQTT_WSS_PORT", "NODERED_PORT",
                 "PORTAL_PORT", "PGPORT", "MODBUS_SIM_PORT")


def free_ports(count):
    """`count` different TCP ports nobody listens on right now (the OS picks them). All are
    held while they are picked: picked one at a time, the OS may hand out a port it has just
    handed out (it did: Mosquitto got one port for two listeners and would not start)."""
    with contextlib.ExitStack() as held:
        socks = [held.enter_context(socket.socket()) for _ in range(count)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]


def free_port():
    """A TCP port nobody listens on right now (the OS picks it)."""
    return free_ports(1)[0]


def isolated_config():
    """A first-run configuration (fresh secrets) on free loopback ports: for a platform that
    runs beside another one on the same machine, as the tests and the benchmark do."""
    config = settings.generated(ROOT / ".env.example")
    config["OCTOPUS_BIND"] = "127.0.0.1"
    config.update(zip(SERVICE_PORTS, map(str, free_ports(len(SERVICE_PORTS)))))
    return config


def reachable_host(bind):
    """Where a local client connects to a service bound to `bind`."""
    return "127.0.0.1" if bind in ("0.0.0.0", "", "*") else bind  # nosec B104  # binds nothing


def port_open(host, port):
    with socket.create_connection((host, int(port)), timeout=1):
        return True


def http_status(url):
    """The HTTP status code of a GET, 4xx and 5xx included."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # nosec B310  # our own http URLs
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


class Stack:
    """Mosquitto, PostgreSQL (local, unless an external server is configured), Node-RED,
    the portal and the demo simulators, with state under `state_dir`."""

    def __init__(self, config, state_dir=ROOT / "var", echo=None):
        self.config = dict(config)
        self.state_dir = Path(state_dir)
        self.supervisor = Supervisor(self.state_dir / "log", echo=echo)
        self.host = reachable_host(self.config["OCTOPUS_BIND"])
        self.pg = None
        if flag(self.config.get("OCTOPUS_PG_LOCAL", "true")):
            self.pg = postgres.LocalCluster(
                self.state_dir / "postgres", self.config["PGPORT"], self.config["PGHOST"],
                self.config["PG_SUPERUSER_PASSWORD"])

    # -- environment -------------------------------------------------------------------------
    def env(self, **extra):
        env = dict(os.environ)
        env.update(self.config)
        python_path = [str(ROOT / "webapp"), str(ROOT / "simulators"), str(ROOT)]
        env["PYTHONPATH"] = os.pathsep.join(python_path + [env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        env["PYTHONUNBUFFERED"] = "1"
        env.update(extra)
        return env

    def nodered_host(self):
        """Where the editor answers: NODERED_BIND, or OCTOPUS_BIND like the rest."""
        return reachable_host(self.config.get("NODERED_BIND") or self.config["OCTOPUS_BIND"])

    def urls(self):
        host = self.host
        return {
            "portal": f"http://{host}:{self.config['PORTAL_PORT']}/",
            "node-red editor": f"http://{self.nodered_host()}:{self.config['NODERED_PORT']}/",
            "mqtt": f"mqtt://{host}:{self.config['MQTT_PORT']}",
            "mqtt over websocket": f"ws://{host}:{self.config['MQTT_WS_PORT']}",
            "mqtt over tls": f"mqtts://{host}:{self.config['MQTT_TLS_PORT']}",
            "mqtt over wss": f"wss://{host}:{self.config['MQTT_WSS_PORT']}",
            "postgresql": f"postgresql://{self.config['PGUSER']}@{self.config['PGHOST']}:"
                          f"{self.config['PGPORT']}/{self.config['PGDATABASE']}",
        }

    # -- the services, in start order --------------------------------------------------------
    def start_postgres(self):
        sup = self.supervisor
        if self.pg is None:
            return
        self.pg.prepare(sup.run)
        sup.start("postgres", self.pg.server_command(), env=self.env(),
                  stop_signal=signal.SIGINT,  # "fast" shutdown: rolls back, then checkpoints
                  **postgres.run_as())
        sup.wait_ready("postgres", lambda: postgres.psycopg.connect(
            self.pg.superuser_conninfo()).close() or True)
        postgres.ensure_role_and_database(self.pg.superuser_conninfo(), self.config["PGUSER"],
                                          self.config["PGPASSWORD"], self.config["PGDATABASE"])
        postgres.ensure_platform_roles(
            self.pg.superuser_conninfo(), self.database_logins(),
            # empty: the default, as compose's ${GRAFANA_PG_STATEMENT_TIMEOUT:-30s} reads it
            {self.config["GRAFANA_PGUSER"]: self.config["GRAFANA_PG_STATEMENT_TIMEOUT"] or "30s"})

    def database_logins(self):
        """Node-RED's and the dashboards' login roles: {name: (password, group role)}."""
        c = self.config
        logins = {c["NODERED_PGUSER"]: (c["NODERED_PGPASSWORD"], postgres.FLOWS_GROUP),
                  c["GRAFANA_PGUSER"]: (c["GRAFANA_PGPASSWORD"], postgres.READER_GROUP)}
        names = [c["PGUSER"], c["NODERED_PGUSER"], c["GRAFANA_PGUSER"]]
        reserved = {postgres.SUPERUSER, postgres.FLOWS_GROUP, postgres.READER_GROUP}
        if not all(names) or len(set(names)) < 3 or reserved & set(names):
            raise ValueError(f"PGUSER, NODERED_PGUSER and GRAFANA_PGUSER must name three different "
                             f"roles, none of them {', '.join(sorted(reserved))} (they are "
                             f"{', '.join(repr(n) for n in names)})")
        return logins

    def conninfo(self):
        """libpq connection string of the platform's database role."""
        return postgres.psycopg.conninfo.make_conninfo(
            host=self.config["PGHOST"], port=self.config["PGPORT"],
            dbname=self.config["PGDATABASE"], user=self.config["PGUSER"],
            password=self.config["PGPASSWORD"])

    def migrate(self):
        from octopus_portal.migrate import migrate_with_retry  # webapp/ is on PYTHONPATH
        migrate_with_retry(self.conninfo(), log=lambda m: None)

    @property
    def tls_dir(self):
        """The platform CA and the broker's generated certificate (doc/security.md)."""
        return self.state_dir / "tls"

    def start_mosquitto(self):
        conf = mosquitto.prepare(self.state_dir / "mosquitto", self.config, self.tls_dir)
        self.supervisor.start("mosquitto", mosquitto.command(conf), env=self.env())
        # every listener: the TLS ones open last, once their certificates are loaded
        listeners = [self.config[key] for key in mosquitto.LISTENER_SETTINGS.values()]
        self.supervisor.wait_ready(
            "mosquitto", lambda: all(port_open(self.host, port) for port in listeners))

    def start_nodered(self, name="nodered", port=None, client_id=None,
                      settings_file=ROOT / "nodered/settings.js", **env):
        """Start a Node-RED worker; a second one (another `name`, port and MQTT client id)
        joins the same shared subscription and takes its share of the ingest. The benchmark
        passes its own settings file and flow (`NODERED_FLOWS_FILE` in `env`)."""
        user_dir = self.state_dir / name
        user_dir.mkdir(parents=True, exist_ok=True)
        port = port or self.config["NODERED_PORT"]
        env["NODERED_PORT"] = str(port)
        if client_id:
            env["NODERED_MQTT_CLIENT_ID"] = client_id
        node = shutil.which("node") or "node"
        self.supervisor.start(
            name,
            [node, str(ROOT / "nodered/node_modules/node-red/red.js"),
             "--settings", str(settings_file), "--userDir", str(user_dir)],
            env=self.nodered_env(**env), cwd=ROOT / "nodered")
        url = f"http://{self.nodered_host()}:{port}/settings"
        self.supervisor.wait_ready(name, lambda: http_status(url) in (200, 401), 90)

    def nodered_env(self, **extra):
        """Node-RED's environment: the standard PG* variables name its own database role
        (NODERED_PGUSER), and no other component's secret is in it, since any flow can read
        its environment."""
        env = self.env(**{"PGUSER": self.config["NODERED_PGUSER"],
                          "PGPASSWORD": self.config["NODERED_PGPASSWORD"], **extra})
        for key in settings.SECRET_KEYS:
            if key != "PGPASSWORD" and not key.startswith(("NODERED_", "MQTT_NODERED_")):
                env.pop(key, None)
        return env

    def start_portal(self):
        bind = f"{self.config['OCTOPUS_BIND']}:{self.config['PORTAL_PORT']}"
        # One worker: Flask-SocketIO keeps each client's session in that process. gevent's
        # worker: each open WebSocket is a greenlet, not a thread, which halves the CPU of
        # the live view's fan-out (webapp/octopus_portal/concurrency.py); up to 1,000
        # connections at once, browsers and requests together.
        # No control socket: it is one fixed path per user, which a second portal on the
        # same machine (the tests') would fight over, and nothing here uses it.
        self.supervisor.start(
            "portal",
            [sys.executable, "-m", "gunicorn", "--workers", "1", "--worker-class", "gevent",
             "--worker-connections", "1000",
             "--no-control-socket", "--bind", bind, "--access-logfile", "-",
             "octopus_portal:create_app()"],
            # the CA it issues devices' client certificates with; Node-RED for /healthz
            env=self.env(NODERED_URL=self.config.get("NODERED_URL") or
                         f"http://{self.nodered_host()}:{self.config['NODERED_PORT']}",
                         **mosquitto.portal_ca_settings(self.tls_dir, self.config)),
            cwd=ROOT / "webapp")
        url = f"http://{self.host}:{self.config['PORTAL_PORT']}/login"
        self.supervisor.wait_ready("portal", lambda: http_status(url) == 200, 60)

    def start_simulators(self):
        if int(self.config.get("SIM_DEVICES") or 0) > 0:
            self.supervisor.start("simulators",
                                  [sys.executable, "-m", "octopus_simulators.sensors"],
                                  env=self.env(), stop_signal=signal.SIGINT)
        self.start_modbus_simulators()

    def start_modbus_simulators(self):
        """The demo OSM27 reclosers (one port each), registered for polling if they are not
        yet: planta/subestacion/reconectador1, 2, ..."""
        count = int(self.config.get("MODBUS_SIM_DEVICES") or 0)
        if count <= 0:
            return
        base_port = int(self.config["MODBUS_SIM_PORT"])
        host = reachable_host(self.config.get("MODBUS_SIM_HOST", "127.0.0.1"))
        self.supervisor.start("modbus-simulators",
                              [sys.executable, "-m", "octopus_simulators.osm27"],
                              env=self.env(), stop_signal=signal.SIGINT)
        self.supervisor.wait_ready("modbus-simulators",
                                   lambda: port_open(host, base_port + count - 1))
        with postgres.psycopg.connect(self.conninfo(), autocommit=True) as conn:
            for i in range(count):
                conn.execute(
                    "INSERT INTO modbus_devices (site, room, name, host, port, unit_id, profile)"
                    " VALUES ('planta', 'subestacion', %s, %s, %s, 1, 'osm27')"
                    " ON CONFLICT (site, room, name) DO NOTHING",
                    (f"reconectador{i + 1}", host, base_port + i))

    def start(self, simulators=True):
        """Start everything in dependency order; on any failure stop what was started."""
        try:
            self.start_postgres()
            self.migrate()
            self.start_mosquitto()
            self.start_nodered()
            self.start_portal()
            if simulators:
                self.start_simulators()
        except BaseException:
            self.stop()
            raise

    def stop(self):
        self.supervisor.stop_all()
