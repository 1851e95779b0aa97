import type { Command } from 'commander';
import { iso, table, withRepositories } from './shared.js';

export function registerKeysCommand(program: Command): void {
  const keys = program.command('keys').description('Create, list and revoke agent API keys');

  keys
    .command('create <agent-id>')
    .description('Create a key bound to one agent id (shown once, stored hashed)')
    .option('--label <label>', 'a note to recognise the key by')
    .option('--expires-in-days <days>', 'expire the key after this many days', (v) => {
      const n = Number(v);
      if (!Number.isFinite(n) || n <= 0) throw new Error('--expires-in-days must be a positive number');
      return n;
    })
    .action(async (agentId: string, opts: { label?: string; expiresInDays?: number }) => {
      await withRepositories(async ({ apiKeys }) => {
        const expiresAt = opts.expiresInDays ? Date.now() + opts.expiresInDays * 86_400_000 : null;
        const { key, record } = await apiKeys.create(agentId, {
          label: opts.label ?? null,
          expiresAt,
          actor: 'cli',
        });
        console.log(
          `Created key ${record.id} for agent "${agentId}"${expiresAt ? `, expires ${iso(expiresAt)}` : ''}.`,
        );
        console.log('Give it to the agent as BEMATIC_AGENT_KEY. It will not be shown again:\n');
        console.log(`  ${key}\n`);
      });
    });

  keys
    .command('list')
    .description('List keys (never the keys themselves)')
    .option('--agent <agent-id>', 'only this agent')
    .action(async (opts: { agent?: string }) => {
      await withRepositories(async ({ apiKeys }) => {
        const rows = (await apiKeys.list(opts.agent)).map((k) => ({
          id: k.id,
          agent: k.agentId,
          prefix: k.prefix,
          label: k.label,
          created: iso(k.createdAt),
          expires: iso(k.expiresAt),
          'last used': iso(k.lastUsedAt),
          state:
            k.revokedAt !== null
              ? 'revoked'
              : k.expiresAt !== null && k.expiresAt <= Date.now()
                ? 'expired'
                : 'active',
        }));
        console.log(table(rows));
      });
    });

  keys
    .command('revoke <key-id>')
    .description('Revoke a key; agents using it are refused at their next connection')
    .action(async (id: string) => {
      await withRepositories(async ({ apiKeys }) => {
        if (await apiKeys.revoke(id, 'cli')) console.log(`Revoked ${id}.`);
        else {
          console.error(`No active key with id ${id}.`);
          process.exitCode = 1;
        }
      });
    });
}
