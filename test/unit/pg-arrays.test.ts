import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { boolArray, plainArray, textArray } from '../../src/engine/pg-arrays.js';

// node-postgres' own serializer is the reference: our literals must mean exactly what its do.
const pgUtils = createRequire(import.meta.url)('pg/lib/utils.js') as { prepareValue: (v: unknown) => string };

describe('PostgreSQL array literals', () => {
  it('quote and escape text as node-postgres does, including quotes, backslashes, braces, commas and NULL', () => {
    const values = ['plain', 'with "quotes"', 'back\\slash', '{braces},commas', '', 'NULL', JSON.stringify({ a: 'x"y\\z', b: [1, 2] }), null, 'ünï €'];
    expect(textArray(values)).toBe(pgUtils.prepareValue(values));
  });

  it('write UUIDs, integers and booleans bare', () => {
    const ids = ['018f0e5c-0000-7000-8000-000000000001', '018f0e5c-0000-7000-8000-000000000002'];
    expect(plainArray(ids)).toBe(pgUtils.prepareValue(ids).replace(/"/g, ''));
    expect(plainArray([1, -2, 30])).toBe(pgUtils.prepareValue([1, -2, 30]).replace(/"/g, ""));
    expect(boolArray([true, false, true])).toBe('{t,f,t}');
    expect(plainArray([])).toBe('{}');
  });
});
