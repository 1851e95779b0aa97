import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startTestSystem, type TestSystem, turn } from '@bematic/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nextTerminal } from './support.js';

const SERVER = fileURLToPath(new URL('./fixtures/mcp-lookup-server.mjs', import.meta.url));

/** A project's MCP servers reach Claude Code: offered to the model, and really called. */
describe('project MCP servers', () => {
  let system: TestSystem;
  beforeAll(async () => {
    system = await startTestSystem();
    system.emulator.addUser({ id: 'U0ALICE', name: 'alice' });
  });
  afterAll(() => system?.close());

  it('offers the server tools and runs them', async () => {
    const calls = path.join(system.root, 'mcp-calls.txt');
    const project = (await system.cloud.repos.projects.findByChannel(system.channel))!;
    await system.cloud.repos.projects.update(project.id, {
      mcpServers: {
        glossary: {
          type: 'stdio',
          command: process.execPath,
          args: [SERVER],
          env: { MCP_CALLS_FILE: calls },
        },
      },
    });
    system.model.setScript([
      turn.toolUse('mcp__glossary__lookup', { word: 'idempotent' }),
      turn.text('Looked it up.'),
    ]);
    const done = nextTerminal(system);
    await system.emulator.mention({
      user: 'U0ALICE',
      channel: system.channel,
      text: 'code explain idempotent',
    });
    const { event } = await done;
    expect(event).toBe('task.completed');
    const [first, second] = system.model.mainLoopRequests();
    expect(first!.tools).toContain('mcp__glossary__lookup');
    expect(await readFile(calls, 'utf8')).toBe('idempotent\n');
    expect(JSON.stringify(second!.messages)).toContain('glossary-42');
  });
});
