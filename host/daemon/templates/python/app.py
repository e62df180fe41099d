"""`{{name}}`: a wasmalived check plugin in Python.

Healthy while the check has run fewer than `fail_after` times (never, by default): a
starting point that shows parameters, the scratch store, logging and measurements.
Replace `run` with your check.

Parameters: `fail_after` -- fail once the check has run this many times (optional).
"""

from typing import List, Optional, Tuple

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import log, scratch
from wit_world.imports.types import Measurement, Status_Fail, Status_Ok, Verdict

RUNS_KEY = "runs"


class BadParam(Exception):
    """A parameter the check cannot run with; reported as a `fail` naming it."""


def fail_after(params: List[Tuple[str, str]]) -> Optional[int]:
    value = None
    for key, v in params:
        if key != "fail_after":
            raise BadParam(f"unknown parameter `{key}` (known: fail_after)")
        value = v.strip()
    if value is None:
        return None
    if not value.isdigit() or int(value) < 1:
        raise BadParam(f"bad parameter fail_after=`{value}`: at least 1")
    return int(value)


def run(params: List[Tuple[str, str]]) -> Verdict:
    limit = fail_after(params)
    stored = scratch.get(RUNS_KEY)
    runs = (int(stored.decode()) if stored and stored.decode().isdigit() else 0) + 1
    try:
        scratch.set(RUNS_KEY, str(runs).encode())
    except Err as e:
        log.log(log.Level.WARN, f"cannot keep the run counter: {e.value}")
    log.log(log.Level.INFO, f"{{name}}: run {runs}")
    measurements = [Measurement("runs", float(runs))]
    if limit is not None and runs >= limit:
        return Verdict(Status_Fail(f"ran {runs} times (fail_after={limit})"), None, measurements)
    return Verdict(Status_Ok(), f"run {runs}", measurements)


class Check(exports.Check):
    def check(self, params: List[Tuple[str, str]]) -> Verdict:
        try:
            return run(params)
        except BadParam as e:
            return Verdict(Status_Fail(str(e)), None, [])
