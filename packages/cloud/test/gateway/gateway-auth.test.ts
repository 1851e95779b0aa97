import { PROTOCOL_VERSION } from '@bematic/protocol';
import { ManualClock } from '@bematic/testkit';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { type CloudHarness, METRICS, RawAgent, removeDir, startCloud, until } from './harness.js';

describe('agent gateway: authentication', () => {
  let cloud: CloudHarness;
  let clock: ManualClock;

  beforeEach(async () => {
    clock = new ManualClock();
    cloud = await startCloud({
      clock,
      config: { authTimeoutMs: 5_000, maxFrameBytes: 2048, reconnectGraceMs: 90_000 },
    });
  });
  afterEach(async () => {
    vi.useRealTimers();
    await cloud.stop();
    removeDir(cloud.dir);
  });

  const failures = async () => cloud.repos.audit.list({ action: 'agent.auth_failed' });

  it('accepts a valid key, reports the heartbeat interval and reconnect grace and touches lastUsedAt', async () => {
    const { key, record } = await cloud.gateway.apiKeys.create('agent-a', { label: 'laptop' });
    const { agent, response } = await RawAgent.connect(cloud.url, { agentId: 'agent-a', apiKey: key });
    expect(response.payload).toMatchObject({ success: true, agentId: 'agent-a', cancelTaskIds: [] });
    expect(response.payload.heartbeatIntervalMs).toBeGreaterThan(0);
    expect(response.payload.reconnectGraceMs).toBe(90_000); // the agent stops its runs before that
    await cloud.log.wait('agent.online', (e) => e.agentId === 'agent-a');
    const {
      agents: [snapshot],
    } = await cloud.gateway.directory.listAgents({ limit: 10 });
    expect(snapshot).toMatchObject({
      agentId: 'agent-a',
      online: true,
      circuit: 'closed',
      hostname: 'test-host',
    });
    const [stored] = await cloud.gateway.apiKeys.list('agent-a');
    expect(stored?.id).toBe(record.id);
    expect(stored?.lastUsedAt).toBe(clock.now());
    expect(stored).not.toHaveProperty('keyHash');
    await agent.close();
  });

  it('closes a socket that does not authenticate before the deadline', async () => {
    const agent = await RawAgent.open(cloud.url);
    await clock.advance(4_999);
    expect(agent.ws.readyState).toBe(agent.ws.OPEN);
    await clock.advance(1);
    expect(await agent.closed).toEqual({ code: 4008, reason: 'AUTH_TIMEOUT' });
    await until(async () => (await failures()).length === 1, 'audit entry');
    expect((await failures())[0]?.details).toMatchObject({ reason: 'AUTH_TIMEOUT', code: 'AUTH_TIMEOUT' });
  });

  it('rejects a first frame that is not AUTH_REQUEST', async () => {
    const agent = await RawAgent.open(cloud.url);
    agent.send('HEARTBEAT_PONG', { seq: 1, sentAt: 1, metrics: METRICS });
    expect((await agent.closed).code).toBe(4001);
    await until(async () => (await failures()).length === 1, 'audit entry');
    expect((await failures())[0]?.details).toMatchObject({
      code: 'INVALID_FIRST_FRAME',
      detail: 'HEARTBEAT_PONG',
    });
  });

  it.each([
    ['a wrong key', 'wrong', 'INVALID_KEY'],
    ['a key of another agent', 'other-agent', 'UNKNOWN_AGENT'],
    ['a revoked key', 'revoked', 'KEY_REVOKED'],
    ['an expired key', 'expired', 'KEY_EXPIRED'],
    ['garbage', 'malformed', 'INVALID_KEY'],
  ])('rejects %s with a coded AUTH_RESPONSE, audits it without the key', async (_label, kind, code) => {
    const own = await cloud.gateway.apiKeys.create('agent-a', {
      expiresAt: kind === 'expired' ? clock.now() + 1000 : null,
    });
    const other = await cloud.gateway.apiKeys.create('agent-b');
    let presented = own.key;
    let expectedReason = kind;
    if (kind === 'wrong') {
      presented = `${own.key.slice(0, -4)}AAAA`;
      expectedReason = 'unknown-key';
    }
    if (kind === 'other-agent') {
      presented = other.key;
      expectedReason = 'wrong-agent';
    }
    if (kind === 'revoked') await cloud.gateway.apiKeys.revoke(own.record.id, 'admin');
    if (kind === 'expired') await clock.advance(1000);
    if (kind === 'malformed') presented = 'not-a-key';

    const { agent, response } = await RawAgent.connect(cloud.url, { agentId: 'agent-a', apiKey: presented });
    expect(response.payload.success).toBe(false);
    expect(response.payload.code).toBe(code);
    expect(response.payload.error).toBeTruthy();
    expect((await agent.closed).code).toBe(4001);
    await until(async () => (await failures()).length === 1, 'audit entry');
    const [entry] = await failures();
    expect(entry?.details).toMatchObject({ agentId: 'agent-a', code, detail: expectedReason });
    expect(entry?.details.ip).toBeTruthy();
    expect(JSON.stringify(entry)).not.toContain(presented);
    expect((await cloud.gateway.directory.listAgents({ limit: 10 })).agents.filter((a) => a.online)).toEqual(
      [],
    );
  });

  it('audits key creation and revocation', async () => {
    const { record } = await cloud.gateway.apiKeys.create('agent-a', { actor: 'admin' });
    await cloud.gateway.apiKeys.revoke(record.id, 'admin');
    expect((await cloud.repos.audit.list({ action: 'api_key.created' })).map((e) => e.resourceId)).toEqual([
      record.id,
    ]);
    expect((await cloud.repos.audit.list({ action: 'api_key.revoked' })).map((e) => e.actor)).toEqual([
      'admin',
    ]);
  });

  it('refuses an address + agent id outright after 5 failures a minute, even with the right key', async () => {
    const { key } = await cloud.gateway.apiKeys.create('agent-a');
    for (let i = 0; i < 5; i++) {
      const { agent } = await RawAgent.connect(cloud.url, {
        agentId: 'agent-a',
        apiKey: `${key.slice(0, -4)}AAAA`,
      });
      expect((await agent.closed).code).toBe(4001);
    }
    const { agent, response } = await RawAgent.connect(cloud.url, { agentId: 'agent-a', apiKey: key });
    expect(response.payload).toMatchObject({ success: false, code: 'RATE_LIMITED' });
    expect((await agent.closed).code).toBe(4029);
    await until(
      async () => (await failures()).some((e) => e.details.code === 'RATE_LIMITED'),
      'rate-limit audit',
    );
    // Another agent id from the same address is not affected, and the window passes
    // (on the rate limiter's clock, Date, as well as the gateway's).
    const other = await RawAgent.connect(cloud.url, {
      agentId: 'agent-b',
      apiKey: (await cloud.gateway.apiKeys.create('agent-b')).key,
    });
    expect(other.response.payload.success).toBe(true);
    await other.agent.close();
    vi.useFakeTimers({ now: Date.now() + 60_001, toFake: ['Date'] });
    await clock.advance(60_001);
    const again = await RawAgent.connect(cloud.url, { agentId: 'agent-a', apiKey: key });
    expect(again.response.payload.success).toBe(true);
    await again.agent.close();
  });

  it('answers a v1 agent with a coded refusal it can read, in its own envelope version, and stays up', async () => {
    const { key } = await cloud.gateway.apiKeys.create('agent-a');
    const v1 = await RawAgent.open(cloud.url);
    // What an agent of protocol version 1 sends: no attempt numbers anywhere, v: 1.
    v1.sendRaw({
      v: 1,
      type: 'AUTH_REQUEST',
      id: 'v1-auth',
      ts: 1,
      payload: {
        agentId: 'agent-a',
        apiKey: key,
        agentVersion: '0.0.9',
        maxConcurrentTasks: 1,
        activeTaskIds: [],
        bufferedTaskIds: [],
      },
    });
    expect((await v1.closed).code).toBe(4001);
    // Its own envelope version, which `parse` (v2) refuses: read as JSON.
    expect(v1.rawFrames).toHaveLength(1);
    expect(v1.invalid).toHaveLength(1);
    const reply = v1.rawFrames[0] as { v: number; type: string; payload: Record<string, unknown> };
    expect(reply.v).toBe(1);
    expect(reply.type).toBe('AUTH_RESPONSE');
    expect(reply.payload).toMatchObject({ success: false, code: 'UNSUPPORTED_PROTOCOL_VERSION' });
    expect(String(reply.payload.error)).toMatch(/version 2.*1/);
    await until(async () => (await failures()).length === 1, 'audit entry');
    expect((await failures())[0]?.details).toMatchObject({
      code: 'UNSUPPORTED_PROTOCOL_VERSION',
      peerVersion: 1,
    });
    expect(cloud.gateway.manager.isConnected('agent-a')).toBe(false);
    // The cloud is unharmed: a v2 agent authenticates right after.
    const { agent, response } = await RawAgent.connect(cloud.url, { agentId: 'agent-a', apiKey: key });
    expect(response.payload.success).toBe(true);
    await agent.close();
  });

  it('replaces an older connection of the same agent', async () => {
    const { key } = await cloud.gateway.apiKeys.create('agent-a');
    const first = await RawAgent.connect(cloud.url, { agentId: 'agent-a', apiKey: key });
    const second = await RawAgent.connect(cloud.url, { agentId: 'agent-a', apiKey: key });
    expect(second.response.payload.success).toBe(true);
    expect((await first.agent.closed).code).toBe(4000);
    await until(async () => cloud.gateway.manager.isConnected('agent-a'), 'second connection registered');
    expect(cloud.log.of('agent.offline')).toEqual([]);
    await second.agent.close();
    await cloud.log.wait('agent.offline');
  });
});

