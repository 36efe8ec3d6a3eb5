"""Octopus portal: devices, live values, rejects, alerts, behind a login (Flask-SocketIO)."""
import logging

import click
from flask import Flask

from . import (account, alert_channels, alert_rules, alerts, api, audit, auth, charts,
               commands, concurrency, config, db, device_accounts, devices, health, keys, live,
               metrics, modbus, rejects, system, users)
from .extensions import csrf, socketio

__all__ = ["create_app", "shutdown", "socketio"]

# Sent with every response: no framing, no MIME sniffing, scripts and styles from this site
# only ('self' covers the Socket.IO WebSocket on the same host).
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; "
                               "base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


def create_app(test_config=None):
    """The portal app: settings from the environment, or `test_config` (a mapping) in tests."""
    app = Flask(__name__)
    settings = config.from_environ() if test_config is None else {**config.DEFAULTS,
                                                                   **test_config}
    app.config.from_mapping(config.validate(settings))
    if app.logger.level == logging.NOTSET:
        app.logger.setLevel(logging.INFO)  # boot and live-feed messages belong in the log

    serving = not in_cli_command()
    if serving and app.config["MIGRATE_AT_START"]:
        db.migrate_database(app)
    db.init_app(app)
    csrf.init_app(app)
    socketio.init_app(app, async_mode=concurrency.async_mode())
    auth.init_app(app)
    app.register_blueprint(devices.bp)
    app.register_blueprint(rejects.bp)
    app.register_blueprint(charts.bp)
    app.register_blueprint(keys.bp)
    app.register_blueprint(modbus.bp)
    app.register_blueprint(alerts.bp)
    app.register_blueprint(alert_rules.bp)
    app.register_blueprint(alert_channels.bp)
    app.register_blueprint(device_accounts.bp)
    app.register_blueprint(commands.bp)
    app.register_blueprint(users.bp)
    app.register_blueprint(account.bp)
    auth.limit_password_guesses(app)  # the login form and /account's current password
    app.register_blueprint(audit.bp)
    app.register_blueprint(system.bp)
    app.register_blueprint(health.bp)  # /healthz: public, says only ok or down (health.py)
    metrics.init_app(app)  # /metrics: a login, an API key or METRICS_TOKEN; 401 otherwise
    api.init_app(app)  # /api/v1 (keys or session, CSRF for session writes) and /api/docs
    app.after_request(add_security_headers)
    if serving:
        auth.ensure_first_admin(app)
    live.init_app(app, start=serving and app.config["LIVE_ENABLED"])
    concurrency.settle_heap()
    return app


def in_cli_command():
    """True while a `flask` command other than `flask run` loads the app (e.g. init-db).

    Such a command needs the app, not the boot tasks: no MQTT client, no migrations twice.
    """
    ctx = click.get_current_context(silent=True)
    return ctx is not None and ctx.info_name != "run"


def add_security_headers(response):
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def shutdown(app):
    """Stop the app's MQTT client and close its database pool."""
    live.stop(app)
    db.close_pool(app)
