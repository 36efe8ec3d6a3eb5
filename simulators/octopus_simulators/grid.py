"""A recloser on a 22.9 kV distribution feeder: phase values, power and trips, second by second.

Pure code (no network): `Recloser.step(t)` moves the model to epoch time `t` and returns the
values an OSM27 would measure: ia ib ic (A), va vb vc phase-to-neutral (V), p_act (kW),
p_react (kvar), fp and estado (open | closed | lockout).
"""
import math
from dataclasses import dataclass
from datetime import datetime

NOMINAL_PHASE_V = 22_900 / math.sqrt(3)       # 13,221 V phase-to-neutral
STATES = ("open", "closed", "lockout")
MEASUREMENTS = ("ia", "ib", "ic", "va", "vb", "vc", "p_act", "p_react", "fp", "estado")


@dataclass(frozen=True)
class FeederSettings:
    """What shapes a feeder's day; the defaults describe a mixed residential feeder."""
    peak_current_a: float = 200.0        # phase current at the evening peak
    night_fraction: float = 0.4          # load at night, as a fraction of the peak
    peak_hour: float = 19.0              # local time of the evening peak
    mean_time_between_trips_s: float = 6 * 3600.0
    reclose_delay_s: float = 10.0        # dead time before each automatic reclose
    shots: int = 3                       # failed recloses on a lasting fault before lockout
    permanent_fault_probability: float = 0.15
    lockout_reset_s: float = 900.0       # a crew clears the fault and closes it again


def load_fraction(hour, settings=FeederSettings()):
    """0 … 1 load at local `hour` (0–24): a night floor, a late-morning hump, the peak."""
    def bump(centre, width):
        distance = (hour - centre + 12.0) % 24.0 - 12.0   # hours, across midnight too
        return math.exp(-0.5 * (distance / width) ** 2)
    # Combined like independent causes (1 - (1-a)(1-b)): smooth, and exactly 1 at the peak.
    shape = 1.0 - (1.0 - 0.7 * bump(11.0, 3.0)) * (1.0 - bump(settings.peak_hour, 2.5))
    return settings.night_fraction + (1.0 - settings.night_fraction) * shape


class Walk:
    """A value pulled back towards 0 and shaken a little each second: slow, bounded drift."""

    def __init__(self, rng, noise, bound, pull=0.02):
        self.rng, self.noise, self.bound, self.pull = rng, noise, bound, pull
        self.value = rng.uniform(-bound, bound) / 2

    def step(self, seconds):
        """Advance by `seconds` (capped, so that a long pause does not jump far)."""
        n = max(1, min(int(round(seconds)), 60))
        for _ in range(n):
            self.value += -self.pull * self.value + self.rng.gauss(0.0, self.noise)
            self.value = max(-self.bound, min(self.bound, self.value))
        return self.value


class Recloser:
    """One recloser's measurements and protection state, driven by explicit times."""

    def __init__(self, rng, settings=FeederSettings(), tz=None):
        self.rng = rng
        self.settings = settings
        self.tz = tz                           # None: the process's local time zone
        # Feeders differ: each one's peak is 80–120 % of the nominal one.
        self.peak_a = settings.peak_current_a * rng.uniform(0.8, 1.2)
        self.load = Walk(rng, 0.004, 0.06)                          # ±6 % on the curve
        self.imbalance = [Walk(rng, 0.002, 0.03) for _ in range(3)]  # ±3 % per phase
        self.voltage = Walk(rng, 0.0005, 0.004)                     # ±0.4 % bus drift
        self.pf = Walk(rng, 0.0005, 0.025, pull=0.005)              # 0.95 ± 0.025, slow
        self.state = "closed"
        self.permanent = False
        self.shots_left = 0
        self.next_event = None                 # when an open recloser recloses / resets
        self.last_t = None

    # -- protection ------------------------------------------------------------------------
    def trip(self, t, permanent=False):
        """A fault opens the recloser at `t`; a lasting one ends in lockout after the shots."""
        self.state, self.permanent = "open", permanent
        self.shots_left = self.settings.shots
        self.next_event = t + self.settings.reclose_delay_s

    def lockout(self, t):
        """Open and stay open until close() or the lockout reset time."""
        self.state = "lockout"
        self.next_event = t + self.settings.lockout_reset_s

    def close(self):
        """Close now (an operator's command): the fault is gone."""
        self.state, self.permanent, self.next_event = "closed", False, None

    def _protection(self, t, seconds):
        if self.state == "closed":
            # Trips are a Poisson process: the chance of one in `seconds`.
            settings = self.settings
            if self.rng.random() < -math.expm1(-seconds / settings.mean_time_between_trips_s):
                self.trip(t, permanent=self.rng.random() < settings.permanent_fault_probability)
            return
        if t < self.next_event:
            return
        if self.state == "lockout" or not self.permanent:
            self.close()
        elif self.shots_left > 1:      # reclosed onto the fault: trips again at once
            self.shots_left -= 1
            self.next_event = t + self.settings.reclose_delay_s
        else:
            self.lockout(t)

    # -- measurements ----------------------------------------------------------------------
    def local_hour(self, t):
        moment = datetime.fromtimestamp(t, self.tz) if self.tz else datetime.fromtimestamp(t)
        return moment.hour + moment.minute / 60 + moment.second / 3600

    def step(self, t):
        """The values at epoch time `t` (seconds); call with increasing times."""
        seconds = 1.0 if self.last_t is None else max(0.0, t - self.last_t)
        self.last_t = t
        self._protection(t, seconds)
        load = (self.peak_a * load_fraction(self.local_hour(t), self.settings)
                * (1.0 + self.load.step(seconds)))
        # Voltage sags a little under load: +0.2 % at night, -0.2 % at the peak.
        bus = 1.0 + 0.004 - 0.006 * load / self.peak_a + self.voltage.step(seconds)
        volts = [NOMINAL_PHASE_V * min(1.01, max(0.99, bus + self.rng.gauss(0.0, 0.0015)))
                 for _ in range(3)]
        pf = 0.95 + self.pf.step(seconds)
        if self.state == "closed":
            amps = [load * (1.0 + w.step(seconds) + self.rng.gauss(0.0, 0.003))
                    for w in self.imbalance]
        else:
            amps = [0.0, 0.0, 0.0]
        apparent_kva = sum(v * i for v, i in zip(volts, amps)) / 1000.0
        p_kw = apparent_kva * pf
        q_kvar = apparent_kva * math.sin(math.acos(pf))
        fp = p_kw / math.hypot(p_kw, q_kvar) if apparent_kva else 0.0
        return {"ia": amps[0], "ib": amps[1], "ic": amps[2],
                "va": volts[0], "vb": volts[1], "vc": volts[2],
                "p_act": p_kw, "p_react": q_kvar, "fp": fp, "estado": self.state}
