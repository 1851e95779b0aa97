import { AGENT_SETTINGS } from '@bematic/agent';
import { CLOUD_SETTINGS } from '@bematic/cloud';
import type { Command } from 'commander';
import { table } from './shared.js';

export function registerConfigCommand(program: Command): void {
  program
    .command('config')
    .description('List every setting (environment variable), its default and meaning')
    .action(() => {
      console.log('Cloud (bematic cloud / up)\n');
      console.log(
        table(
          Object.entries(CLOUD_SETTINGS).map(([name, s]) => ({
            variable: name,
            default: s.default ?? null,
            meaning: s.doc,
            current:
              name.includes('TOKEN') || name.includes('SECRET')
                ? process.env[name]
                  ? '(set)'
                  : null
                : (process.env[name] ?? null),
          })),
        ),
      );
      console.log('\nAgent (bematic agent)\n');
      console.log(
        table(
          AGENT_SETTINGS.map((s) => ({
            variable: s.name,
            default: s.required ? '(required)' : (s.default ?? null),
            meaning: s.description,
            current: s.name.includes('KEY')
              ? process.env[s.name]
                ? '(set)'
                : null
              : (process.env[s.name] ?? null),
          })),
        ),
      );
      console.log('\nPassed through to Claude Code: ANTHROPIC_API_KEY, ANTHROPIC_BASE_URL.');
    });
}
