import { SleepExecutor } from '@bematic/agent';
import { BotRegistry, SLASH_COMMANDS } from '@bematic/cloud';
import { blocksToText, startTestSystem, type TestSystem } from '@bematic/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/** `/bm help` as a person reads it in Slack: the app's real name, every command of the table, escaped once. */
describe('/bm help', () => {
  let system: TestSystem;
  const help = async (text: string) => {
    const before = system.emulator.ephemerals('U0DEV').length;
    await system.emulator.slashCommand({ user: 'U0DEV', channel: system.channel, text });
    return system.emulator.waitFor(() => system.emulator.ephemerals('U0DEV')[before]);
  };

  beforeAll(async () => {
    system = await startTestSystem({ executor: () => new SleepExecutor({ durationMs: 0 }) });
    // The bot user as Slack names it: what people see after the @.
    system.emulator.addUser({ id: system.emulator.botUserId, name: 'BematicManager', isBot: true });
  });
  afterAll(() => system?.close());

  it('names the app as Slack shows it and lists every row of the command table, escaped once', async () => {
    const reply = await help('help');
    const mrkdwn = JSON.stringify(reply.blocks ?? []);
    expect(reply.text).toContain('@BematicManager fix the login bug in auth.ts');
    expect(mrkdwn).toContain('@BematicManager fix the login bug in auth.ts');
    expect(`${reply.text}${mrkdwn}`).not.toMatch(/@Bematic\b(?!Manager)/);
    for (const row of SLASH_COMMANDS) {
      const escaped = `/bm ${row.usage}`.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
      expect(mrkdwn).toContain(escaped);
    }
    for (const bot of new BotRegistry().list()) expect(mrkdwn).toContain(`\`${bot.name}\``);
    // Placeholders reach Slack as entities exactly once: no raw <…> (a link to Slack), no &amp;lt;.
    expect(mrkdwn).not.toMatch(/<(?:task-id|bot|what to do|usd|ref|archive-id)>/);
    expect(mrkdwn).not.toContain('&amp;lt;');
    // What the person reads once Slack has rendered the entities.
    const readable = blocksToText(reply.blocks ?? [])
      .replace(/&lt;/g, '<')
      .replace(/&gt;/g, '>');
    expect(readable).toContain('/bm cancel <task-id>');
    expect(readable).toContain('[--budget <usd>]');
  });

  it('an unknown command gets the same help with a note', async () => {
    const reply = await help('frobnicate now');
    const mrkdwn = JSON.stringify(reply.blocks ?? []);
    expect(mrkdwn).toContain('Unknown command `frobnicate`');
    expect(mrkdwn).toContain('/bm help');
    expect(mrkdwn).toContain('@BematicManager');
  });
});
