// Builds check.js into {{name}}.wasm with componentize-js's API (`make` runs it).
import { componentize } from '@bytecodealliance/componentize-js';
import { writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const output = resolve(here, process.argv[2] ?? '{{name}}.wasm');

const { component } = await componentize({
  sourcePath: resolve(here, 'check.js'),
  witPath: resolve(here, 'wit'),
  worldName: '{{name}}',
  // Each of these would add WASI imports the daemon does not grant to a check:
  // stdio (console.*), random (Math.random), clocks (Date.now), http/fetch-event (fetch).
  disableFeatures: ['stdio', 'random', 'clocks', 'http', 'fetch-event'],
});
await writeFile(output, component);
console.log(`wrote ${output} (${component.length} bytes)`);
