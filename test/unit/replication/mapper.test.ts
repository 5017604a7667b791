import type { Pgoutput } from 'pg-logical-replication';
import { describe, expect, it } from 'vitest';
import { compareLsn, formatLsn, parseLsn } from '../../../src/replication/stream/lsn.js';
import { PgoutputMapper } from '../../../src/replication/stream/pgoutput-mapper.js';

const rel = (replicaIdentity: Pgoutput.MessageRelation['replicaIdentity'] = 'default'): Pgoutput.MessageRelation => ({
  tag: 'relation', relationOid: 1, schema: 'public', name: 'docs', replicaIdentity, keyColumns: ['id'],
  columns: ['id', 'body', 'bin'].map((name, i) => ({ name, flags: i === 0 ? 1 : 0, typeOid: 25, typeMod: -1, typeSchema: null, typeName: null, parser: (x: unknown) => x })),
});
const begin = (lsn: string): Pgoutput.Message => ({ tag: 'begin', commitLsn: lsn, commitTime: 1_700_000_000_000_000n, xid: 1 });
const commitMsg = (lsn: string, end: string): Pgoutput.Message => ({ tag: 'commit', flags: 0, commitLsn: lsn, commitEndLsn: end, commitTime: 1_700_000_000_000_000n });

describe('LSNs', () => {
  it('parse, format and compare across the 32-bit boundary', () => {
    expect(formatLsn(parseLsn('00000001/0000000A'))).toBe('1/A');
    expect(compareLsn('1/0', '0/FFFFFFFF')).toBe(1);
    expect(formatLsn(parseLsn('1/0') - 1n)).toBe('0/FFFFFFFF');
  });
});

describe('PgoutputMapper', () => {
  it('numbers changes within a transaction, normalizes LSNs, and marks the commit boundary', () => {
    const m = new PgoutputMapper();
    const r = rel();
    expect(m.map(begin('00000000/016B3748'))).toEqual([]);
    const a = m.map({ tag: 'insert', relation: r, new: { id: '1', body: 'x', bin: Buffer.from([1, 255]) } });
    const b = m.map({ tag: 'insert', relation: r, new: { id: '2', body: 'y', bin: null } });
    expect(a[0]).toMatchObject({ op: 'insert', table: 'public.docs', lsn: '0/16B3748', index: 0, row: { id: '1', body: 'x', bin: '\\x01ff' }, toast: 'none' });
    expect(b[0]).toMatchObject({ index: 1 });
    expect(m.map(commitMsg('00000000/016B3748', '00000000/016B3790'))).toEqual([
      { kind: 'boundary', endLsn: '0/16B3790', source: 'commit', commitTime: new Date(1_700_000_000_000) },
    ]);
    m.map(begin('00000000/01000000'));
    expect(m.map({ tag: 'delete', relation: r, key: { id: '1' }, old: null })[0]).toMatchObject({ index: 0, row: null, old: { id: '1' }, oldIsFull: false });
  });

  it('reports unchanged TOAST columns (left undefined by the parser) instead of passing them as missing values', () => {
    const m = new PgoutputMapper();
    m.map(begin('0/10'));
    const [u] = m.map({ tag: 'update', relation: rel(), key: null, old: null, new: { id: '1', body: undefined, bin: null } });
    expect(u).toMatchObject({ row: { id: '1', bin: null }, old: { id: '1' }, unchangedToast: ['body'], toast: 'pending' });
    expect(Object.keys((u as { row: object }).row)).toEqual(['id', 'bin']);
    // REPLICA IDENTITY FULL: the parser filled `u` from the old row, so nothing is missing.
    const [f] = m.map({ tag: 'update', relation: rel('full'), key: null, old: { id: '1', body: 'b', bin: null }, new: { id: '1', body: 'b', bin: null } });
    expect(f).toMatchObject({ oldIsFull: true, toast: 'none', index: 1 });
  });

  it('turns a truncate of several tables into one change each, and only walflow heartbeats into positions', () => {
    const m = new PgoutputMapper();
    m.map(begin('0/10'));
    const t = m.map({ tag: 'truncate', cascade: false, restartIdentity: false, relations: [rel(), { ...rel(), name: 'other' }] });
    expect(t.map((c) => [c.kind === 'change' && c.table, c.kind === 'change' && c.index])).toEqual([['public.docs', 0], ['public.other', 1]]);
    const msg = (prefix: string, transactional: boolean): Pgoutput.Message => ({ tag: 'message', flags: 0, transactional, messageLsn: '00000000/00000020', prefix, content: new Uint8Array() });
    expect(m.map(msg('walflow', false))).toEqual([{ kind: 'boundary', endLsn: '0/20', source: 'heartbeat' }]);
    expect(m.map(msg('walflow', true))).toEqual([]);
    expect(m.map(msg('other', false))).toEqual([]);
  });
});
