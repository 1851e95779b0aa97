import type { Kysely, Selectable, Updateable } from 'kysely';
import type { ConsoleMessagesTable, Schema } from '../schema.js';
import { decodeStringArray, encodeJson, stripNul } from './codec.js';
import type { ConsoleMessageRepository, StoredConsoleMessage } from './types.js';

function toMessage(row: Selectable<ConsoleMessagesTable>): StoredConsoleMessage {
  const ref = (column: string) => ({ table: 'console_messages', column, rowId: row.ts });
  let blocks: unknown[] | null = null;
  if (row.blocks !== null) {
    const parsed: unknown = JSON.parse(row.blocks);
    blocks = Array.isArray(parsed) ? parsed : null;
  }
  return {
    channelId: row.channel_id,
    ts: row.ts,
    threadTs: row.thread_ts,
    userId: row.user_id,
    text: row.text,
    blocks,
    reactions: decodeStringArray(row.reactions, ref('reactions')),
    visibleTo: row.visible_to,
    postedAt: row.posted_at,
    editedAt: row.edited_at,
  };
}

export class KyselyConsoleMessageRepository implements ConsoleMessageRepository {
  constructor(private readonly db: Kysely<Schema>) {}

  async insert(m: StoredConsoleMessage): Promise<void> {
    await this.db
      .insertInto('console_messages')
      .values({
        ts: m.ts,
        channel_id: m.channelId,
        thread_ts: m.threadTs,
        user_id: m.userId,
        text: stripNul(m.text),
        blocks: m.blocks === null ? null : encodeJson(m.blocks),
        reactions: encodeJson(m.reactions),
        visible_to: m.visibleTo,
        posted_at: m.postedAt,
        edited_at: m.editedAt,
      })
      .onConflict((oc) => oc.column('ts').doNothing())
      .execute();
  }

  async update(
    ts: string,
    patch: Partial<Pick<StoredConsoleMessage, 'text' | 'blocks' | 'reactions' | 'editedAt'>>,
  ): Promise<boolean> {
    const set: Updateable<ConsoleMessagesTable> = {};
    if (patch.text !== undefined) set.text = stripNul(patch.text);
    if (patch.blocks !== undefined) set.blocks = patch.blocks === null ? null : encodeJson(patch.blocks);
    if (patch.reactions !== undefined) set.reactions = encodeJson(patch.reactions);
    if (patch.editedAt !== undefined) set.edited_at = patch.editedAt;
    if (Object.keys(set).length === 0) return true;
    const res = await this.db
      .updateTable('console_messages')
      .set(set)
      .where('ts', '=', ts)
      .executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  async find(ts: string): Promise<StoredConsoleMessage | undefined> {
    const row = await this.db
      .selectFrom('console_messages')
      .selectAll()
      .where('ts', '=', ts)
      .executeTakeFirst();
    return row ? toMessage(row) : undefined;
  }

  async replies(channelId: string, rootTs: string, maxReplies: number): Promise<StoredConsoleMessage[]> {
    const rows = await this.db
      .selectFrom('console_messages')
      .selectAll()
      .where('channel_id', '=', channelId)
      .where('thread_ts', '=', rootTs)
      .orderBy('ts', 'desc')
      .limit(maxReplies)
      .execute();
    return rows.reverse().map(toMessage);
  }

  async recentThreads(
    channelId: string,
    limit: number,
    maxReplies: number,
  ): Promise<Array<{ root: StoredConsoleMessage; replies: StoredConsoleMessage[] }>> {
    const roots = await this.db
      .selectFrom('console_messages')
      .selectAll()
      .where('channel_id', '=', channelId)
      .where('thread_ts', 'is', null)
      .orderBy('ts', 'desc')
      .limit(limit)
      .execute();
    if (roots.length === 0) return [];
    const replies = await this.db
      .selectFrom('console_messages')
      .selectAll()
      .where('channel_id', '=', channelId)
      .where(
        'thread_ts',
        'in',
        roots.map((r) => r.ts),
      )
      .orderBy('ts', 'asc')
      .execute();
    const byThread = new Map<string, StoredConsoleMessage[]>();
    for (const r of replies) {
      const list = byThread.get(r.thread_ts ?? '') ?? [];
      list.push(toMessage(r));
      byThread.set(r.thread_ts ?? '', list);
    }
    return roots.reverse().map((root) => ({
      root: toMessage(root),
      replies: (byThread.get(root.ts) ?? []).slice(-maxReplies),
    }));
  }
}
