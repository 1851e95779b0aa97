import { describe, expect, it } from 'vitest';
import { mapModelError, redactSecrets } from './error-mapping.js';

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
  });
});

describe('redactSecrets', () => {
  it('removes known secrets and credential-shaped strings', () => {
    const text =
      'key sk-ant-api03-abcdefgh and xoxb-1234-5678-abcd, Authorization: Bearer abc.def.ghi123, token=hunter2hunter, custom s3cr3t-value';
    const out = redactSecrets(text, ['s3cr3t-value']);
    for (const secret of ['abcdefgh', 'xoxb-1234', 'abc.def.ghi123', 'hunter2hunter', 's3cr3t-value']) {
      expect(out).not.toContain(secret);
    }
    expect(out).toContain('token=[redacted]');
    expect(out).toContain('Bearer [redacted]');
  });

  it('leaves ordinary text alone', () => {
    expect(redactSecrets('Fixed the login bug in auth.ts')).toBe('Fixed the login bug in auth.ts');
  });
});
