// A wasmalived check plugin in JavaScript: is a process running, and has it restarted lately?
//
// Parameters (from the check's config, in order; an unknown key is a `fail`, not ignored):
//
//   name   the process's short name (`/proc/PID/comm`), required, e.g. `haproxy`
//   hold   after the set of PIDs changes (a restart), report `fail` for this many runs
//          (default 1, 0 = only log it), so a flapping service does not keep the VIPs
//
// Each run gets a fresh instance, so what must survive between runs (the PIDs seen last time,
// how many runs the current `hold` still lasts, how many restarts were seen) is kept in the
// host's `scratch` store under the key `state`, as JSON.
//
// Imports: `log`, `scratch` (always granted) and `processes` (granted by `processes`).

import { log } from 'wasmalived:plugin/log@1.5.0';
import { byName } from 'wasmalived:plugin/processes@1.5.0';
import { get, set } from 'wasmalived:plugin/scratch@1.5.0';

const STATE_KEY = 'state';

/** A parameter the check cannot run with; reported as a `fail` naming it. */
class BadParam extends Error {}

function settings(params) {
  const s = { name: undefined, hold: 1 };
  for (const [key, value] of params) {
    if (key === 'name') {
      s.name = value;
    } else if (key === 'hold') {
      if (!/^[0-9]{1,6}$/.test(value)) {
        throw new BadParam(`hold=${JSON.stringify(value)} is not a whole number`);
      }
      s.hold = Number(value);
    } else {
      throw new BadParam(`unknown parameter ${JSON.stringify(key)} (known: name, hold)`);
    }
  }
  if (!s.name) {
    throw new BadParam("missing parameter 'name'");
  }
  return s;
}

/** The state kept from the last run; a missing or unreadable one starts afresh. */
function loadState(name) {
  const fresh = { name, pids: null, holdLeft: 0, restarts: 0 };
  const bytes = get(STATE_KEY);
  if (bytes === undefined) {
    return fresh;
  }
  try {
    const st = JSON.parse(new TextDecoder().decode(bytes));
    // A renamed check starts afresh rather than comparing another process's PIDs.
    return st && st.name === name ? st : fresh;
  } catch (e) {
    log('warn', `scratch state unreadable, starting afresh: ${e}`);
    return fresh;
  }
}

function saveState(st) {
  try {
    set(STATE_KEY, new TextEncoder().encode(JSON.stringify(st)));
  } catch (e) {
    // Over quota: the check still answers, it only forgets; say so.
    log('warn', `could not save state: ${e.payload ?? e}`);
  }
}

function verdict(status, message, measurements = []) {
  return { status, message, measurements };
}

function fail(why, measurements = []) {
  return verdict({ tag: 'fail', val: why }, why, measurements);
}

export const check = {
  check(params) {
    let s;
    try {
      s = settings(params);
    } catch (e) {
      if (e instanceof BadParam) {
        return fail(`bad parameters: ${e.message}`);
      }
      throw e;
    }

    let procs;
    try {
      procs = byName(s.name);
    } catch (e) {
      const why = `process table unavailable: ${e.payload ?? e}`;
      log('warn', why);
      return fail(why);
    }

    const pids = procs.map((p) => p.pid).sort((a, b) => a - b);
    const st = loadState(s.name);
    const changed = st.pids !== null && pids.length > 0 && st.pids.length > 0 &&
      !pids.some((pid) => st.pids.includes(pid));
    if (changed) {
      st.restarts += 1;
      st.holdLeft = s.hold;
      log('warn', `${s.name} restarted: pids ${st.pids.join(',')} -> ${pids.join(',')}`);
    }
    if (pids.length > 0) {
      st.pids = pids;
    }
    const holding = st.holdLeft > 0;
    if (holding) {
      st.holdLeft -= 1;
    }
    saveState(st);

    const m = [
      { name: 'count', value: pids.length },
      { name: 'restarts', value: st.restarts },
    ];
    if (pids.length === 0) {
      return fail(`no ${s.name} process running`, m);
    }
    if (holding) {
      return fail(`${s.name} restarted recently (holding ${st.holdLeft} more run(s))`, m);
    }
    return verdict({ tag: 'ok' }, `${pids.length} ${s.name} process(es) running`, m);
  },
};
