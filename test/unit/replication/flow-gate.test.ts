import { describe, expect, it } from 'vitest';
import { FlowGate } from '../../../src/replication/stream/flow-gate.js';
import { RECONNECT_BACKOFF } from '../../../src/config/defaults.js';
import { backoffMs } from '../../../src/util/backoff.js';
import { parseTableName } from '../../../src/pipeline/source-tables.js';

describe('FlowGate', () => {
  it('closes at the backlog limit or while paused, and lets waiters go when it opens', async () => {
    const g = new FlowGate(10);
    expect(g.wait()).toBeUndefined();
    g.add(10);
    const waiting = g.wait();
    expect(waiting).toBeInstanceOf(Promise);
    let released = false;
    void waiting!.then(() => (released = true));
    g.pause('watermark');
    g.add(-10);
    await Promise.resolve();
    expect(released).toBe(false); // still paused
    g.resume('watermark');
    await Promise.resolve();
    expect(released).toBe(true);
  });
});

describe('helpers', () => {
  it('backs off exponentially with jitter, capped', () => {
    for (let i = 0; i < 50; i++) {
      expect(backoffMs(0, RECONNECT_BACKOFF)).toBeGreaterThanOrEqual(100);
      expect(backoffMs(0, RECONNECT_BACKOFF)).toBeLessThanOrEqual(200);
      expect(backoffMs(30, RECONNECT_BACKOFF)).toBeLessThanOrEqual(5_000);
    }
  });

  it('parses table names the way PostgreSQL does', () => {
    expect(parseTableName('documents')).toEqual({ schema: 'public', name: 'documents' });
    expect(parseTableName('App.Docs')).toEqual({ schema: 'app', name: 'docs' });
    expect(parseTableName('"My Schema"."a.b"')).toEqual({ schema: 'My Schema', name: 'a.b' });
    expect(() => parseTableName('a.b.c')).toThrow(/not a table name/);
  });
});
