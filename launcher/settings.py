"""Octopus's configuration: `.env`, generated from `.env.example` on first run, under the environment."""
import os
import secrets
from pathlib import Path

from dotenv import dotenv_values

# Keys whose empty value in .env.example means "generate one on first run".
SECRET_KEYS = (
    "PGPASSWORD",
    "PG_SUPERUSER_PASSWORD",
    "NODERED_PGPASSWORD",
    "GRAFANA_PGPASSWORD",
    "GRAFANA_ADMIN_PASSWORD",
    "MQTT_NODERED_PASSWORD",
    "MQTT_PORTAL_PASSWORD",
    "MQTT_SIMULATOR_PASSWORD",
    "MQTT_ENROL_PASSWORD",
    "NODERED_ADMIN_PASSWORD",
    "NODERED_CREDENTIAL_SECRET",
    "PORTAL_ADMIN_PASSWORD",
    "PORTAL_SECRET_KEY",
    "METRICS_TOKEN",
)
PG_VARIABLES = ("PGHOST", "PGPORT", "PGDATABASE", "PGUSER", "PGPASSWORD")


def _assignment(key, value):
    """`KEY=value`; a value with a `$` single-quoted, as the operator had to write it: Compose
    reads .env too and would expand `$share` of '$share/octopus-ingest/#' to nothing."""
    if "$" in value and "'" not in value:
        return f"{key}='{value}'"
    return f"{key}={value}"


def _render(example_text, values):
    """.env.example with each `KEY=` line given its value; comments and order kept."""
    lines = []
    for line in example_text.splitlines():
        key = line.split("=", 1)[0].strip()
        if "=" in line and not line.lstrip().startswith("#") and key in values:
            line = _assignment(key, values[key])
        lines.append(line)
    return "\n".join(lines) + "\n"


def generated(example_path):
    """.env.example's settings with every empty secret given a fresh random value."""
    values = {k: v or "" for k, v in dotenv_values(example_path).items()}
    for key in SECRET_KEYS:
        if not values.get(key):
            values[key] = secrets.token_urlsafe(24)
    return values


def ensure_env_file(example_path, env_path, environ=os.environ):
    """Create or complete the .env file; return the list of keys it had to add.

    On first run every secret is generated. When the standard PG* variables are set in the
    environment at that moment, they name an existing server and no local cluster is made.
    Running it again only adds keys that a newer .env.example introduced.
    """
    example_path, env_path = Path(example_path), Path(env_path)
    fresh = generated(example_path)
    current = dotenv_values(env_path) if env_path.exists() else {}
    added = [k for k in fresh if k not in current]
    if not added:
        return added
    values = {**fresh, **current}
    if not current and environ.get("PGHOST"):
        values["OCTOPUS_PG_LOCAL"] = "false"
        values.update({k: environ[k] for k in PG_VARIABLES if environ.get(k)})

    text = _render(example_path.read_text(), values)
    text += "".join(_assignment(k, v) + "\n" for k, v in values.items()
                    if k not in fresh)  # added by hand
    env_path.touch(mode=0o600)
    env_path.write_text(text)
    os.chmod(env_path, 0o600)
    return added


def load(env_path, environ=os.environ):
    """The effective configuration: .env's keys, each overridden by the environment if set there."""
    values = {k: v or "" for k, v in dotenv_values(env_path).items()}
    for key in values:
        if key in environ:
            values[key] = environ[key]
    return values


def flag(value):
    """A yes/no setting: true/yes/1/on, case-insensitive."""
    return str(value).strip().lower() in ("1", "true", "yes", "on")
