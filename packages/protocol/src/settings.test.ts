import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineSettings, readSettings, settingSchemas, settingsMarkdown } from './settings.js';

const SETTINGS = defineSettings([
  { name: 'A_PORT', schema: settingSchemas.int(1, 65535), default: '3000', doc: 'a port' },
  { name: 'A_NAME', schema: settingSchemas.required('A_NAME', 'who'), defaultDoc: 'required', doc: 'x | y' },
  { name: 'A_LIMIT', schema: settingSchemas.boundedInt('A_LIMIT', 1, 10), default: '5', doc: 'limit' },
  { name: 'A_OPT', schema: z.string().optional(), doc: 'optional' },
]);

describe('readSettings', () => {
  it('applies defaults, treats empty as unset, and types each value', () => {
    const r = readSettings(SETTINGS, { A_NAME: 'n', A_PORT: '' });
    expect(r).toEqual({ ok: true, values: { A_PORT: 3000, A_NAME: 'n', A_LIMIT: 5, A_OPT: undefined } });
  });

  it('collects every problem, each starting with the variable name', () => {
    const r = readSettings(SETTINGS, { A_PORT: 'x', A_LIMIT: '11' });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.problems).toHaveLength(3);
    expect(r.problems[0]).toMatch(/^A_PORT: .*\(got "x"\)$/);
    expect(r.problems[1]).toBe('A_NAME is required (who)');
    expect(r.problems[2]).toBe('A_LIMIT must be an integer from 1 to 10, got "11"');
  });

  it('lets overrides win over the environment', () => {
    const r = readSettings(SETTINGS, { A_NAME: 'n', A_PORT: '1' }, { A_PORT: '2' });
    expect(r.ok && r.values.A_PORT).toBe(2);
  });
});

describe('settingsMarkdown', () => {
  it('renders one escaped row per setting with its default or its description', () => {
    expect(settingsMarkdown(SETTINGS).split('\n')).toEqual([
      '| variable | default | meaning |',
      '| --- | --- | --- |',
      '| `A_PORT` | `3000` | a port |',
      '| `A_NAME` | required | x \\| y |',
      '| `A_LIMIT` | `5` | limit |',
      '| `A_OPT` | — | optional |',
    ]);
  });
});
