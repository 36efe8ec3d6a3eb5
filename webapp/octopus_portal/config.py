"""The portal's settings: read from the environment (names as in .env.example), with defaults."""
import os
from pathlib import Path

# Settings that have a sensible value without any environment. Secrets have none.
DEFAULTS = {
    "PGHOST": "127.0.0.1",
    "PGPORT": 5432,
    "PGDATABASE": "octopus",
    "PGUSER": "octopus",
    "PGPASSWORD": "",
    "MQTT_HOST": "127.0.0.1",
    "MQTT_PORT": 1883,
    "MQTT_PORTAL_USER": "octopus-portal",
    "MQTT_PORTAL_PASSWORD": "",
    # Devices without an account may ask for one through the shared enrolment login and
    # wait in quarantine for an admin (enrolment.py); off unless MQTT_ENROLMENT=true.
    "MQTT_ENROLMENT": False,
    "PORTAL_ADMIN_USER": "admin",
    "PORTAL_ADMIN_PASSWORD": "",
    # Session cookie: never readable by scripts, not sent on cross-site sub-requests.
    # Secure (HTTPS only) is off by default because the portal is served over plain HTTP
    # unless a TLS proxy sits in front; PORTAL_COOKIE_SECURE=true turns it on.
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "SESSION_COOKIE_SECURE": False,
    # Connections to PostgreSQL; pages run short queries, so a few serve many threads.
    "DB_POOL_MIN_SIZE": 1,
    "DB_POOL_MAX_SIZE": 10,
    # Boot tasks; tests switch them off or on as each needs.
    "MIGRATE_AT_START": True,
    "MIGRATE_TIMEOUT": 60.0,
    "LIVE_ENABLED": True,
    # Failed logins allowed per username and address, and per address (any usernames), in
    # Flask-Limiter's notation; then 429 until the window has passed. LOGIN_RATE_LIMIT also
    # counts wrong current passwords per account on /account.
    "LOGIN_RATE_LIMIT": "5 per minute",
    "LOGIN_RATE_LIMIT_PER_ADDRESS": "20 per minute",
    # Modbus device profiles (register maps), shared with Node-RED and the simulator.
    "MODBUS_PROFILES_DIR": str(Path(__file__).resolve().parents[2] / "modbus" / "profiles"),
    # The platform CA's certificate and key, with which devices' client certificates for
    # mutual TLS are issued (certificates.issue_client_certificate). Set by the launcher
    # (var/tls/) and by compose (the certificates volume); empty: client certificates are
    # not available (the operator's own CA verifies them, MQTT_TLS_CAFILE).
    "MQTT_TLS_CA_CERTFILE": "",
    "MQTT_TLS_CA_KEYFILE": "",
    # Node-RED's HTTP address, which /healthz asks (health.py); the launcher and compose set it.
    "NODERED_URL": "http://127.0.0.1:1880",
    # The bearer token a Prometheus scraper may send to /metrics instead of an API key;
    # empty: none (API keys and logins only).
    "METRICS_TOKEN": "",
}

# Read from the environment under the same name (see .env.example).
ENV_KEYS = ("PGHOST", "PGPORT", "PGDATABASE", "PGUSER", "PGPASSWORD",
            "MQTT_HOST", "MQTT_PORT", "MQTT_PORTAL_USER", "MQTT_PORTAL_PASSWORD",
            "PORTAL_ADMIN_USER", "PORTAL_ADMIN_PASSWORD", "MODBUS_PROFILES_DIR",
            "LOGIN_RATE_LIMIT", "LOGIN_RATE_LIMIT_PER_ADDRESS",
            "MQTT_TLS_CA_CERTFILE", "MQTT_TLS_CA_KEYFILE", "NODERED_URL", "METRICS_TOKEN")
INTEGER_KEYS = ("PGPORT", "MQTT_PORT")


class ConfigError(RuntimeError):
    """A setting is missing or malformed; the message names it and says what to do."""


def _flag(name, value):
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"{name}={value!r}: expected true or false")


def from_environ(environ=os.environ):
    """The settings for a real run: DEFAULTS overridden by the environment."""
    config = dict(DEFAULTS)
    config.update({key: environ[key] for key in ENV_KEYS if key in environ})
    config["SECRET_KEY"] = environ.get("PORTAL_SECRET_KEY", "")
    config["SESSION_COOKIE_SECURE"] = _flag("PORTAL_COOKIE_SECURE",
                                            environ.get("PORTAL_COOKIE_SECURE", "false"))
    config["MQTT_ENROLMENT"] = _flag("MQTT_ENROLMENT", environ.get("MQTT_ENROLMENT", "false"))
    return config


METRICS_TOKEN_MIN_CHARS = 16


def check_metrics_settings(config):
    """NODERED_URL is an http(s) address; METRICS_TOKEN, if set, is long enough to be a secret."""
    config["NODERED_URL"] = (config.get("NODERED_URL") or DEFAULTS["NODERED_URL"]).rstrip("/")
    if not str(config["NODERED_URL"]).startswith(("http://", "https://")):
        raise ConfigError(f"NODERED_URL={config['NODERED_URL']!r}: expected Node-RED's address, "
                          "e.g. http://127.0.0.1:1880")
    token = config["METRICS_TOKEN"]
    if token and len(token) < METRICS_TOKEN_MIN_CHARS:
        raise ConfigError(f"METRICS_TOKEN is {len(token)} characters long: a scrape token must "
                          f"be at least {METRICS_TOKEN_MIN_CHARS} random characters (`./octopus "
                          "up` writes one into .env), or empty for none")


def validate(config):
    """Check and normalise a settings mapping in place; raise ConfigError on a bad value."""
    if not config.get("SECRET_KEY") and not config.get("TESTING"):
        raise ConfigError("PORTAL_SECRET_KEY is not set: the portal signs its session cookies "
                          "with it. Set it to a long random string (`./octopus up` writes one "
                          "into .env), e.g. the output of python3 -c 'import secrets; "
                          "print(secrets.token_urlsafe(32))'")
    for key in INTEGER_KEYS:
        try:
            config[key] = int(config[key])
        except (TypeError, ValueError):
            raise ConfigError(f"{key}={config[key]!r}: expected a port number") from None
        if not 0 < config[key] < 65536:
            raise ConfigError(f"{key}={config[key]}: expected a port number (1-65535)")
    check_metrics_settings(config)
    return config
