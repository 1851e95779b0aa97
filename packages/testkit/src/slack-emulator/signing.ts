import { createHmac } from 'node:crypto';

/** Slack's v0 request signature: HMAC-SHA256 over "v0:<timestamp>:<raw body>" with the signing secret. */
export function signSlackRequest(signingSecret: string, timestampSec: number, rawBody: string): string {
  const digest = createHmac('sha256', signingSecret).update(`v0:${timestampSec}:${rawBody}`).digest('hex');
  return `v0=${digest}`;
}

export type HttpPayload = Record<string, unknown>;

/** Encodes a payload the way Slack posts it: events as JSON, slash commands as a form, interactions as payload=<json>. */
export function encodeHttpPayload(payload: HttpPayload): { body: string; contentType: string } {
  if (payload.type === 'event_callback' || payload.type === 'url_verification') {
    return { body: JSON.stringify(payload), contentType: 'application/json' };
  }
  if (typeof payload.command === 'string') {
    const form = new URLSearchParams();
    for (const [key, value] of Object.entries(payload)) {
      if (value !== undefined && value !== null) form.set(key, String(value));
    }
    return { body: form.toString(), contentType: 'application/x-www-form-urlencoded' };
  }
  return {
    body: new URLSearchParams({ payload: JSON.stringify(payload) }).toString(),
    contentType: 'application/x-www-form-urlencoded',
  };
}
