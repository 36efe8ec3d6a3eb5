"""`./octopus bench footprint`: the memory of the whole native stack at rest (BRIEF.md,
Targets: "the whole native stack idles under 600 MB RSS").

What `./octopus up` starts (PostgreSQL, Mosquitto, Node-RED with the project's flows, the
portal, and by default the demo simulators, whose devices keep the flows busy as a small
installation would), on its own ports in a temporary folder. After `--settle` seconds it
samples every process of every service from /proc, every 5 s for `--seconds`, and prints
the largest RSS and PSS of each service and of the whole.

RSS is what the target names, and it counts shared memory (PostgreSQL's buffers, the
portal's forked worker) once per process: summed, it is the pessimistic figure. PSS shares
each page among the processes that map it: what the stack costs the machine.

Baseline, in the same run: Node-RED, the largest part, started again with the same settings
and node packages but an empty flow, measured the same way: what Node-RED takes with nothing
running, and so what the project's flows, running, add to it."""
import argparse
import time

from .measure import process_table, tree_memory_kib
from .services import BenchStack

TARGET_MB = 600
SAMPLE_EVERY_S = 5
ORDER = ("postgres", "mosquitto", "nodered", "portal", "simulators", "modbus-simulators")


def parse_args(argv):
    p = argparse.ArgumentParser(prog="./octopus bench footprint", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--settle", type=int, default=60,
                   help="seconds after the start before the first sample (default 60)")
    p.add_argument("--seconds", type=int, default=30, help="sampling window (default 30 s)")
    p.add_argument("--no-simulators", action="store_true",
                   help="leave the demo devices out, as `./octopus up --no-simulators`")
    p.add_argument("--keep", action="store_true", help="keep the state folder and logs")
    args = p.parse_args(argv)
    if args.settle < 0 or args.seconds < 0:
        p.error("--settle and --seconds are seconds, ≥ 0")
    return args


def sample(groups):
    """{service: (RSS KiB, PSS KiB, processes)} now."""
    table = process_table()
    return {name: tree_memory_kib(table, pids) for name, pids in groups.items()}


def largest(groups, settle_s, seconds, log):
    """Per service the largest (RSS, PSS, processes) over the samples, and the largest totals
    (RSS, PSS) of one sample, after `settle_s`."""
    log(f"settling for {settle_s} s, then sampling every {SAMPLE_EVERY_S} s for {seconds} s")
    time.sleep(settle_s)
    peaks, total = {}, (0, 0)
    deadline = time.monotonic() + seconds
    while True:
        now = sample(groups)
        for name, (rss, pss, count) in now.items():
            old = peaks.get(name, (0, 0, 0))
            peaks[name] = (max(old[0], rss), max(old[1], pss), max(old[2], count))
        total = (max(total[0], sum(v[0] for v in now.values())),
                 max(total[1], sum(v[1] for v in now.values())))
        if time.monotonic() >= deadline:
            return peaks, total
        time.sleep(SAMPLE_EVERY_S)


def mb(kib):
    return kib * 1024 / 1e6


def render(peaks, total, baseline, simulators):
    lines = [f"{'service':<20}{'processes':>10}{'RSS MB':>10}{'PSS MB':>10}",
             "-" * 50]
    for name in sorted(peaks, key=lambda n: ORDER.index(n) if n in ORDER else len(ORDER)):
        rss, pss, count = peaks[name]
        lines.append(f"{name:<20}{count:>10}{mb(rss):>10.0f}{mb(pss):>10.0f}")
    lines.append("-" * 50)
    lines.append(f"{'whole stack':<20}{'':>10}{mb(total[0]):>10.0f}{mb(total[1]):>10.0f}")
    rss, pss, _ = baseline
    lines += ["", "baseline, same run: Node-RED with the same settings and nodes, an empty flow",
              f"{'node-red, no flows':<20}{'':>10}{mb(rss):>10.0f}{mb(pss):>10.0f}",
              f"{'the flows add':<20}{'':>10}{mb(peaks['nodered'][0] - rss):>+10.0f}"
              f"{mb(peaks['nodered'][1] - pss):>+10.0f}",
              "", "target (BRIEF.md, Targets)"]
    verdict = "met" if mb(total[0]) < TARGET_MB else "NOT met"
    who = "with the demo simulators" if simulators else "without the demo simulators"
    lines.append(f"  whole native stack at rest, {who}: {mb(total[0]):.0f} MB RSS summed "
                 f"({mb(total[1]):.0f} MB PSS)   target < {TARGET_MB} MB RSS   {verdict}")
    lines.append("  (each figure the largest of its samples; totals the largest of one sample)")
    return "\n".join(lines)


def main(argv):
    args = parse_args(argv)
    log = lambda m: print(f"bench footprint: {m}", flush=True)  # noqa: E731
    stack = BenchStack("footprint", keep=args.keep)
    try:
        log(f"starting the stack in {stack.state_dir}")
        stack.start(simulators=not args.no_simulators)
        groups = {name: [proc.pid] for name, (proc, _) in stack.supervisor.procs.items()}
        peaks, total = largest(groups, args.settle, args.seconds, log)

        log("baseline: Node-RED again, with an empty flow")
        stack.supervisor.stop("nodered")
        empty = stack.state_dir / "empty-flow.json"
        empty.write_text("[]\n")
        stack.start_nodered(NODERED_FLOWS_FILE=str(empty))
        pid = stack.pid("nodered")
        base_peaks, _ = largest({"nodered": [pid]}, min(args.settle, 30), args.seconds, log)
        baseline = base_peaks["nodered"]
    finally:
        stack.close()
    print()
    print(render(peaks, total, baseline, not args.no_simulators))
    return 0
