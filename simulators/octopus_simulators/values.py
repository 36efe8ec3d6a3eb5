"""Realistic readings: a bounded random walk around a set point that follows a daily cycle."""
import math

SECONDS_PER_DAY = 86400.0
# The daily cycle peaks mid-afternoon (UTC: containers and servers run on UTC).
PEAK_HOUR = 15.0


def daily_cycle(t):
    """-1 … 1 over a day: 1 at PEAK_HOUR, -1 twelve hours later; `t` is epoch seconds."""
    hours = (t % SECONDS_PER_DAY) / 3600.0
    return math.cos(2.0 * math.pi * (hours - PEAK_HOUR) / 24.0)


class Drift:
    """One attribute of one device: each call to `next(t)` moves it a little.

    The value is pulled back towards a target (the set point shifted by the daily cycle),
    shaken by Gaussian noise, and never leaves set point ± spread.
    """

    # Per sample: noise of 3 % of the spread, and a pull closing 10 % of the gap to the
    # target, so the walk wanders visibly but settles within a few dozen samples.
    NOISE = 0.03
    PULL = 0.10

    def __init__(self, set_point, spread, daily_swing, rng):
        if spread <= 0:
            raise ValueError(f"spread must be positive, got {spread}")
        self.set_point = float(set_point)
        self.spread = float(spread)
        self.daily_swing = float(daily_swing)
        self.rng = rng
        # Devices of the same room do not all start on the same value.
        self.value = self.clamp(self.set_point + rng.uniform(-0.3, 0.3) * self.spread)

    @property
    def low(self):
        return self.set_point - self.spread

    @property
    def high(self):
        return self.set_point + self.spread

    def clamp(self, value):
        return min(self.high, max(self.low, value))

    def target(self, t):
        """Where the walk is pulled at time `t`: the set point plus the daily swing."""
        return self.set_point + self.daily_swing * self.spread * daily_cycle(t)

    def next(self, t):
        """The next reading at time `t` (epoch seconds)."""
        pull = self.PULL * (self.target(t) - self.value)
        noise = self.rng.gauss(0.0, self.NOISE * self.spread)
        self.value = self.clamp(self.value + pull + noise)
        return self.value
