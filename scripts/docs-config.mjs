// Regenerates the settings tables in README.md from the cloud and agent schemas.
// `--check` exits 1 instead of writing when the README is out of date.
import { readFileSync, writeFileSync } from 'node:fs';
import { renderSettingsTables } from '../packages/cli/dist/docs/config-docs.js';

const file = new URL('../README.md', import.meta.url);
const readme = readFileSync(file, 'utf8');
const rendered = renderSettingsTables(readme);
if (process.argv.includes('--check')) {
  if (rendered !== readme) {
    console.error('README.md settings tables are out of date: run `npm run docs:config`.');
    process.exit(1);
  }
} else if (rendered !== readme) {
  writeFileSync(file, rendered);
  console.log('README.md settings tables updated.');
}
