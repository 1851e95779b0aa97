// Bundles the dashboard into dist/: index.html plus assets/app.js and assets/app.css. No network, no CDN.
import { copyFile, mkdir, rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
await rm(here('./dist'), { recursive: true, force: true });
await mkdir(here('./dist/assets'), { recursive: true });
await build({
  entryPoints: { app: here('./src/main.ts'), styles: here('./src/styles.css') },
  outdir: here('./dist/assets'),
  bundle: true,
  minify: true,
  sourcemap: true,
  format: 'esm',
  target: ['es2022'],
  legalComments: 'linked',
  logLevel: 'warning',
});
await copyFile(here('./src/index.html'), here('./dist/index.html'));
