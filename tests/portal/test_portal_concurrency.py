"""The portal's two ways of serving (octopus_portal/concurrency.py): threads in the tests'
own process, gevent's greenlets under gunicorn's gevent worker, where long work must not
hold every greenlet (every browser's live view) while it runs."""
import gc
import subprocess
import sys
from pathlib import Path

from octopus_portal import concurrency
from octopus_portal.auth import hasher

WEBAPP = Path(__file__).resolve().parents[2] / "webapp"

# Under gevent's patches: a greenlet ticks every 2 ms while the main one checks a password
# (argon2, ~100 ms of C), then works in Python with pauses. Off the loop, and at the pauses,
# the ticker runs; otherwise not once.
TICKS_DURING_A_CHECK = """
from gevent import monkey
monkey.patch_all()
import gevent, time
from octopus_portal import concurrency
from octopus_portal.auth import DUMMY_HASH, hasher
from argon2.exceptions import VerificationError
ticks = []
def ticker():
    while True:
        ticks.append(1)
        gevent.sleep(0.002)
gevent.spawn(ticker)
gevent.sleep(0.01)
before = len(ticks)
try:
    hasher.verify(DUMMY_HASH, "a wrong password")
except VerificationError:
    pass
during_check = len(ticks) - before
before = len(ticks)
for _ in range(5):  # long work in Python, in pieces (each longer than a tick) with pauses
    started = time.monotonic()
    while time.monotonic() - started < 0.005:
        pass
    concurrency.pause()
print(concurrency.async_mode(), during_check, len(ticks) - before)
"""


# Under gevent's patches, after the portal's modules are imported: how many objects
# settle_heap() leaves out of the collector's full collections.
FROZEN_AFTER_START = """
from gevent import monkey
monkey.patch_all()
import gc
import octopus_portal
from octopus_portal import concurrency
concurrency.settle_heap()
print(gc.get_freeze_count())
"""


def run_under_gevent(script):
    """`script`'s printed words, run in a fresh interpreter in the webapp folder."""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=60, cwd=WEBAPP,
                         env={"PYTHONPATH": str(WEBAPP), "PATH": "/usr/bin:/bin"})
    assert run.returncode == 0, run.stderr
    return run.stdout.split()


def test_threads_when_nothing_is_patched():
    assert concurrency.async_mode() == "threading"
    assert concurrency.off_the_loop(lambda a, b=0: a + b, 2, b=3) == 5
    concurrency.pause()  # nothing to do
    concurrency.settle_heap()
    assert gc.get_freeze_count() == 0, "the tests' apps would never be freed"


def test_the_hasher_still_hashes_and_checks():
    assert hasher.verify(hasher.hash("a password"), "a password")


def test_under_gevent_a_password_check_does_not_hold_the_other_greenlets():
    mode, during_check, during_pauses = run_under_gevent(TICKS_DURING_A_CHECK)
    assert mode == "gevent"
    assert int(during_check) > 0, "the ticker never ran while argon2 checked the password"
    assert int(during_pauses) > 0, "the ticker never ran at the pauses"


def test_under_gevent_what_start_up_made_is_left_out_of_full_collections():
    (frozen,) = run_under_gevent(FROZEN_AFTER_START)
    assert int(frozen) > 10_000
