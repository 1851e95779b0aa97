import type { TaskStream } from '@bematic/protocol';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { StreamCoalescer } from './stream-coalescer.js';

describe('StreamCoalescer', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('coalesces many tokens into one frame per interval', () => {
    const frames: Omit<TaskStream, 'attempt'>[] = [];
    const c = new StreamCoalescer({ taskId: 't1', send: (f) => frames.push(f), flushMs: 250 });
    for (let i = 0; i < 100; i++) c.push('tok ');
    expect(frames).toHaveLength(0);
    vi.advanceTimersByTime(250);
    expect(frames).toEqual([{ taskId: 't1', seq: 0, text: 'tok '.repeat(100) }]);
    c.push('more');
    vi.advanceTimersByTime(249);
    expect(frames).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(frames[1]).toEqual({ taskId: 't1', seq: 1, text: 'more' });
  });

  it('flushes at the size threshold and splits oversized text, keeping seq monotonic', () => {
    const frames: Omit<TaskStream, 'attempt'>[] = [];
    const c = new StreamCoalescer({ taskId: 't', send: (f) => frames.push(f), maxChars: 10 });
    c.push('12345');
    expect(frames).toHaveLength(0);
    c.push('67890abcdefghijklmnopqrstu');
    expect(frames.map((f) => f.text)).toEqual(['1234567890', 'abcdefghij', 'klmnopqrst', 'u']);
    expect(frames.map((f) => f.seq)).toEqual([0, 1, 2, 3]);
  });

  it('close() flushes the remainder immediately and ignores later text', () => {
    const frames: Omit<TaskStream, 'attempt'>[] = [];
    const c = new StreamCoalescer({ taskId: 't', send: (f) => frames.push(f) });
    c.push('tail');
    c.close();
    expect(frames).toEqual([{ taskId: 't', seq: 0, text: 'tail' }]);
    c.push('late');
    vi.advanceTimersByTime(10_000);
    expect(frames).toHaveLength(1);
    expect(c.text).toBe('tail');
  });

  it('remembers only the tail of a long transcript', () => {
    const c = new StreamCoalescer({ taskId: 't', send: () => {}, keepChars: 5 });
    c.push('abcdefgh');
    expect(c.text).toBe('defgh');
    c.close();
  });
});
