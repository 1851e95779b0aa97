import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { registerProject, type Task } from '@bematic/cloud';
import { SYSTEM_AGENT_ID, startTestSystem, turn } from '@bematic/testkit';
import type { Command } from 'commander';
import { createCliLogger } from '../local/logger.js';
import { onShutdown } from './shared.js';

const AUTH_BEFORE = `export function login(user, password) {
  // BUG: compares the password with itself
  return user && password === password;
}
`;
const AUTH_AFTER = `export function login(user, password) {
  return Boolean(user) && password === user.passwordHash;
}
`;

/** What the scripted model does in the demo: read, fix, test, summarise. */
const DEMO_SCRIPT = [
  turn.textThenTool("I'll look at the login code first.", 'Read', { file_path: 'auth.ts' }),
  turn.textThenTool('The password is compared with itself. Fixing it.', 'Edit', {
    file_path: 'auth.ts',
    old_string: '  // BUG: compares the password with itself\n  return user && password === password;',
    new_string: '  return Boolean(user) && password === user.passwordHash;',
  }),
  turn.textThenTool('Now a quick check that the module still parses.', 'Bash', {
    command: 'node --check auth.ts 2>/dev/null || echo "checked"',
    description: 'Check the module',
  }),
  turn.text(
    '## Fixed the login bug\n\n**Cause:** `login()` compared the password with **itself**, so any password was accepted.\n\n- `auth.ts`: compare against `user.passwordHash`\n- ran a syntax check',
    { usage: { input_tokens: 5200, output_tokens: 830, cache_read_input_tokens: 12000 } },
  ),
];

export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description(
      'A full scripted run: Slack emulator → cloud → agent → Claude Code → scripted model; prints the thread',
    )
    .option('--serve', 'keep the system running afterwards so you can explore the dashboard and console')
    .option('--verbose', 'show logs')
    .action(async (opts: { serve?: boolean; verbose?: boolean }) => {
      const logger = createCliLogger(opts.verbose ? 'info' : 'silent');
      process.stdout.write('Starting the Slack emulator, scripted model, cloud and agent… ');
      const system = await startTestSystem({
        script: DEMO_SCRIPT,
        logger,
        ...(opts.serve && { settings: { PORT: process.env.PORT ?? '3000' } }),
      });
      console.log('ready.\n');
      await writeFile(path.join(system.projectDir, 'auth.ts'), AUTH_BEFORE);

      const finished = new Promise<Task>((resolve) => {
        for (const e of ['task.completed', 'task.failed', 'task.cancelled'] as const) {
          system.cloud.events.on(e, ({ task }) => resolve(task));
        }
      });
      system.emulator.addUser({ id: 'U0ALICE', name: 'alice', realName: 'Alice' });
      const message = await system.emulator.mention({
        user: 'U0ALICE',
        channel: system.channel,
        text: 'code fix the login bug in auth.ts',
      });
      const task = await finished;
      await system.cloud.notifications.idle();

      console.log(`#webapp — thread of ${message.ts}\n`);
      console.log(system.emulator.renderThread(system.channel, message.ts));
      console.log(`\nTask ${task.id}: ${task.status}. auth.ts on disk is now:\n`);
      const { readFile } = await import('node:fs/promises');
      const after = await readFile(path.join(system.projectDir, 'auth.ts'), 'utf8');
      console.log(after.replace(/^/gm, '    '));
      if (after !== AUTH_AFTER) process.exitCode = 1;

      if (opts.serve) {
        await registerProject(system.cloud.repos, {
          channelId: 'console:local',
          agentId: SYSTEM_AGENT_ID,
          localPath: system.projectDir,
          name: 'webapp',
        });
        console.log(
          'The console is linked to the same project; the scripted model answers "Done." from now on.',
        );
        console.log(
          `Dashboard and console: ${await system.cloud.loginUrl()}  (one-time sign-in link; Ctrl-C to stop)`,
        );
        onShutdown(
          () => system.close(),
          () => {},
        );
      } else {
        await system.close();
      }
    });
}
