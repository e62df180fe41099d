// Builds check.js into a WebAssembly component with componentize-js's API.
//
//   node build.mjs [OUTPUT]     (default: ../../../target/example-plugins/js-check.wasm)
//
// (`jco componentize` does the same through a CLI; it is not used because it fails on some
// machines, while the API it wraps works.)

import { componentize } from '@bytecodealliance/componentize-js';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const output = resolve(process.argv[2] ?? resolve(here, '../../../target/example-plugins/js-check.wasm'));

const { component, imports } = await componentize({
  sourcePath: resolve(here, 'check.js'),
  witPath: resolve(here, 'wit'),
  worldName: 'js-check',
  // The check needs none of these, and each one would add WASI imports the host must grant:
  // stdio (console.*), random (Math.random), clocks (Date.now), http/fetch-event (fetch).
  disableFeatures: ['stdio', 'random', 'clocks', 'http', 'fetch-event'],
});

await mkdir(dirname(output), { recursive: true });
await writeFile(output, component);
console.log(`wrote ${output} (${component.length} bytes)`);
console.log(`imports: ${imports.map((i) => (Array.isArray(i) ? i.join(' ') : String(i))).join(', ')}`);
