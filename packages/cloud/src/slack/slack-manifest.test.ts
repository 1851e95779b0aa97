import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { App } from '@slack/bolt';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createSlackApp } from './slack-app.js';
import {
  SLACK_ACTION_IDS,
  SLACK_BOT_SCOPES,
  SLACK_EVENT_SUBSCRIPTIONS,
  SLACK_SLASH_COMMAND,
  slackManifest,
} from './slack-manifest.js';

const repoRoot = fileURLToPath(new URL('../../../../', import.meta.url));

/** Slack's documented scope for each bot event the manifest subscribes to. */
const EVENT_SCOPE: Record<string, string> = {
  app_mention: 'app_mentions:read',
  'message.channels': 'channels:history',
  'message.groups': 'groups:history',
  'message.im': 'im:history',
  'message.mpim': 'mpim:history',
};

/** Slack's documented scopes for the Web API methods the cloud calls (any one of a list suffices per conversation type). */
const METHOD_SCOPES: Record<string, readonly string[]> = {
  'auth.test': [],
  'chat.postMessage': ['chat:write'],
  'chat.update': ['chat:write'],
  'chat.postEphemeral': ['chat:write'],
  'reactions.add': ['reactions:write'],
  'reactions.remove': ['reactions:write'],
  'users.info': ['users:read'],
  'conversations.info': ['channels:read', 'groups:read', 'im:read'],
  'conversations.replies': ['channels:history', 'groups:history', 'im:history', 'mpim:history'],
  'files.uploadV2': ['files:write'],
  'files.info': ['files:read'],
};

function productionSources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) return productionSources(full);
    return e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') ? [full] : [];
  });
}

/** What createSlackApp registers with Bolt, seen through Bolt's own registration methods. */
async function registrations() {
  const events = vi.spyOn(App.prototype, 'event');
  const commands = vi.spyOn(App.prototype, 'command');
  const actions = vi.spyOn(App.prototype, 'action');
  await createSlackApp({
    botToken: 'xoxb-test',
    appToken: 'xapp-test',
    handler: { handle: async () => {} },
  });
  const names = (spy: { mock: { calls: unknown[][] } }) => spy.mock.calls.map((c) => String(c[0]));
  return { events: names(events), commands: names(commands), actions: names(actions) };
}

describe('Slack app manifest', () => {
  afterEach(() => vi.restoreAllMocks());

  it('slack/manifest.json in the repository is the one the code renders (bematic slack manifest)', () => {
    const file = JSON.parse(readFileSync(path.join(repoRoot, 'slack', 'manifest.json'), 'utf8'));
    expect(file).toEqual(slackManifest());
  });

  it('subscribes to every event, and offers the command and interactivity, the Bolt app listens for', async () => {
    const registered = await registrations();
    const manifest = slackManifest();
    expect(new Set(registered.events)).toEqual(new Set(Object.keys(SLACK_EVENT_SUBSCRIPTIONS)));
    for (const event of registered.events) {
      for (const sub of SLACK_EVENT_SUBSCRIPTIONS[event] ?? []) {
        expect(manifest.settings.event_subscriptions.bot_events).toContain(sub);
      }
    }
    expect(registered.commands).toEqual([SLACK_SLASH_COMMAND.command]);
    expect(manifest.features.slash_commands.map((c) => c.command)).toEqual(registered.commands);
    expect([...registered.actions].sort()).toEqual([...SLACK_ACTION_IDS].sort());
    expect(manifest.settings.interactivity.is_enabled).toBe(true);
    // Direct messages reach the app only when its Messages tab accepts them.
    expect(manifest.features.app_home).toMatchObject({
      messages_tab_enabled: true,
      messages_tab_read_only_enabled: false,
    });
  });

  it('grants the scope of every subscribed event and of every Web API method the cloud calls', () => {
    const scopes = new Set(slackManifest().oauth_config.scopes.bot);
    for (const event of slackManifest().settings.event_subscriptions.bot_events) {
      expect(EVENT_SCOPE[event], `scope for ${event}`).toBeDefined();
      expect(scopes).toContain(EVENT_SCOPE[event]);
    }
    const called = new Set<string>();
    for (const file of productionSources(path.join(repoRoot, 'packages', 'cloud', 'src'))) {
      for (const m of readFileSync(file, 'utf8').matchAll(/\bclient\.([a-z]+)\.([a-zA-Z0-9]+)\(/g)) {
        called.add(`${m[1]}.${m[2]}`);
      }
    }
    expect(called).toContain('chat.postMessage');
    for (const method of called) {
      const needed = METHOD_SCOPES[method];
      expect(needed, `${method}: add its scope to SLACK_BOT_SCOPES and METHOD_SCOPES`).toBeDefined();
      for (const scope of needed ?? []) expect(scopes, `${method} needs ${scope}`).toContain(scope);
    }
    // Private channels and DMs, not only public channels (issue: the README's scopes missed them).
    for (const scope of ['groups:history', 'im:history', 'files:read', 'chat:write', 'commands'])
      expect(scopes).toContain(scope);
    expect(new Set(SLACK_BOT_SCOPES.map((s) => s.scope)).size).toBe(SLACK_BOT_SCOPES.length);
  });

  it('the README names every scope and event of the manifest', () => {
    const readme = readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
    const manifest = slackManifest();
    for (const name of [
      ...manifest.oauth_config.scopes.bot,
      ...manifest.settings.event_subscriptions.bot_events,
    ])
      expect(readme).toContain(`\`${name}\``);
  });

  it('Socket Mode by default; HTTP mode posts events, the command and buttons to the request URL', () => {
    const socket = slackManifest();
    expect(socket.settings.socket_mode_enabled).toBe(true);
    expect(JSON.stringify(socket)).not.toContain('request_url');

    const http = slackManifest({ requestUrl: 'https://bematic.example.com', name: 'Bem' });
    const url = 'https://bematic.example.com/slack/events';
    expect(http.settings).toMatchObject({
      socket_mode_enabled: false,
      event_subscriptions: { request_url: url },
      interactivity: { is_enabled: true, request_url: url },
    });
    expect(http.features.slash_commands[0]?.url).toBe(url);
    expect(http.features.bot_user.display_name).toBe('Bem');
    expect(
      slackManifest({ requestUrl: 'https://x.example/custom/path' }).settings.interactivity.request_url,
    ).toBe('https://x.example/custom/path');
    expect(() => slackManifest({ requestUrl: 'not a url' })).toThrow();
  });
});
