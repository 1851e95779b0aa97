/**
 * Slack message text → what the person wrote, decoded once, here, for everything that reads it
 * (the command parser, the prompt, the thread context). Slack sends `&`, `<`, `>` as entities and
 * wraps mentions, channels and links in `<…>`; Claude should read "a < b && c", "@Ada" and
 * "#general", not the wire format.
 */

export interface SlackNames {
  /** A user's display name, or undefined when it cannot be found. */
  userName(userId: string): Promise<string | undefined>;
  /** A channel's name, or undefined when it cannot be found. */
  channelName(channelId: string): Promise<string | undefined>;
}

const ENTITIES: Record<string, string> = { '&lt;': '<', '&gt;': '>', '&amp;': '&' };

/** Only the three entities Slack produces; `&amp;lt;` is a literal "&lt;" the person typed. */
export function decodeEntities(text: string): string {
  return text.replace(/&(?:lt|gt|amp);/g, (e) => ENTITIES[e] ?? e);
}

const SPECIAL = /^!(here|channel|everyone)(?:\|.*)?$/;

async function decodeAngle(inner: string, names: SlackNames): Promise<string> {
  const [target = '', label] = splitLabel(inner);
  if (target.startsWith('@')) {
    const id = target.slice(1);
    const name = label || (await names.userName(id).catch(() => undefined));
    return `@${name ?? id}`;
  }
  if (target.startsWith('#')) {
    const id = target.slice(1);
    const name = label || (await names.channelName(id).catch(() => undefined));
    return `#${name ?? id}`;
  }
  const special = SPECIAL.exec(inner);
  if (special) return `@${special[1]}`;
  if (target.startsWith('!subteam^')) return label ?? '@group';
  if (target.startsWith('!date^')) return label ?? '';
  if (target.startsWith('!')) return label ?? target.slice(1);
  // A link: its URL, with the label in front when it says something the URL does not.
  const url = decodeEntities(target);
  const shown = label ? decodeEntities(label) : undefined;
  const bare = url.replace(/^mailto:/, '').replace(/^https?:\/\//, '');
  if (!shown || shown === url || shown === bare || `${shown}/` === bare) return url.replace(/^mailto:/, '');
  return `${shown} (${url})`;
}

function splitLabel(inner: string): [string, string | undefined] {
  const bar = inner.indexOf('|');
  return bar === -1 ? [inner, undefined] : [inner.slice(0, bar), inner.slice(bar + 1)];
}

/** Decodes Slack's wire format into plain text. */
export async function decodeSlackText(text: string, names: SlackNames): Promise<string> {
  const parts: string[] = [];
  let at = 0;
  for (const match of text.matchAll(/<([^<>\n]+)>/g)) {
    const index = match.index ?? 0;
    parts.push(decodeEntities(text.slice(at, index)));
    parts.push(await decodeAngle(match[1] ?? '', names));
    at = index + match[0].length;
  }
  parts.push(decodeEntities(text.slice(at)));
  return parts.join('');
}

/** Names looked up through the Web API, remembered for a while so a busy channel costs few calls. */
export class CachedSlackNames implements SlackNames {
  private readonly users = new Map<string, { name: string | undefined; at: number }>();
  private readonly channels = new Map<string, { name: string | undefined; at: number }>();

  constructor(
    private readonly lookup: {
      user(id: string): Promise<string | undefined>;
      channel(id: string): Promise<string | undefined>;
    },
    private readonly ttlMs = 10 * 60_000,
    private readonly now: () => number = Date.now,
    private readonly maxEntries = 5000,
  ) {}

  userName(userId: string): Promise<string | undefined> {
    return this.cached(this.users, userId, () => this.lookup.user(userId));
  }

  channelName(channelId: string): Promise<string | undefined> {
    return this.cached(this.channels, channelId, () => this.lookup.channel(channelId));
  }

  private async cached(
    map: Map<string, { name: string | undefined; at: number }>,
    key: string,
    load: () => Promise<string | undefined>,
  ): Promise<string | undefined> {
    const hit = map.get(key);
    if (hit && this.now() - hit.at < this.ttlMs) return hit.name;
    const name = await load().catch(() => undefined);
    if (map.size >= this.maxEntries) map.delete(map.keys().next().value as string);
    map.set(key, { name, at: this.now() });
    return name;
  }
}
