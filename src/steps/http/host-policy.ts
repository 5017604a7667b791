// The outbound-host policy: decides, before connecting, whether a URL may be called, so that a
// pipeline (above all one a database user defines from SQL) cannot turn workers into a proxy to
// internal services or the cloud metadata endpoint. Names are resolved here and the connection is
// made to the vetted addresses only (http-request.ts pins them), so DNS rebinding between the check
// and the connect cannot slip in another address.
import dns from 'node:dns';
import { isIP } from 'node:net';
import { addressKind, type AddressKind } from './addresses.js';

export interface HostPolicy {
  /**
   * Hosts that may be called: `api.example.com` (the scheme's default port), `api.example.com:8443`,
   * `api.example.com:*` (any port), `*.example.com` (any subdomain, not example.com itself), IP
   * literals (`10.0.0.5:8080`, `[fd00::5]:*`). Omitted: any host. Empty: none.
   */
  allowHosts?: readonly string[];
  /** Allow loopback and private (RFC 1918, CGNAT, IPv6 ULA) addresses. Link-local and metadata addresses stay refused. */
  allowPrivate?: boolean;
}

/** 'any': no checks at all (TypeScript pipelines that call what their author chose). */
export type HostPolicyOption = HostPolicy | 'any';

/** A URL the policy refused: not retryable (retrying cannot change the answer). */
export class HostNotAllowedError extends Error {
  override name = 'HostNotAllowedError';
  readonly retryable = false;
}

export interface VettedAddress {
  address: string;
  family: number;
}

export type Lookup = (host: string) => Promise<VettedAddress[]>;

const systemLookup: Lookup = async (host) => dns.promises.lookup(host, { all: true, verbatim: true });

/** Host names of metadata services, refused whatever they resolve to. */
const METADATA_NAMES = new Set(['metadata.google.internal', 'metadata.goog', 'metadata', 'instance-data', 'instance-data.ec2.internal']);

interface HostPattern {
  host: string;
  wildcard: boolean;
  /** undefined: the scheme's default port; '*': any. */
  port: number | '*' | undefined;
}

/** Parses an allowlist entry; throws a clear message for one that is not a host pattern. */
export function parseHostPattern(entry: string): HostPattern {
  const m = /^(\*\.)?(\[[0-9a-f:.]+\]|[a-z0-9_.-]+)(?::(\d{1,5}|\*))?$/i.exec(entry.trim());
  const port = m?.[3] === '*' ? '*' : m?.[3] ? Number(m[3]) : undefined;
  if (!m || (typeof port === 'number' && (port < 1 || port > 65_535)) || (m[1] && m[2]!.startsWith('['))) {
    throw new Error(`"${entry}" is not a host pattern (e.g. api.example.com, *.example.com, api.example.com:8443, 10.0.0.5:*)`);
  }
  return { host: m[2]!.toLowerCase().replace(/^\[|\]$/g, '').replace(/\.$/, ''), wildcard: Boolean(m[1]), port };
}

/** Whether `url`'s host and port are on the allowlist (undefined list: every host is). */
export function hostAllowed(url: URL, allowHosts: readonly string[] | undefined): boolean {
  if (allowHosts === undefined) return true;
  const host = url.hostname.toLowerCase().replace(/^\[|\]$/g, '').replace(/\.$/, '');
  const port = url.port === '' ? undefined : Number(url.port);
  return allowHosts.some((entry) => {
    const p = parseHostPattern(entry);
    const hostOk = p.wildcard ? host.endsWith(`.${p.host}`) : host === p.host;
    const portOk = p.port === '*' || p.port === port;
    return hostOk && portOk;
  });
}

function refusedKind(kind: AddressKind, policy: HostPolicy): boolean {
  if (kind === 'public') return false;
  if (kind === 'private' || kind === 'loopback') return !policy.allowPrivate;
  return true; // link-local, metadata, reserved: never
}

/**
 * Checks a URL against the policy and returns the addresses to connect to (every one vetted; empty
 * for 'any', which connects as usual). Throws HostNotAllowedError when refused; a failed DNS lookup
 * is thrown as it is (retryable: names come back).
 */
export async function vetUrl(url: URL, policy: HostPolicyOption, lookup: Lookup = systemLookup): Promise<VettedAddress[]> {
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new HostNotAllowedError(`${url.protocol} URLs are not allowed: only http and https`);
  if (policy === 'any') return [];
  const where = `${url.protocol}//${url.host}`;
  const host = url.hostname.replace(/^\[|\]$/g, '').replace(/\.$/, '').toLowerCase();
  if (!hostAllowed(url, policy.allowHosts)) {
    throw new HostNotAllowedError(`${where} is not on the allowed hosts (${policy.allowHosts?.length ? policy.allowHosts.join(', ') : 'none are allowed'}; operators set WALFLOW_HTTP_ALLOW_HOSTS)`);
  }
  if (METADATA_NAMES.has(host)) throw new HostNotAllowedError(`${where} is a cloud metadata service: never allowed`);
  const addresses = isIP(host) ? [{ address: host, family: isIP(host) }] : await lookup(host);
  if (addresses.length === 0) throw new Error(`${host} resolved to no address`);
  // Every address, not just the first: a name that resolves to one public and one internal address
  // could otherwise be connected to the internal one.
  for (const a of addresses) {
    const kind = addressKind(a.address);
    if (refusedKind(kind, policy)) {
      const hint = kind === 'private' || kind === 'loopback' ? ' (allowPrivate lets it through)' : '';
      throw new HostNotAllowedError(`${where} resolves to ${a.address}, a ${kind} address: refused${hint}`);
    }
  }
  return addresses;
}
