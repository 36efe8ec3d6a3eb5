"""Start services as child processes, log each to its own file, stop them in reverse order."""
import os
import signal
import subprocess
import threading
import time
from pathlib import Path


def say(message):
    """A line of the launcher's own on the console."""
    print(f"octopus: {message}", flush=True)


class ServiceFailed(RuntimeError):
    """A service exited or never became ready; the message names it and its log."""


class Supervisor:
    def __init__(self, log_dir, echo=None):
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.echo = echo  # callable(name, line) to mirror logs on the console, or None
        self.procs = {}   # name -> (Popen, stop signal), in start order

    def log_path(self, name):
        return self.log_dir / f"{name}.log"

    def run(self, argv, **popen_kwargs):
        """Run a one-off command to completion, its output appended to launcher.log."""
        with open(self.log_path("launcher"), "ab") as log:
            result = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, **popen_kwargs)
        if result.returncode:
            raise ServiceFailed(f"{Path(argv[0]).name} failed (exit {result.returncode}); "
                                f"see {self.log_path('launcher')}")

    def start(self, name, argv, env=None, cwd=None, stop_signal=signal.SIGTERM, **popen_kwargs):
        """Start a service; its stdout and stderr go to <log_dir>/<name>.log."""
        # Own session: a Ctrl-C in the terminal reaches only the launcher, which then stops
        # the services in order instead of all of them dying at once.
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                **popen_kwargs)
        self.procs[name] = (proc, stop_signal)
        threading.Thread(target=self._pump, args=(name, proc), daemon=True).start()
        return proc

    def _pump(self, name, proc):
        with open(self.log_path(name), "ab") as log:
            for line in proc.stdout:
                log.write(line)
                log.flush()
                if self.echo:
                    self.echo(name, line.decode("utf-8", "replace").rstrip())

    def wait_ready(self, name, check, timeout=60.0):
        """Poll `check()` until it returns true; fail early if the service exits."""
        proc, _ = self.procs[name]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise ServiceFailed(f"{name} exited with code {proc.returncode} while starting; "
                                    f"last lines of {self.log_path(name)}:\n{self.tail(name)}")
            try:
                if check():
                    return
            except Exception:  # not up yet: any error of the probe means "try again"
                pass
            time.sleep(0.2)
        raise ServiceFailed(f"{name} not ready after {timeout:.0f} s; last lines of "
                            f"{self.log_path(name)}:\n{self.tail(name)}")

    def tail(self, name, lines=15):
        try:
            return "\n".join(self.log_path(name).read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def exited(self):
        """Names of services that have exited, with their exit codes."""
        return {n: p.returncode for n, (p, _) in self.procs.items() if p.poll() is not None}

    def pid(self, name):
        return self.procs[name][0].pid

    def stop(self, name, timeout=20.0, sig=None):
        """Stop a service with its stop signal (or `sig`, e.g. SIGKILL to simulate a crash)."""
        proc, stop_signal = self.procs.pop(name)
        sig = sig or stop_signal
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, sig)
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                say(f"{name} did not stop within {timeout:g} s of {signal.Signals(sig).name}; "
                    f"killed it (see {self.log_path(name)})")
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            except ProcessLookupError:
                pass
        return proc.returncode

    def stop_all(self):
        for name in reversed(list(self.procs)):
            self.stop(name)
