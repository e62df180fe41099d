// `{{name}}`: a wasmalived check plugin in JavaScript.
//
// Healthy while the check has run fewer than `fail_after` times (never, by default): a
// starting point that shows parameters, the scratch store, logging and measurements.
// Replace `run` with your check.
//
// Parameters: `fail_after` -- fail once the check has run this many times (optional).

import { log } from 'wasmalived:plugin/log@1.5.0';
import { get, set } from 'wasmalived:plugin/scratch@1.5.0';

const RUNS_KEY = 'runs';

/** A parameter the check cannot run with; reported as a `fail` naming it. */
class BadParam extends Error {}

function failAfter(params) {
  let value;
  for (const [key, v] of params) {
    if (key !== 'fail_after') {
      throw new BadParam(`unknown parameter \`${key}\` (known: fail_after)`);
    }
    value = v.trim();
  }
  if (value === undefined) {
    return undefined;
  }
  if (!/^[0-9]{1,9}$/.test(value) || Number(value) < 1) {
    throw new BadParam(`bad parameter fail_after=\`${value}\`: at least 1`);
  }
  return Number(value);
}

function run(params) {
  const limit = failAfter(params);
  const stored = get(RUNS_KEY);
  const previous = stored === undefined ? 0 : Number(new TextDecoder().decode(stored)) || 0;
  const runs = previous + 1;
  try {
    set(RUNS_KEY, new TextEncoder().encode(String(runs)));
  } catch (e) {
    log('warn', `cannot keep the run counter: ${e.payload ?? e}`);
  }
  log('info', `{{name}}: run ${runs}`);
  const measurements = [{ name: 'runs', value: runs }];
  if (limit !== undefined && runs >= limit) {
    const why = `ran ${runs} times (fail_after=${limit})`;
    return { status: { tag: 'fail', val: why }, message: undefined, measurements };
  }
  return { status: { tag: 'ok' }, message: `run ${runs}`, measurements };
}

export const check = {
  check(params) {
    try {
      return run(params);
    } catch (e) {
      if (e instanceof BadParam) {
        return { status: { tag: 'fail', val: e.message }, message: undefined, measurements: [] };
      }
      throw e;
    }
  },
};
