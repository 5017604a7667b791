// One HTTP exchange over node:http(s), connecting only to addresses the host policy vetted. Not the
// global fetch: in Node 20 it has no public hook for the connection's DNS lookup (that needs the
// undici package as a dependency), and pinning the vetted address is what defeats DNS rebinding.
// node:http follows no redirects and asks for no compression, which is what the step wants.
import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import type { VettedAddress } from './host-policy.js';

export interface RawResponse {
  status: number;
  statusText: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** The response was larger than the limit: the connection was cut there. */
export class ResponseTooLargeError extends Error {
  override name = 'ResponseTooLargeError';
  readonly retryable = false;
}

/** A lookup that answers only with the vetted addresses, whatever DNS says now. */
function pinnedLookup(addresses: VettedAddress[]): LookupFunction {
  return (_host, options, callback) => {
    const all = (options as { all?: boolean }).all === true;
    if (all) (callback as unknown as (err: null, addrs: VettedAddress[]) => void)(null, addresses);
    else callback(null, addresses[0]!.address, addresses[0]!.family);
  };
}

export interface RequestSpec {
  url: URL;
  method: string;
  headers: Record<string, string>;
  body: Buffer | undefined;
  /** Empty: resolve as usual (hostPolicy 'any'). */
  addresses: VettedAddress[];
  maxResponseBytes: number;
  signal: AbortSignal;
}

export function sendHttp(spec: RequestSpec): Promise<RawResponse> {
  const mod = spec.url.protocol === 'https:' ? https : http;
  return new Promise<RawResponse>((resolve, reject) => {
    const req = mod.request(spec.url, {
      method: spec.method,
      headers: { ...spec.headers, ...(spec.body ? { 'content-length': String(spec.body.length) } : {}) },
      signal: spec.signal,
      ...(spec.addresses.length > 0 ? { lookup: pinnedLookup(spec.addresses) } : {}),
      agent: false, // a fresh connection: a pooled socket could be to an address vetted for another URL
    });
    req.on('error', reject);
    req.on('response', (res) => {
      const declared = Number(res.headers['content-length']);
      if (Number.isFinite(declared) && declared > spec.maxResponseBytes) {
        req.destroy();
        reject(new ResponseTooLargeError(`response body of ${declared} bytes is over the limit of ${spec.maxResponseBytes} bytes (maxResponseBytes)`));
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > spec.maxResponseBytes) {
          req.destroy();
          reject(new ResponseTooLargeError(`response body is over the limit of ${spec.maxResponseBytes} bytes (maxResponseBytes): cut off after ${size} bytes`));
          return;
        }
        chunks.push(chunk);
      });
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, statusText: res.statusMessage ?? '', headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.end(spec.body);
  });
}
