import { appendFileSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { type Message, parse, serialize } from '@bematic/protocol';
import { z } from 'zod';

const Line = z.union([
  z.object({ op: z.literal('add'), frame: z.string() }),
  z.object({ op: z.literal('done'), id: z.string() }),
]);

/**
 * Keeps undelivered terminal messages in a JSON-lines journal so a task's
 * result survives an agent restart. Each line is an `add` (the serialized
 * frame) or a `done` (its envelope id); loading replays and compacts it.
 */
export class TerminalStore {
  readonly file: string;

  constructor(stateDir: string) {
    mkdirSync(stateDir, { recursive: true });
    this.file = path.join(stateDir, 'outbound-terminal.jsonl');
  }

  /** Messages added and not yet marked done, in the order they were added. */
  load(): Message[] {
    let text = '';
    try {
      text = readFileSync(this.file, 'utf8');
    } catch {
      return [];
    }
    const live = new Map<string, Message>();
    for (const raw of text.split('\n')) {
      if (raw.trim() === '') continue;
      let json: unknown;
      try {
        json = JSON.parse(raw);
      } catch {
        continue; // a torn last line after a crash
      }
      const line = Line.safeParse(json);
      if (!line.success) continue;
      if (line.data.op === 'done') live.delete(line.data.id);
      else {
        const frame = parse(line.data.frame);
        if (frame.ok) live.set(frame.message.id, frame.message);
      }
    }
    const messages = [...live.values()];
    const tmp = `${this.file}.tmp`;
    writeFileSync(
      tmp,
      messages.map((m) => `${JSON.stringify({ op: 'add', frame: serialize(m) })}\n`).join(''),
    );
    renameSync(tmp, this.file);
    return messages;
  }

  add(message: Message): void {
    appendFileSync(this.file, `${JSON.stringify({ op: 'add', frame: serialize(message) })}\n`);
  }

  done(messageId: string): void {
    appendFileSync(this.file, `${JSON.stringify({ op: 'done', id: messageId })}\n`);
  }
}
