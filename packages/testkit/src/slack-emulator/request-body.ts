import type { IncomingMessage } from 'node:http';

export async function readRaw(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req)
    chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
  return Buffer.concat(chunks);
}

export type FieldValue = string | Buffer;

/**
 * Parses a Web API request body the way Slack does: JSON, url-encoded or multipart.
 * @slack/web-api sends url-encoded forms with nested values JSON-encoded, and multipart when a file is attached.
 */
export async function parseBody(
  raw: Buffer,
  contentType: string | undefined,
): Promise<Map<string, FieldValue>> {
  const fields = new Map<string, FieldValue>();
  const type = (contentType ?? '').toLowerCase();
  if (raw.length === 0) return fields;
  if (type.startsWith('application/json')) {
    const parsed: unknown = JSON.parse(raw.toString('utf8'));
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) {
      for (const [key, value] of Object.entries(parsed)) {
        if (value === undefined || value === null) continue;
        fields.set(key, typeof value === 'string' ? value : JSON.stringify(value));
      }
    }
    return fields;
  }
  if (type.startsWith('multipart/form-data')) {
    const form = await new Request('http://emulator.local/', {
      method: 'POST',
      headers: { 'content-type': contentType ?? '' },
      body: raw,
    }).formData();
    for (const [key, value] of form.entries()) {
      fields.set(key, typeof value === 'string' ? value : Buffer.from(await value.arrayBuffer()));
    }
    return fields;
  }
  for (const [key, value] of new URLSearchParams(raw.toString('utf8'))) fields.set(key, value);
  return fields;
}

/** A field that may hold JSON (blocks, view, files) whether it arrived as a JSON body or a form. */
export function jsonField(fields: Map<string, FieldValue>, key: string): unknown {
  const value = fields.get(key);
  if (value === undefined) return undefined;
  const text = typeof value === 'string' ? value : value.toString('utf8');
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export function stringField(fields: Map<string, FieldValue>, key: string): string | undefined {
  const value = fields.get(key);
  if (value === undefined) return undefined;
  return typeof value === 'string' ? value : value.toString('utf8');
}
