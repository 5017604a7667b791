// Embeddings travel between steps as float32 bytes in base64 (a quarter of the size of JSON number
// arrays, and exact), and enter pgvector as its text form.

export function encodeVector(v: Float32Array): string {
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
}

export function decodeVector(b64: string): Float32Array {
  const buf = Buffer.from(b64, 'base64');
  // Copy into an aligned buffer: the Buffer pool may hand out unaligned offsets.
  const out = new Float32Array(buf.byteLength / 4);
  new Uint8Array(out.buffer).set(buf);
  return out;
}

/** pgvector's text input: '[0.1,0.2,…]'. */
export function toPgVector(v: Float32Array): string {
  return `[${Array.from(v).join(',')}]`;
}

/** Parses pgvector's text output. */
export function fromPgVector(text: string): Float32Array {
  return Float32Array.from(text.slice(1, -1).split(','), Number);
}
