import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PARSE_ERROR_CODES, PROTOCOL_VERSION } from './constants.js';
import { createMessage, serialize } from './envelope.js';
import { MESSAGE_TYPES } from './messages.js';
import { parse } from './parse.js';

const submit = createMessage('TASK_SUBMIT', {
  taskId: 't1',
  attempt: 1,
  projectId: 'p1',
  localPath: '/repo',
  botName: 'coder',
  command: 'fix',
  prompt: 'fix the login bug in auth.ts',
  systemPrompt: 'You are a coder.',
  model: 'claude-sonnet-4-5',
  allowedTools: ['Read', 'Edit'],
  priority: 'normal',
});

describe('parse', () => {
  it('round-trips a valid message from string, Buffer and fragmented Buffer[]', () => {
    const text = serialize(submit);
    for (const raw of [
      text,
      Buffer.from(text),
      [Buffer.from(text.slice(0, 10)), Buffer.from(text.slice(10))],
    ]) {
      const result = parse(raw);
      expect(result).toEqual({ ok: true, message: submit });
    }
  });

  it('validates the payload of every message type: a payload of the wrong shape is a coded refusal', () => {
    expect(MESSAGE_TYPES.length).toBeGreaterThan(0);
    for (const type of MESSAGE_TYPES) {
      const result = parse(JSON.stringify({ v: PROTOCOL_VERSION, type, id: 'm1', ts: 1, payload: 42 }));
      expect(result.ok, type).toBe(false);
      if (!result.ok) expect(result.error.code, type).toBe('INVALID_PAYLOAD');
    }
  });

  it('carries workspace reports, workspace commands and MCP servers, and refuses malformed ones', () => {
    const sha = 'a'.repeat(40);
    const complete = createMessage('TASK_COMPLETE', {
      taskId: 't1',
      attempt: 1,
      result: 'done',
      metrics: {
        inputTokens: 1,
        outputTokens: 1,
        cacheReadTokens: 0,
        cacheCreationTokens: 0,
        costUsd: 0,
        durationMs: 1,
        numTurns: 1,
        continuations: 0,
      },
      filesChanged: ['a.ts'],
      commandsRun: [],
      workspace: {
        mode: 'worktree',
        ownerTaskId: 't1',
        branch: 'bematic/t1',
        base: 'main',
        baseCommit: sha,
        commit: 'b'.repeat(40),
        files: [{ path: 'a.ts', added: 3, removed: 1, binary: false }],
        notices: ['BASE_DIRTY'],
        dirtyFiles: 2,
      },
    });
    expect(parse(serialize(complete))).toEqual({ ok: true, message: complete });
    const badSha = {
      ...complete,
      payload: { ...complete.payload, workspace: { ...complete.payload.workspace, commit: 'HEAD' } },
    };
    expect(parse(JSON.stringify(badSha))).toMatchObject({ ok: false, error: { code: 'INVALID_PAYLOAD' } });

    const command = createMessage('WORKSPACE_COMMAND', {
      requestId: 'r1',
      taskId: 't1',
      projectId: 'p1',
      localPath: '/repo',
      action: 'create_pr',
      pullRequest: { title: 'Fix login', body: 'body' },
    });
    expect(parse(serialize(command))).toEqual({ ok: true, message: command });
    const unknownAction = { ...command, payload: { ...command.payload, action: 'force_push' } };
    expect(parse(JSON.stringify(unknownAction))).toMatchObject({
      ok: false,
      error: { code: 'INVALID_PAYLOAD' },
    });

    const withMcp = createMessage('TASK_SUBMIT', {
      ...submit.payload,
      workspace: { base: 'main', continueFrom: 't0' },
      mcpServers: {
        docs: { type: 'http', url: 'https://mcp.example.com' },
        fs: { type: 'stdio', command: 'mcp-fs' },
      },
    });
    expect(parse(serialize(withMcp))).toEqual({ ok: true, message: withMcp });
    const badName = {
      ...withMcp,
      payload: { ...withMcp.payload, mcpServers: { 'no spaces': { type: 'stdio', command: 'x' } } },
    };
    expect(parse(JSON.stringify(badName))).toMatchObject({ ok: false, error: { code: 'INVALID_PAYLOAD' } });
  });

  it.each([
    ['FRAME_TOO_LARGE', 'x'.repeat(101), { maxBytes: 100 }],
    ['INVALID_JSON', '{not json', {}],
    ['INVALID_ENVELOPE', JSON.stringify({ type: 'TASK_ACK' }), {}],
    ['UNSUPPORTED_VERSION', JSON.stringify({ ...submit, v: PROTOCOL_VERSION + 1 }), {}],
    ['UNKNOWN_TYPE', JSON.stringify({ ...submit, type: 'DROP_TABLES' }), {}],
    ['UNKNOWN_TYPE', JSON.stringify({ ...submit, type: '__proto__' }), {}],
    ['INVALID_PAYLOAD', JSON.stringify({ ...submit, payload: { ...submit.payload, priority: 'asap' } }), {}],
  ])('rejects with %s', (code, raw, options) => {
    const result = parse(raw, options);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error.code).toBe(code);
  });

  it('keeps the id of a readable envelope so the sender can be told which frame failed', () => {
    const result = parse(JSON.stringify({ ...submit, payload: {} }));
    expect(result.ok).toBe(false);
    if (!result.ok)
      expect(result.error).toMatchObject({ code: 'INVALID_PAYLOAD', id: submit.id, type: 'TASK_SUBMIT' });
  });

  it('fuzz: random strings, bytes and JSON never throw and only yield coded errors', () => {
    const anyFrame = fc.oneof(
      fc.string(),
      fc.uint8Array({ maxLength: 512 }).map((a) => Buffer.from(a)),
      fc.json(),
      fc
        .jsonValue()
        .map((payload) =>
          JSON.stringify({ v: PROTOCOL_VERSION, type: 'TASK_SUBMIT', id: 'x', ts: 1, payload }),
        ),
      fc
        .record({
          v: fc.oneof(fc.integer(), fc.string()),
          type: fc.oneof(fc.constantFrom(...MESSAGE_TYPES), fc.string()),
          id: fc.string(),
          ts: fc.oneof(fc.integer(), fc.double()),
          payload: fc.anything(),
        })
        .map((o) => JSON.stringify(o)),
    );
    fc.assert(
      fc.property(anyFrame, (raw) => {
        const result = parse(raw);
        if (!result.ok) expect(PARSE_ERROR_CODES).toContain(result.error.code);
      }),
      { numRuns: 2000 },
    );
  });

  it('fuzz: mutating one character of a valid frame never throws', () => {
    const text = serialize(submit);
    fc.assert(
      fc.property(fc.nat({ max: text.length - 1 }), fc.string({ minLength: 1, maxLength: 1 }), (i, c) => {
        const result = parse(text.slice(0, i) + c + text.slice(i + 1));
        if (!result.ok) expect(PARSE_ERROR_CODES).toContain(result.error.code);
      }),
      { numRuns: 1000 },
    );
  });
});
