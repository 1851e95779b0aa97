#!/usr/bin/env node
// Committed entry point: npm links bins before the workspace is built, so the link must point at a file
// that already exists in a fresh clone. It loads the compiled CLI, or says how to build it.
import { existsSync } from 'node:fs';

const main = new URL('../dist/main.js', import.meta.url);
if (!existsSync(main)) {
  console.error(
    'bematic is not built yet: run `npm run build` (npm install does it through the prepare script).',
  );
  process.exit(1);
}
await import(main.href);
