import { TASK_ACTION_IDS } from './slack-app.js';

/**
 * What the Slack app must be allowed and subscribed to, in one table: the manifest in `slack/manifest.json`,
 * `bematic slack manifest` and the README are rendered from it, and a test holds it to what the Bolt app
 * registers (events, the slash command, actions) and to the Web API methods the cloud calls.
 */

/** Bot scopes, each with the reason it is needed. */
export const SLACK_BOT_SCOPES: ReadonlyArray<{ scope: string; why: string }> = [
  { scope: 'app_mentions:read', why: 'receive @mentions (app_mention)' },
  { scope: 'chat:write', why: 'post and update the task message, answer ephemerally' },
  { scope: 'commands', why: 'the /bm slash command' },
  { scope: 'reactions:write', why: 'mark the request as being worked on / done' },
  { scope: 'users:read', why: 'resolve @mentions to names, name the app in /bm help' },
  { scope: 'channels:history', why: 'thread replies and thread context in public channels' },
  { scope: 'groups:history', why: 'thread replies and thread context in private channels' },
  { scope: 'im:history', why: 'direct messages to the app' },
  { scope: 'mpim:history', why: 'group direct messages that include the app' },
  { scope: 'channels:read', why: 'resolve #channel links in public channels' },
  { scope: 'groups:read', why: 'resolve #channel links in private channels' },
  { scope: 'im:read', why: 'know a direct message conversation' },
  { scope: 'files:read', why: 'download images and files attached to a request' },
  { scope: 'files:write', why: 'post a branch diff as a file (Show diff)' },
];

/** Bolt listener event → the manifest's bot_events that deliver it. */
export const SLACK_EVENT_SUBSCRIPTIONS: Readonly<Record<string, readonly string[]>> = {
  app_mention: ['app_mention'],
  message: ['message.channels', 'message.groups', 'message.im', 'message.mpim'],
};

export const SLACK_SLASH_COMMAND = {
  command: '/bm',
  description: 'Bematic: status, agents, queue, cancel, pull requests, archive, projects, users',
  usage_hint: 'help | status [task] | agents | queue | cancel <task> | pr <task> | projects | users',
} as const;

/** Every button the app answers; interactivity must be on for them. */
export const SLACK_ACTION_IDS: readonly string[] = TASK_ACTION_IDS;

/** The path Slack posts events, commands and button clicks to in HTTP mode (the cloud mounts the app at /slack). */
export const SLACK_EVENTS_PATH = '/slack/events';

export interface SlackManifestOptions {
  /**
   * HTTP mode: the cloud's public address (`https://bematic.example.com`) or the full request URL; events,
   * the slash command and interactivity all post there. Without it the manifest is for Socket Mode.
   */
  requestUrl?: string;
  /** The app's name, and the bot user people @mention (default BematicManager). */
  name?: string;
}

export interface SlackManifest {
  display_information: {
    name: string;
    description: string;
    background_color: string;
    long_description: string;
  };
  features: {
    app_home: {
      home_tab_enabled: boolean;
      messages_tab_enabled: boolean;
      messages_tab_read_only_enabled: boolean;
    };
    bot_user: { display_name: string; always_online: boolean };
    slash_commands: Array<{
      command: string;
      description: string;
      usage_hint: string;
      should_escape: boolean;
      url?: string;
    }>;
  };
  oauth_config: { scopes: { bot: string[] } };
  settings: {
    event_subscriptions: { bot_events: string[]; request_url?: string };
    interactivity: { is_enabled: boolean; request_url?: string };
    org_deploy_enabled: boolean;
    socket_mode_enabled: boolean;
    token_rotation_enabled: boolean;
  };
}

/** `https://host` → `https://host/slack/events`; a URL with a path of its own is kept as given. */
export function slackRequestUrl(url: string): string {
  const parsed = new URL(url);
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
    throw new Error(`the request URL must be http(s), got ${parsed.protocol}`);
  }
  if (parsed.pathname === '/' || parsed.pathname === '') parsed.pathname = SLACK_EVENTS_PATH;
  return parsed.toString();
}

/** The app manifest (https://api.slack.com/reference/manifests) for Socket Mode, or HTTP mode with a URL. */
export function slackManifest(options: SlackManifestOptions = {}): SlackManifest {
  const name = options.name ?? 'BematicManager';
  const url = options.requestUrl === undefined ? undefined : slackRequestUrl(options.requestUrl);
  const at = url === undefined ? {} : { request_url: url };
  return {
    display_information: {
      name,
      description: 'Claude Code agents on your own machines, driven from Slack.',
      background_color: '#1d2a3a',
      long_description:
        'Mention the app with what to do in plain words; an agent on a machine that holds the repository runs Claude Code in its own git worktree and branch, keeps one message in the thread up to date, and finishes with the result, cost and the files changed. Reply in the thread to continue; /bm for status, queue, pull requests and administration.',
    },
    features: {
      // Direct messages to the app are requests against the person's default project.
      app_home: {
        home_tab_enabled: false,
        messages_tab_enabled: true,
        messages_tab_read_only_enabled: false,
      },
      bot_user: { display_name: name, always_online: true },
      slash_commands: [{ ...SLACK_SLASH_COMMAND, should_escape: true, ...(url ? { url } : {}) }],
    },
    oauth_config: { scopes: { bot: SLACK_BOT_SCOPES.map((s) => s.scope) } },
    settings: {
      event_subscriptions: { bot_events: Object.values(SLACK_EVENT_SUBSCRIPTIONS).flat(), ...at },
      interactivity: { is_enabled: true, ...at },
      org_deploy_enabled: false,
      socket_mode_enabled: url === undefined,
      token_rotation_enabled: false,
    },
  };
}
