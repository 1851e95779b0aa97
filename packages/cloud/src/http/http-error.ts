import type { z } from 'zod';

/** A request that cannot be served as sent; becomes a 4xx JSON answer `{error: {code, message}}`. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

export const DEFAULT_MAX_BODY_BYTES = 64 * 1024;

/** Validate query or body input with zod; a failure is a 400 naming each bad field. */
export function validate<T>(schema: z.ZodType<T>, value: unknown, code: 'INVALID_QUERY' | 'INVALID_BODY'): T {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const what = code === 'INVALID_QUERY' ? 'query' : 'body';
  const detail = parsed.error.issues
    .map((i) => `${i.path.map(String).join('.') || what}: ${i.message}`)
    .join('; ');
  throw new HttpError(400, code, detail);
}
