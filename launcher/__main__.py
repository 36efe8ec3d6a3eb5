"""`python -m launcher up`: run the whole platform natively until Ctrl-C."""
import argparse
import os
import signal
import sys
import time
from pathlib import Path

from . import settings
from .processes import ServiceFailed
from .stack import ROOT, Stack


def say(message):
    print(f"octopus: {message}", flush=True)


def up(args):
    # Both overridable so that a second instance (the tests') can run beside the first.
    env_path = Path(os.environ.get("OCTOPUS_ENV_FILE", ROOT / ".env"))
    state_dir = Path(os.environ.get("OCTOPUS_STATE_DIR", ROOT / "var"))
    added = settings.ensure_env_file(ROOT / ".env.example", env_path)
    if added:
        say(f"wrote {len(added)} settings to {env_path} (secrets generated, file mode 600)")
    config = settings.load(env_path)
    echo = (lambda name, line: print(f"[{name}] {line}", flush=True)) if args.verbose else None
    stack = Stack(config, state_dir=state_dir, echo=echo)

    stopping = []

    def request_stop(signum, frame):
        stopping.append(signum)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, request_stop)
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
    args = parser.parse_args(argv)
    return up(args)


if __name__ == "__main__":
    sys.exit(main())
