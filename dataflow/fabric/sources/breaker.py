"""The circuit breaker each source carries: closed -> open after consecutive failures,
half-open after ``probe_interval`` (one probe at a time), closed again after enough successes."""

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
        self.last_error: str | None = None
        self._probing = False

    def allow(self) -> bool:
        """May a call go out now?  In the open state, one probe after ``probe_interval``."""
        if self.state == CLOSED:
            return True
        if self.state == OPEN and self._clock() - self.opened_at >= self.config.probe_interval:
            self.state, self.successes = HALF_OPEN, 0
        if self.state == HALF_OPEN and not self._probing:
            self._probing = True
            return True
        return False

    def success(self) -> None:
        self._probing = False
        self.failures = 0
        if self.state == HALF_OPEN:
            self.successes += 1
            if self.successes >= self.config.success_threshold:
                self.state = CLOSED
        self.last_error = None if self.state == CLOSED else self.last_error

    def failure(self, error: str) -> None:
        self._probing = False
        self.last_error = error
        self.failures += 1
        if self.state == HALF_OPEN or self.failures >= self.config.failure_threshold:
            self.state, self.opened_at = OPEN, self._clock()

    def snapshot(self) -> dict:
        return {"state": self.state, "failures": self.failures, "last_error": self.last_error}
