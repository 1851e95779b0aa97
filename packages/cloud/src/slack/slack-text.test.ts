import { describe, expect, it } from 'vitest';
import { CachedSlackNames, decodeEntities, decodeSlackText, type SlackNames } from './slack-text.js';

const names: SlackNames = {
  userName: async (id) => ({ U0123: 'Ada' })[id],
  channelName: async (id) => ({ C0999: 'general', C0777: 'ops-alerts' })[id],
};

describe('decodeSlackText', () => {
  it.each([
    ['a &lt; b &amp;&amp; c &gt; d', 'a < b && c > d'],
    ['&amp;lt;script&amp;gt;', '&lt;script&gt;'],
    ['ask <@U0123> and <@U0404>', 'ask @Ada and @U0404'],
    ['named <@U0404|bob>', 'named @bob'],
    ['see <#C0999|general> and <#C0777>', 'see #general and #ops-alerts'],
    ['<!here> <!channel> <!subteam^S1|@backend>', '@here @channel @backend'],
    ['docs at <https://example.com/a?b=1&amp;c=2>', 'docs at https://example.com/a?b=1&c=2'],
    [
      '<https://example.com|example.com> <https://x.dev/p|the page>',
      'https://example.com the page (https://x.dev/p)',
    ],
    ['mail <mailto:ada@example.com|ada@example.com>', 'mail ada@example.com'],
    ['line one\nline <two>', 'line one\nline two'],
  ])('%s', async (wire, plain) => {
    expect(await decodeSlackText(wire, names)).toBe(plain);
  });

  it('decodes entities exactly once', () => {
    expect(decodeEntities('&amp;amp;')).toBe('&amp;');
  });

  it('looks each name up once while it is fresh', async () => {
    let now = 0;
    const calls: string[] = [];
    const cached = new CachedSlackNames(
      {
        user: async (id) => {
          calls.push(id);
          return 'Ada';
        },
        channel: async () => undefined,
      },
      1000,
      () => now,
    );
    await decodeSlackText('<@U1> <@U1> <@U1>', cached);
    expect(calls).toEqual(['U1']);
    now = 2000;
    await cached.userName('U1');
    expect(calls).toEqual(['U1', 'U1']);
  });
});
