import { describe, expect, it } from 'vitest';
import { hnswIndexName, truncateIdentifier } from '../../src/steps/embedding/target.js';

describe('hnswIndexName', () => {
  it('is <table>_embedding_hnsw when that fits in 63 bytes', () => {
    expect(hnswIndexName('document_chunks')).toBe('document_chunks_embedding_hnsw');
  });

  it('fits 63 bytes for long and multi-byte names, cut on a character boundary, distinct per table', () => {
    const a = hnswIndexName(`${'é'.repeat(40)}_chunks_a`);
    const b = hnswIndexName(`${'é'.repeat(40)}_chunks_b`);
    for (const n of [a, b, hnswIndexName('x'.repeat(63))]) {
      expect(Buffer.byteLength(n, 'utf8')).toBeLessThanOrEqual(63);
      expect(n).toMatch(/_[0-9a-f]{8}_hnsw$/);
      expect(n).not.toContain('\uFFFD');
    }
    expect(a).not.toBe(b);
    expect(hnswIndexName('x'.repeat(63))).toBe(hnswIndexName('x'.repeat(63)));
  });
});

describe('truncateIdentifier', () => {
  it('cuts to 63 bytes on a character boundary, as PostgreSQL stores a name', () => {
    expect(truncateIdentifier('short')).toBe('short');
    expect(truncateIdentifier('a'.repeat(70))).toBe('a'.repeat(63));
    const cut = truncateIdentifier('é'.repeat(40)); // 2 bytes each
    expect(cut).toBe('é'.repeat(31));
  });
});
