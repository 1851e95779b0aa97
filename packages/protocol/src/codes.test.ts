import { describe, expect, it } from 'vitest';
import {
  AUTH_FAILURE_CODES,
  isRetryable,
  refusalErrorCode,
  SYSTEM_ERROR_CODES,
  TASK_REFUSAL_CODES,
} from './codes.js';
import { PARSE_ERROR_CODES, PROTOCOL_VERSION } from './constants.js';
import {
  checkOutgoing,
  createMessage,
  OutgoingMessageError,
  serialize,
  serializeForVersion,
} from './envelope.js';
import { parse } from './parse.js';

describe('decision codes', () => {
  it('"not now" and "never" come from the table: capacity and load retry, a bad path fails', () => {
    expect(isRetryable('AT_CAPACITY')).toBe(true);
    expect(isRetryable('OVERLOADED')).toBe(true);
    expect(isRetryable('SHUTTING_DOWN')).toBe(true);
    expect(isRetryable('PATH_NOT_ALLOWED')).toBe(false);
    expect(isRetryable('DUPLICATE')).toBe(false);
    expect(isRetryable('RATE_LIMITED')).toBe(true);
    expect(isRetryable('INVALID_KEY')).toBe(false);
    expect(isRetryable('UNSUPPORTED_PROTOCOL_VERSION')).toBe(false);
    expect(refusalErrorCode('PATH_NOT_ALLOWED')).toBe('PATH_NOT_ALLOWED');
    expect(refusalErrorCode('INVALID_TASK')).toBe('INVALID_REQUEST');
    expect(refusalErrorCode('DUPLICATE')).toBeUndefined();
    expect(refusalErrorCode('OVERLOADED')).toBeUndefined();
  });

  it('every refusal that can never succeed either fails the task with a code or is DUPLICATE', () => {
    for (const code of TASK_REFUSAL_CODES) {
      if (isRetryable(code)) expect(refusalErrorCode(code), code).toBeUndefined();
      else if (code !== 'DUPLICATE') expect(refusalErrorCode(code), code).toBeDefined();
    }
  });

  it('every parse error is a SYSTEM_ERROR code, so a refusal of a frame travels as a code', () => {
    for (const code of PARSE_ERROR_CODES) expect(SYSTEM_ERROR_CODES).toContain(code);
    expect(AUTH_FAILURE_CODES).toContain('UNSUPPORTED_PROTOCOL_VERSION');
  });

  it('a refusal without a code, or a failed AUTH_RESPONSE without one, is not a valid frame', () => {
    const ack = { v: PROTOCOL_VERSION, type: 'TASK_ACK', id: 'm', ts: 1 };
    const noCode = parse(
      JSON.stringify({
        ...ack,
        payload: { taskId: 't', attempt: 1, accepted: false, queued: false, reason: 'busy' },
      }),
    );
    expect(noCode).toMatchObject({ ok: false, error: { code: 'INVALID_PAYLOAD' } });
    const coded = parse(
      JSON.stringify({
        ...ack,
        payload: {
          taskId: 't',
          attempt: 1,
          accepted: false,
          queued: false,
          code: 'OVERLOADED',
          overload: { resource: 'cpu', percent: 97, sustainedMs: 30_000 },
        },
      }),
    );
    expect(coded.ok).toBe(true);
    const auth = { v: PROTOCOL_VERSION, type: 'AUTH_RESPONSE', id: 'm', ts: 1 };
    expect(parse(JSON.stringify({ ...auth, payload: { success: false, error: 'no' } })).ok).toBe(false);
    expect(parse(JSON.stringify({ ...auth, payload: { success: false, code: 'INVALID_KEY' } })).ok).toBe(
      true,
    );
    const sys = { v: PROTOCOL_VERSION, type: 'SYSTEM_ERROR', id: 'm', ts: 1 };
    expect(parse(JSON.stringify({ ...sys, payload: { code: 'whatever', message: 'x' } })).ok).toBe(false);
  });

  it('task messages carry the attempt: a TASK_COMPLETE without one is refused', () => {
    const frame = {
      v: PROTOCOL_VERSION,
      type: 'TASK_STREAM',
      id: 'm',
      ts: 1,
      payload: { taskId: 't', seq: 0, text: 'x' },
    };
    expect(parse(JSON.stringify(frame))).toMatchObject({ ok: false, error: { code: 'INVALID_PAYLOAD' } });
    expect(parse(JSON.stringify({ ...frame, payload: { ...frame.payload, attempt: 0 } })).ok).toBe(false);
    expect(parse(JSON.stringify({ ...frame, payload: { ...frame.payload, attempt: 3 } })).ok).toBe(true);
  });
});

describe('send-side validation', () => {
  it('serialize refuses a frame the receiver would refuse, naming the field', () => {
    const bad = createMessage('TASK_ACK', { taskId: 't', attempt: 1, accepted: false, queued: false });
    expect(checkOutgoing(bad)).toBeInstanceOf(OutgoingMessageError);
    expect(() => serialize(bad)).toThrow(/TASK_ACK.*code/);
    const good = createMessage('TASK_RESULT_ACK', { taskId: 't', attempt: 2 });
    expect(parse(serialize(good))).toEqual({ ok: true, message: good });
  });

  it('an answer for an older peer goes out in its envelope version, so that peer can read it', () => {
    const refusal = createMessage('AUTH_RESPONSE', {
      success: false,
      code: 'UNSUPPORTED_PROTOCOL_VERSION',
      error: 'upgrade',
    });
    const frame = JSON.parse(serializeForVersion(refusal, 1)) as { v: number; payload: unknown };
    expect(frame.v).toBe(1);
    expect(frame.payload).toEqual(refusal.payload);
    const v1 = parse(JSON.stringify({ ...refusal, v: 1 }));
    expect(v1).toMatchObject({ ok: false, error: { code: 'UNSUPPORTED_VERSION', version: 1 } });
  });
});