describe('agent gateway: bad frames', () => {
  let cloud: CloudHarness;
  let agent: RawAgent;

  beforeEach(async () => {
    cloud = await startCloud({ clock: new ManualClock(), config: { maxFrameBytes: 2048 } });
    const { key } = await cloud.gateway.apiKeys.create('agent-a');
    ({ agent } = await RawAgent.connect(cloud.url, { agentId: 'agent-a', apiKey: key }));
  });
  afterEach(async () => {
    await cloud.stop();
    removeDir(cloud.dir);
  });

  it('answers malformed, unknown and oversized frames with SYSTEM_ERROR and keeps the connection', async () => {
    agent.sendRaw('{not json');
    expect((await agent.next('SYSTEM_ERROR')).payload.code).toBe('INVALID_JSON');
    agent.sendRaw(JSON.stringify({ v: PROTOCOL_VERSION, type: 'WHATEVER', id: 'x1', ts: 1, payload: {} }));
    expect((await agent.next('SYSTEM_ERROR')).payload).toMatchObject({ code: 'UNKNOWN_TYPE', refId: 'x1' });
    agent.send('TASK_STREAM', { taskId: 't', seq: 0, text: 'x'.repeat(4096) });
    expect((await agent.next('SYSTEM_ERROR')).payload.code).toBe('FRAME_TOO_LARGE');
    agent.sendRaw(
      JSON.stringify({ v: PROTOCOL_VERSION, type: 'TASK_ACK', id: 'x2', ts: 1, payload: { taskId: 5 } }),
    );
    expect((await agent.next('SYSTEM_ERROR')).payload.code).toBe('INVALID_PAYLOAD');
    agent.send('TASK_SUBMIT', {
      taskId: 't',
      attempt: 1,
      projectId: 'p',
      localPath: '/x',
      botName: 'b',
      command: 'c',
      prompt: 'p',
      systemPrompt: '',
      model: 'm',
      allowedTools: [],
      priority: 'normal',
    });
    expect((await agent.next('SYSTEM_ERROR')).payload.code).toBe('UNEXPECTED_TYPE');
    agent.send('TASK_PROGRESS', { taskId: 'task_nope', kind: 'status', message: 'hi' });
    expect((await agent.next('SYSTEM_ERROR')).payload.code).toBe('UNKNOWN_TASK');

    const audited = await cloud.repos.audit.list({ action: 'agent.protocol_error' });
    expect(audited.map((e) => e.details.code).sort()).toEqual(
      [
        'FRAME_TOO_LARGE',
        'INVALID_JSON',
        'INVALID_PAYLOAD',
        'UNEXPECTED_TYPE',
        'UNKNOWN_TASK',
        'UNKNOWN_TYPE',
      ].sort(),
    );
    expect(agent.ws.readyState).toBe(agent.ws.OPEN);
    expect(cloud.gateway.manager.isConnected('agent-a')).toBe(true);
  });

  it('closes the connection only after sustained abuse', async () => {
    for (let i = 0; i < 25; i++) agent.sendRaw('nope');
    expect((await agent.closed).code).toBe(1008);
    await cloud.log.wait('agent.offline');
  });
});
