import { AGENT_SETTINGS } from '@bematic/agent';
import { CLOUD_SETTINGS } from '@bematic/cloud';
import type { Setting } from '@bematic/protocol';
import type { Command } from 'commander';
import { table } from './shared.js';

function rows(settings: readonly Setting[]) {
  return settings.map((s) => {
    const value = process.env[s.name];
    return {
      variable: s.name,
      default: s.default || s.defaultDoc || null,
      meaning: s.doc,
      current: s.secret ? (value ? '(set)' : null) : (value ?? null),
    };
  });
}

export function registerConfigCommand(program: Command): void {
  program
    .command('config')
    .description('List every setting (environment variable), its default and meaning')
    .action(() => {
      console.log('Cloud (bematic cloud / up)\n');
      console.log(table(rows(CLOUD_SETTINGS)));
      console.log('\nAgent (bematic agent)\n');
      console.log(table(rows(AGENT_SETTINGS)));
      console.log('\nPassed through to Claude Code: ANTHROPIC_API_KEY, ANTHROPIC_BASE_URL.');
    });
}
