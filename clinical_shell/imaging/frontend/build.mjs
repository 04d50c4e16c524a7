// Bundle the viewer into ../static/imaging/viewer/ with fixed entry names so Django templates can
// point at imaging/viewer/viewer.js; workers and codec wasm files land beside it under assets/.
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { build } from 'vite';

const here = path.dirname(fileURLToPath(import.meta.url));
const outDir = path.resolve(here, '../static/imaging/viewer');

await build({
  root: here,
  // relative base: worker and wasm URLs resolve against the module's own URL (STATIC_URL agnostic)
  base: './',
  // node-only branches of the codecs (fs, path) are unused in browsers: their notices are noise
  logLevel: 'error',
  publicDir: false,
  worker: { format: 'es' },
  // a dependency of the DICOM metadata code (xmlbuilder2) extends Node's EventEmitter; in a
  // browser bundle Node built-ins are empty, so map `events` to its browser implementation
  resolve: { alias: { events: path.resolve(here, 'node_modules/events/events.js') } },
  build: {
    outDir,
    emptyOutDir: true,
    target: 'es2022',
    // minified on purpose (a county link pays for every byte; vite's default, stated here so a
    // change of default cannot undo it); the served copy is hashed and brotli-compressed too
    minify: true,
    sourcemap: false,
    chunkSizeWarningLimit: 8000,
    rollupOptions: {
      input: path.resolve(here, 'src/main.js'),
      checks: { pluginTimings: false },
      output: {
        entryFileNames: 'viewer.js',
        chunkFileNames: 'assets/[name]-[hash].js',
        assetFileNames: 'assets/[name]-[hash][extname]',
      },
    },
  },
});
console.log(`viewer built into ${outDir}`);
