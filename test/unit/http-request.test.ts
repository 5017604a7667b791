// The HTTP step connects only to the addresses the host policy vetted: whatever DNS answers at
// connect time (a rebinding attack answers differently the second time) is never asked.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sendHttp } from '../../src/steps/http/http-request.js';

const server = http.createServer((req, res) => {
  const text = `host ${req.headers.host}`;
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(text) }).end(text);
});
let port = 0;
beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});
afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

describe('sendHttp', () => {
  it('connects to the vetted address, never resolving the name again', async () => {
    // .invalid never resolves (RFC 6761): the request can only arrive through the pinned address.
    const res = await sendHttp({
      url: new URL(`http://rebind.invalid:${port}/x`), method: 'GET', headers: {}, body: undefined,
      addresses: [{ address: '127.0.0.1', family: 4 }], maxResponseBytes: 1024, signal: AbortSignal.timeout(5000),
    });
    expect(res.status).toBe(200);
    expect(res.body.toString()).toBe(`host rebind.invalid:${port}`);
  });

  it('refuses a body whose declared length is over the limit', async () => {
    await expect(sendHttp({
      url: new URL(`http://127.0.0.1:${port}/`), method: 'GET', headers: {}, body: undefined,
      addresses: [], maxResponseBytes: 4, signal: AbortSignal.timeout(5000),
    })).rejects.toThrow(/response body of \d+ bytes is over the limit of 4 bytes/);
  });
});
