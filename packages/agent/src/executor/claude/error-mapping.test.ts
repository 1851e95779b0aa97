import { describe, expect, it } from 'vitest';
import { mapModelError } from './error-mapping.js';

describe('mapModelError', () => {
  it.each([
    [429, undefined, 'RATE_LIMITED', true],
    [529, undefined, 'MODEL_OVERLOADED', true],
    [500, undefined, 'MODEL_SERVER_ERROR', true],
    [503, undefined, 'MODEL_SERVER_ERROR', true],
    [401, undefined, 'AUTH_FAILED', false],
    [403, undefined, 'AUTH_FAILED', false],
    [400, undefined, 'INVALID_REQUEST', false],
    [null, 'overloaded', 'MODEL_OVERLOADED', true],
    [null, 'authentication_failed', 'AUTH_FAILED', false],
    [undefined, undefined, 'EXECUTION_FAILED', false],
  ] as const)('status %s kind %s → %s', (status, kind, code, recoverable) => {
    expect(mapModelError(status, kind, 'something broke')).toEqual({ errorCode: code, recoverable });
  });

  it('falls back to the text', () => {
    expect(mapModelError(undefined, undefined, 'API Error: 529 Overloaded').errorCode).toBe(
      'MODEL_OVERLOADED',
    );
    expect(mapModelError(undefined, undefined, 'Invalid API key').errorCode).toBe('AUTH_FAILED');
    // Claude Code without a key or a login: what to set, not a wrong key.
    expect(mapModelError(null, 'authentication_failed', 'Not logged in · Please run /login')).toEqual({
      errorCode: 'CREDENTIALS_MISSING',
      recoverable: false,
    });
  });
});
