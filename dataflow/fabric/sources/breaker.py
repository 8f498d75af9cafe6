"""The circuit breaker each source carries: closed -> open after ``failure_threshold``
consecutive failures; after ``probe_interval`` seconds open becomes half-open and lets ONE probe
through at a time; ``success_threshold`` successful probes close it, a failed probe opens it
again for another ``probe_interval``.  ``on_transition(old, new)`` lets the metrics follow."""

from __future__ import annotations

import time

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
#: gauge values for the metrics endpoint
STATE_VALUE = {CLOSED: 0, HALF_OPEN: 1, OPEN: 2}


class CircuitBreaker:
    def __init__(self, config, clock=time.monotonic):
        self.config = config
        self._clock = clock
        self.state = CLOSED
        self.failures = 0
        self.successes = 0
        self.opened_at = 0.0
        self.opened_wall: float | None = None
        self.last_error: str | None = None
        self.transitions = 0
        self.on_transition = None
        self._probing = False

    def _move(self, new: str) -> None:
        old, self.state = self.state, new
        self.transitions += 1
        if new == OPEN:
            self.opened_at, self.opened_wall = self._clock(), time.time()
        if self.on_transition is not None:
            self.on_transition(old, new)

    def allow(self) -> bool:
        """May a call go out now?  In the open state, one probe after ``probe_interval``."""
        if self.state == CLOSED:
            return True
        if self.state == OPEN and self._clock() - self.opened_at >= self.config.probe_interval:
            self.successes = 0
            self._move(HALF_OPEN)
        if self.state == HALF_OPEN and not self._probing:
            self._probing = True
            return True
        return False

    def release(self) -> None:
        """A permitted call ended with neither success nor failure (cancelled): free the probe."""
        self._probing = False

    def success(self) -> None:
        self._probing = False
        self.failures = 0
        if self.state == HALF_OPEN:
            self.successes += 1
            if self.successes >= self.config.success_threshold:
                self._move(CLOSED)
        elif self.state == OPEN:  # a read that was already under way when it opened
            return
        if self.state == CLOSED:
            self.last_error = None

    def failure(self, error: str) -> None:
        self._probing = False
        self.last_error = error
        self.failures += 1
        if self.state == HALF_OPEN or (self.state == CLOSED and self.failures >= self.config.failure_threshold):
            self._move(OPEN)

    def retry_in(self) -> float | None:
        """Seconds until the next probe may go out (open only)."""
        if self.state != OPEN:
            return None
        return max(0.0, self.config.probe_interval - (self._clock() - self.opened_at))

    def snapshot(self) -> dict:
        retry = self.retry_in()
        return {"state": self.state, "failures": self.failures, "last_error": self.last_error,
                "successes": self.successes if self.state == HALF_OPEN else 0,
                "opened_at": self.opened_wall if self.state != CLOSED else None,
                "retry_in": None if retry is None else round(retry, 3),
                "failure_threshold": self.config.failure_threshold,
                "probe_interval": self.config.probe_interval,
                "success_threshold": self.config.success_threshold}
