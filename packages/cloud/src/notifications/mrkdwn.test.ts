import { describe, expect, it } from 'vitest';
import { markdownToMrkdwn, mrkdwnToPlain } from './mrkdwn.js';
import { splitIntoSections, truncateText } from './truncate.js';

describe('markdownToMrkdwn', () => {
  it.each([
    ['**bold** and *it*', '*bold* and _it_'],
    ['## Summary', '*Summary*'],
    ['# **Done**', '*Done*'],
    ['see [the docs](https://x.dev/a?b=1&c=2)', 'see <https://x.dev/a?b=1&amp;c=2|the docs>'],
    ['- one\n  - two', '• one\n    ◦ two'],
    ['a < b && c > d', 'a &lt; b &amp;&amp; c &gt; d'],
    ['~~gone~~', '~gone~'],
    ['use `**not bold**` here', 'use `**not bold**` here'],
    ['```ts\nconst a = **b** < 1;\n```', '```\nconst a = **b** &lt; 1;\n```'],
  ])('%j', (md, expected) => {
    expect(markdownToMrkdwn(md)).toBe(expected);
  });

  it('closes an unterminated fence', () => {
    expect(markdownToMrkdwn('```\ncode')).toBe('```\ncode\n```');
  });
});

describe('truncation', () => {
  it('leaves short text alone', () => {
    expect(truncateText('short', 3000)).toBe('short');
  });

  it('cuts at a paragraph boundary and says how much is missing', () => {
    const para = 'word '.repeat(100).trim();
    const text = Array.from({ length: 20 }, () => para).join('\n\n');
    const out = truncateText(text, 3000);
    expect(out.length).toBeLessThanOrEqual(3000);
    const kept = out.slice(0, out.lastIndexOf('\n…'));
    expect(kept.endsWith('word')).toBe(true);
    const missing = Number(/truncated, (\d+) more characters/.exec(out)?.[1]);
    expect(kept.length + missing).toBeGreaterThanOrEqual(text.length - 2);
  });

  it('closes a code fence it cut through', () => {
    const text = `intro\n\n\`\`\`\n${'line of code\n'.repeat(400)}\`\`\``;
    const out = truncateText(text, 1000);
    expect((out.match(/```/g) ?? []).length % 2).toBe(0);
  });

  it('splits into sections under the limit, re-opening fences', () => {
    const text = `${`\`\`\`\n${'x'.repeat(50)}\n`.repeat(1) + `${'y'.repeat(80)}\n`.repeat(100)}\`\`\``;
    const chunks = splitIntoSections(text, 3000, 40_000);
    expect(chunks.length).toBeGreaterThan(2);
    for (const c of chunks) {
      expect(c.length).toBeLessThanOrEqual(3000);
      expect((c.match(/```/g) ?? []).length % 2).toBe(0);
    }
  });
});

describe('mrkdwnToPlain', () => {
  it.each([
    ['Archived task `task_e968ab` as `arch_1`.', 'Archived task task_e968ab as arch_1.'],
    ['*Bold* and _italic_ and ~struck~', 'Bold and italic and struck'],
    ['snake_case_name stays, 2*3*4 stays', 'snake_case_name stays, 2*3*4 stays'],
    ['see <https://x.dev/a|the docs> or <https://x.dev/b>', 'see the docs or https://x.dev/b'],
    ['ask <@U1> in <#C1|general>', 'ask <@U1> in <#C1|general>'],
    ['a &lt; b', 'a &lt; b'],
  ])('%j', (mrkdwn, plain) => {
    expect(mrkdwnToPlain(mrkdwn)).toBe(plain);
  });
});
