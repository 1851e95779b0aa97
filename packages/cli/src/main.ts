#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { registerConfigCommand } from './commands/config.js';
import { registerDemoCommand } from './commands/demo.js';
import { registerKeysCommand } from './commands/keys.js';
import { registerMigrateCommand } from './commands/migrate.js';
import { registerProjectsCommand } from './commands/projects.js';
import { registerRunCommands } from './commands/run.js';
import { registerSlackCommand } from './commands/slack.js';

const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

const program = new Command()
  .name('bematic')
  .version(version, '-V, --version', 'print the version')
  .description('Drive Claude Code agents on your own machines from Slack.')
  .showHelpAfterError('(run `bematic --help` for usage)');

registerRunCommands(program);
registerKeysCommand(program);
registerProjectsCommand(program);
registerMigrateCommand(program);
registerDemoCommand(program);
registerConfigCommand(program);
registerSlackCommand(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
