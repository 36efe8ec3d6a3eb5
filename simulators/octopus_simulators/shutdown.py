"""Stopping a simulator cleanly: SIGINT (Ctrl-C) and SIGTERM (the launcher, Docker) set an event."""
import signal
import threading


def stop_on_signals(log):
    """An event set by the first SIGINT or SIGTERM (logged); the main loop waits on it."""
    stop = threading.Event()

    def on_signal(signum, frame):
        log.info("%s received: stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    return stop
