"""/healthz: is the platform up? The portal's MQTT connection, a database query and
Node-RED's HTTP port, checked at most once a second per process.

Public, so that a load balancer or a container healthcheck can probe it without a secret:
the answer therefore names components and says "ok" or "down", nothing more. Why a part is
down goes to the log, and to the System page (login required).
"""
import logging
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import psycopg
from flask import Blueprint, current_app, jsonify

from . import live
from .db import POOL

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)

COMPONENTS = ("broker", "database", "nodered")
TIMEOUT_S = 2.0      # per check: a probe gets its answer within a load balancer's patience
CACHE_S = 1.0        # a flood of probes costs one round of checks per second
EXTENSION = "octopus_health"  # key in app.extensions: the last result and its lock


def check_broker(app):
    """None if the portal's MQTT client is connected, else why not."""
    bridge = app.extensions.get(live.EXTENSION)
    if bridge is None or not bridge.started:
        return "the portal's MQTT client is not running (LIVE_ENABLED is off)"
    if not bridge.client.is_connected():
        return "the portal is not connected to the MQTT broker (it keeps retrying)"
    return None


def check_database(app):
    """None if a query answers within TIMEOUT_S, else why not."""
    try:
        with app.extensions[POOL].connection(timeout=TIMEOUT_S) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:  # PoolTimeout too: no connection could be made in time
        return f"no answer from PostgreSQL ({type(exc).__name__})"
    return None


def check_nodered(app):
    """None if Node-RED's HTTP API answers (200, or 401: it asks for its login), else why not."""
    url = app.config["NODERED_URL"] + "/settings"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:  # nosec B310  # http(s)
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (OSError, ValueError) as exc:  # refused, timed out, unreachable
        return f"Node-RED's HTTP port does not answer ({type(exc).__name__})"
    return None if status in (200, 401) else f"Node-RED answered HTTP {status}"


CHECKS = {"broker": check_broker, "database": check_database, "nodered": check_nodered}


def run_checks(app):
    """{component: None if up, else why it is down}, the checks run side by side."""
    with ThreadPoolExecutor(max_workers=len(CHECKS)) as pool:
        futures = {name: pool.submit(check, app) for name, check in CHECKS.items()}
        return {name: future.result() for name, future in futures.items()}


def status(app):
    """The latest {component: None or the reason it is down}, at most CACHE_S old."""
    state = app.extensions.setdefault(EXTENSION, {"lock": threading.Lock(), "at": None,
                                                  "problems": None})
    with state["lock"]:  # probes arriving together wait for one round of checks
        if state["at"] is None or time.monotonic() - state["at"] >= CACHE_S:
            problems = run_checks(app)
            log_changes(state["problems"], problems)
            state["problems"], state["at"] = problems, time.monotonic()
        return dict(state["problems"])


def log_changes(before, now):
    """Say in the log when a component goes down (and why) or comes back."""
    for name, problem in now.items():
        was = (before or {}).get(name)
        if problem and problem != was:
            log.warning("health: %s is down: %s", name, problem)
        elif was and not problem:
            log.info("health: %s is up again", name)


@bp.get("/healthz")
def healthz():
    """200 and every component "ok", or 503 naming the ones that are down."""
    problems = status(current_app._get_current_object())
    down = [name for name in COMPONENTS if problems[name]]
    body = {"status": "unhealthy" if down else "ok",
            "components": {name: "down" if problems[name] else "ok" for name in COMPONENTS}}
    if down:
        body["down"] = down
    response = jsonify(body)
    response.headers["Cache-Control"] = "no-store"
    return response, 503 if down else 200
