"""`python -m bench` (`./octopus bench`): measure the ingest against the bare broker and the
usual tutorial flow, in one run, with one load generator; print the figures and the targets.
`./octopus bench history`: the history queries on 100 million rows (bench/history.py).
`./octopus bench modbus`: 100 simulated Modbus devices polled every second (bench/modbus.py).
`./octopus bench footprint`: the memory of the whole native stack at rest (bench/footprint.py).
`./octopus bench live`: publish → browser latency of the live view (bench/live.py)."""
import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "webapp") not in sys.path:   # the migration runner lives in the portal package
    sys.path.insert(0, str(ROOT / "webapp"))

from . import nodeprofile, report, scenarios  # noqa: E402
from .loadgen import Load  # noqa: E402


def parse_args(argv):
    p = argparse.ArgumentParser(prog="./octopus bench", description=__doc__,
                                epilog="./octopus bench history --help, ./octopus bench modbus "
                                       "--help, ./octopus bench footprint --help, ./octopus bench "
                                       "live --help: those benchmarks' options")
    p.add_argument("--messages", type=int, default=300_000,
                   help="messages in (a) bare broker and (c) Octopus ingest (default 300,000)")
    p.add_argument("--tutorial-messages", type=int, default=50_000,
                   help="messages in (b) and (d), the tutorial flow, which is slow (default 50,000)")
    p.add_argument("--processes", type=int, default=4, help="generator processes (default 4)")
    p.add_argument("--connections", type=int, default=25,
                   help="device connections per generator process (default 25)")
    p.add_argument("--window", type=int, default=100,
                   help="unacknowledged QoS 1 messages per connection (default 100)")
    p.add_argument("--pace", type=float, default=5.0, metavar="MS",
                   help="a generator process serves its connections at most every MS milliseconds "
                        "(default 5; 0: on every socket event, which costs the generator 2–3× the "
                        "CPU: bench/loadgen.py)")
    p.add_argument("--scenarios", default="abdc",
                   help="which of a, b, d, c to run, in that order (default abdc)")
    p.add_argument("--timeout", type=float, default=300,
                   help="longest a scenario may publish and drain, in seconds (default 300)")
    p.add_argument("--stall", type=float, default=10,
                   help="after publishing, give up once nothing arrived for this long (default 10 s)")
    p.add_argument("--profile", type=Path, metavar="DIR",
                   help="also record a CPU profile of Node-RED's main thread during (c) into DIR "
                        "(over the inspector; sampling costs Node-RED a few %%)")
    p.add_argument("--keep", action="store_true", help="keep each scenario's state folder and logs")
    return p.parse_args(argv)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["history"]:
        from . import history
        return history.main(argv[1:])
    if argv[:1] == ["modbus"]:
        from . import modbus
        return modbus.main(argv[1:])
    if argv[:1] == ["footprint"]:
        from . import footprint
        return footprint.main(argv[1:])
    if argv[:1] == ["live"]:
        from . import live
        return live.main(argv[1:])
    args = parse_args(argv)
    load = Load(messages=args.messages, processes=args.processes,
                connections=args.connections, window=args.window, pace_ms=args.pace,
                timeout_s=args.timeout)
    options = scenarios.Options(timeout_s=args.timeout, stall_s=args.stall, keep=args.keep,
                                profile_dir=args.profile.resolve() if args.profile else None)
    log = lambda m: print(f"bench: {m}", flush=True)  # noqa: E731
    outcomes, failed = {}, []
    started = time.monotonic()
    for key in args.scenarios:
        n = args.tutorial_messages if key in "bd" else args.messages
        try:
            outcomes[key] = scenarios.run(key, scenarios.scaled(load, n), options, log=log)
        except Exception as exc:  # report it, run the other scenarios, fail at the end
            failed.append(key)
            log(f"[{key}] FAILED: {type(exc).__name__}: {exc}")
    log(f"done in {time.monotonic() - started:.0f} s")
    print()
    print(report.render(outcomes, load, report.machine()))
    if ("b" in outcomes or "d" in outcomes) and args.tutorial_messages != args.messages:
        print(f"\n(b) and (d) ran {args.tutorial_messages:,} messages instead of {args.messages:,}: "
              f"one INSERT per message is slow. Every rate is distinct rows (or messages) per "
              f"second from publish start to the last one stored (or received).")
    if options.profile_path:
        print()
        print(nodeprofile.render(options.profile_path))
    if failed:
        print(f"\nscenarios that failed: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
