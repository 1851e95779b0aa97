import { describe, expect, it } from 'vitest';
import { ConfigError, loadCloudConfig, slackMode } from './config.js';

describe('loadCloudConfig', () => {
  it('has a sensible default for everything', () => {
    const cfg = loadCloudConfig({});
    expect(cfg).toMatchObject({
      DATABASE_URL: 'sqlite:./.bematic/bematic.db',
      PORT: 3000,
      HOST: '127.0.0.1',
    });
    expect(slackMode(cfg)).toBe('off');
  });

  it('names every bad variable at once', () => {
    try {
      loadCloudConfig({ PORT: 'eighty', DATABASE_URL: 'mysql://x', BEMATIC_DEFAULT_ROLE: 'root' });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      const { problems } = err as ConfigError;
      expect(problems.map((p) => p.split(':')[0])).toEqual(['DATABASE_URL', 'PORT', 'BEMATIC_DEFAULT_ROLE']);
    }
  });

  it('chooses the Slack mode from the tokens, and refuses half a configuration', () => {
    expect(slackMode(loadCloudConfig({ SLACK_BOT_TOKEN: 'xoxb-1', SLACK_APP_TOKEN: 'xapp-1' }))).toBe(
      'socket',
    );
    expect(slackMode(loadCloudConfig({ SLACK_BOT_TOKEN: 'xoxb-1', SLACK_SIGNING_SECRET: 's' }))).toBe('http');
    expect(() => loadCloudConfig({ SLACK_BOT_TOKEN: 'xoxb-1' })).toThrow(
      /SLACK_APP_TOKEN .* or SLACK_SIGNING_SECRET/,
    );
    expect(() => loadCloudConfig({ SLACK_APP_TOKEN: 'xapp-1' })).toThrow(/SLACK_BOT_TOKEN is missing/);
    expect(() => loadCloudConfig({ SLACK_BOT_TOKEN: 'xapp-wrong', SLACK_APP_TOKEN: 'xapp-1' })).toThrow(
      /SLACK_BOT_TOKEN/,
    );
  });

  it('treats an empty variable as unset', () => {
    expect(loadCloudConfig({ PORT: '' }).PORT).toBe(3000);
  });
});
