"""A wasmalived check plugin in Python: is a process running?

Parameters (from the check's config, in order; unknown keys are a `fail`, not ignored):

  name        the process's short name (`/proc/PID/comm`), required, e.g. `nginx`
  min         at least this many matching processes (default 1)
  max         at most this many (default: no limit)
  cmdline     only count processes whose command line (joined by spaces) contains this
  netns       `same` to count only processes in the daemon's network namespace

Imports: `log` (always granted) and `processes` (granted by `processes` in the check's
config, `--processes` on `wasmalived plugin run`). Nothing else of the contract.
"""

from typing import List, Optional, Tuple

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import log, processes
from wit_world.imports.types import (
    Measurement,
    Status,
    Status_Fail,
    Status_Ok,
    Verdict,
)

KNOWN_KEYS = ("name", "min", "max", "cmdline", "netns")


class BadParam(Exception):
    """A parameter the check cannot run with; reported as a `fail` naming it."""


def _count(value: str, key: str) -> int:
    try:
        n = int(value, 10)
    except ValueError:
        raise BadParam(f"{key}={value!r} is not a whole number") from None
    if n < 0:
        raise BadParam(f"{key}={value!r} is negative")
    return n


class Settings:
    """The check's parameters, validated."""

    def __init__(self, params: List[Tuple[str, str]]) -> None:
        self.name: Optional[str] = None
        self.min = 1
        self.max: Optional[int] = None
        self.cmdline: Optional[str] = None
        self.same_netns = False
        for key, value in params:
            if key == "name":
                self.name = value
            elif key == "min":
                self.min = _count(value, key)
            elif key == "max":
                self.max = _count(value, key)
            elif key == "cmdline":
                self.cmdline = value
            elif key == "netns":
                if value != "same":
                    raise BadParam(f"netns={value!r}: the only value is 'same'")
                self.same_netns = True
            else:
                raise BadParam(f"unknown parameter {key!r} (known: {', '.join(KNOWN_KEYS)})")
        if not self.name:
            raise BadParam("missing parameter 'name'")
        if self.max is not None and self.max < self.min:
            raise BadParam(f"max={self.max} is below min={self.min}")


def _verdict(status: Status, message: str, count: Optional[int] = None) -> Verdict:
    measurements = [] if count is None else [Measurement("count", float(count))]
    return Verdict(status, message, measurements)


class Check(exports.Check):
    def check(self, params: List[Tuple[str, str]]) -> Verdict:
        try:
            s = Settings(params)
        except BadParam as e:
            return _verdict(Status_Fail(f"bad parameters: {e}"), str(e))
        assert s.name is not None  # Settings guarantees it

        try:
            found = processes.by_name(s.name)
        except Err as e:
            # The host could not read the process table: that says nothing about the service.
            reason = f"process table unavailable: {e.value}"
            log.log(log.Level.WARN, reason)
            return _verdict(Status_Fail(reason), reason)

        matching = [
            p
            for p in found
            if (s.cmdline is None or s.cmdline in " ".join(p.cmdline))
            and (not s.same_netns or p.same_netns)
        ]
        n = len(matching)
        pids = ",".join(str(p.pid) for p in matching[:8])
        log.log(log.Level.DEBUG, f"{s.name}: {n} matching of {len(found)} named (pids {pids})")

        if n < s.min:
            why = f"{n} {s.name} process(es) running, want at least {s.min}"
            return _verdict(Status_Fail(why), why, n)
        if s.max is not None and n > s.max:
            why = f"{n} {s.name} process(es) running, want at most {s.max}"
            return _verdict(Status_Fail(why), why, n)
        return _verdict(Status_Ok(), f"{n} {s.name} process(es) running", n)
