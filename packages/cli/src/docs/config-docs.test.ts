import { readFileSync } from 'node:fs';
import { AGENT_SETTINGS } from '@bematic/agent';
import { CLOUD_SETTINGS } from '@bematic/cloud';
import type { Setting } from '@bematic/protocol';
import { describe, expect, it } from 'vitest';
import { renderSettingsTables } from './config-docs.js';

const readme = readFileSync(new URL('../../../../README.md', import.meta.url), 'utf8');

describe('README settings tables', () => {
  it('match the cloud and agent schemas (run `npm run docs:config` after changing a setting)', () => {
    expect(renderSettingsTables(readme)).toBe(readme);
  });

  it('list every setting by name, with its default', () => {
    const all: readonly Setting[] = [...CLOUD_SETTINGS, ...AGENT_SETTINGS];
    for (const s of all) {
      const row = readme.split('\n').find((l) => l.startsWith(`| \`${s.name}\` |`));
      expect(row, s.name).toBeDefined();
      if (s.default) expect(row).toContain(`\`${s.default}\``);
    }
  });

  it('refuses a README without the generated regions', () => {
    expect(() => renderSettingsTables('# no tables')).toThrow(/settings:cloud/);
  });
});
