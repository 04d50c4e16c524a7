// Bundle the plan page's 3D view into ../static/planning/planner/planner.js (a fixed name the
// template points at; the served copy is hashed and compressed by the static files storage).
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { build } from 'esbuild';

const here = path.dirname(fileURLToPath(import.meta.url));
const outfile = path.resolve(here, '../static/planning/planner/planner.js');

await build({
  entryPoints: [path.resolve(here, 'src/main.js')],
  bundle: true,
  // minified on purpose: a county link pays for every byte
  minify: true,
  format: 'iife',
  target: 'es2020',
  sourcemap: false,
  legalComments: 'eof',
  logLevel: 'warning',
  outfile,
});
console.log(`planner built into ${outfile}`);
