"""`python -m launcher up`: run the whole platform natively until Ctrl-C; `backup [FILE]` and
`restore FILE` save and bring back its data (launcher/backup.py)."""
import argparse
import os
import signal
import sys
import time
from pathlib import Path

from . import backup as archive
from . import settings
from .processes import ServiceFailed, say
from .stack import ROOT, Stack


def configuration():
    """(.env's path, the state folder, the configuration), .env written or completed first."""
    # Both overridable so that a second instance (the tests') can run beside the first.
    env_path = Path(os.environ.get("OCTOPUS_ENV_FILE", ROOT / ".env"))
    state_dir = Path(os.environ.get("OCTOPUS_STATE_DIR", ROOT / "var"))
    added = settings.ensure_env_file(ROOT / ".env.example", env_path)
    if added:
        say(f"wrote {len(added)} settings to {env_path} (secrets generated, file mode 600)")
    return env_path, state_dir, settings.load(env_path)


def up(args):
    env_path, state_dir, config = configuration()
    echo = (lambda name, line: print(f"[{name}] {line}", flush=True)) if args.verbose else None
    stack = Stack(config, state_dir=state_dir, echo=echo)

    stopping = []

    def request_stop(signum, frame):
        stopping.append(signum)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, request_stop)
    # A shell starts a background job with SIGINT ignored, and Python then leaves it ignored:
    # taken here, before any service starts, so that the services get it back too (exec
    # resets a handled signal, not an ignored one).
    signal.signal(signal.SIGINT, request_stop)
    try:
        say("starting PostgreSQL, Mosquitto, Node-RED, the portal"
            + (" and the demo simulators" if not args.no_simulators else "") + " ...")
        stack.start(simulators=not args.no_simulators)
        say("up and running:")
        for name, url in stack.urls().items():
            print(f"    {name:<20} {url}")
        print(f"    credentials          in {env_path}: portal PORTAL_ADMIN_USER / "
              f"PORTAL_ADMIN_PASSWORD, Node-RED editor NODERED_ADMIN_USER / "
              f"NODERED_ADMIN_PASSWORD, MQTT devices MQTT_SIMULATOR_USER / "
              f"MQTT_SIMULATOR_PASSWORD")
        if not config.get("MQTT_TLS_CERTFILE"):  # else devices trust the operator's CA
            print(f"    mqtt tls ca          {stack.tls_dir / 'ca.crt'} (what devices trust on "
                  f"the TLS ports)")
        print(f"    logs                 in {stack.supervisor.log_dir}/")
        say("press Ctrl-C to stop")
        while True:
            dead = stack.supervisor.exited()
            if dead:
                for name, code in dead.items():
                    say(f"{name} exited with code {code}; last lines of its log:\n"
                        f"{stack.supervisor.tail(name)}")
                raise ServiceFailed("a service stopped; stopping the others")
            time.sleep(1)
    except KeyboardInterrupt:
        say("stopping ...")
        stack.stop()
        say(f"stopped; data is kept in {state_dir}/")
        return 0
    except ServiceFailed as exc:
        say(str(exc))
        stack.stop()
        return 1


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m launcher", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    p_up = sub.add_parser("up", help="start everything (the default)")
    for p in (parser, p_up):
        p.add_argument("--no-simulators", action="store_true",
                       help="do not start the demo simulators")
        p.add_argument("--verbose", action="store_true",
                       help="mirror every service's log on the console")
    p_backup = sub.add_parser("backup", help="back up the database, the device accounts and "
                              "the platform CA into one file (doc/operations.md)")
    p_backup.add_argument("file", nargs="?", type=Path,
                          help="the archive to write (default: var/backups/octopus-<time>.tar)")
    p_restore = sub.add_parser("restore", help="replace the database, the device accounts and "
                               "the platform CA with a backup's (Octopus stopped)")
    p_restore.add_argument("file", type=Path, help="an archive written by `backup`")
    p_restore.add_argument("--yes", action="store_true",
                           help="do not ask before replacing the current data")
    args = parser.parse_args(argv)
    if args.command == "backup":
        return backup(args)
    if args.command == "restore":
        return restore(args)
    return up(args)


def backup(args):
    _, state_dir, config = configuration()
    try:
        archive.backup_command(Stack(config, state_dir=state_dir), args.file, log=say)
    except (archive.BackupError, ServiceFailed, OSError, archive.psycopg.Error) as exc:
        say(f"backup failed: {exc}")
        return 1
    say("keep it with a copy of .env, somewhere else than this machine: the secrets are "
        "not in the backup")
    return 0


def restore(args):
    env_path, state_dir, config = configuration()
    if not args.file.is_file():
        say(f"restore: {args.file}: no such file")
        return 2
    if not args.yes:
        question = (f"This replaces the database {config['PGDATABASE']}, the device accounts "
                    f"and the platform CA in {state_dir}/ with those of {args.file}. Type yes: ")
        if not sys.stdin.isatty() or input(question).strip().lower() != "yes":
            say("restore: not confirmed (--yes confirms without asking); nothing changed")
            return 2
    try:
        archive.restore_command(Stack(config, state_dir=state_dir), args.file, log=say)
    except (archive.BackupError, ServiceFailed, OSError, archive.psycopg.Error) as exc:
        say(f"restore failed: {exc}")
        return 1
    say(f"restored; `./octopus up` starts the platform with the roles and secrets of {env_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
