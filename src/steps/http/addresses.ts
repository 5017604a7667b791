// What kind of address an IP is, for the outbound-host policy: the ranges a worker must not be
// steered into (loopback, link-local, cloud metadata, private networks) unless an operator says so.
import { BlockList, isIP } from 'node:net';

export type AddressKind = 'public' | 'private' | 'loopback' | 'link-local' | 'metadata' | 'reserved';

/** Cloud instance metadata services: credentials live there. */
const METADATA = new Set(['169.254.169.254', 'fd00:ec2::254', '100.100.100.200']);

function list(v4: string[], v6: string[]): BlockList {
  const b = new BlockList();
  for (const s of v4) b.addSubnet(s.split('/')[0]!, Number(s.split('/')[1]), 'ipv4');
  for (const s of v6) b.addSubnet(s.split('/')[0]!, Number(s.split('/')[1]), 'ipv6');
  return b;
}

const LOOPBACK = list(['127.0.0.0/8'], ['::1/128']);
const LINK_LOCAL = list(['169.254.0.0/16'], ['fe80::/10']);
// RFC 1918, carrier-grade NAT (RFC 6598), IPv6 unique local addresses.
const PRIVATE = list(['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10'], ['fc00::/7']);
// Unspecified ("this host"), benchmarking, documentation, multicast, broadcast and other special
// ranges no service of a pipeline lives at; NAT64 and 6to4 embed an IPv4 address we could not vet.
const RESERVED = list(
  ['0.0.0.0/8', '192.0.0.0/24', '192.0.2.0/24', '198.18.0.0/15', '198.51.100.0/24', '203.0.113.0/24', '224.0.0.0/4', '240.0.0.0/4'],
  ['::/128', '64:ff9b::/96', '64:ff9b:1::/48', '2001:db8::/32', '2002::/16', 'ff00::/8', '100::/64'],
);

/** The eight 16-bit groups of an IPv6 address (with an embedded dotted IPv4 tail), or undefined. */
function ipv6Groups(ip: string): number[] | undefined {
  let text = ip.toLowerCase().split('%')[0]!;
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const o = dotted[1]!.split('.').map(Number);
    text = `${text.slice(0, -dotted[1]!.length)}${((o[0]! << 8) | o[1]!).toString(16)}:${((o[2]! << 8) | o[3]!).toString(16)}`;
  }
  const [head, tail] = text.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const fill = text.includes('::') ? 8 - h.length - t.length : 0;
  const groups = [...h, ...Array<string>(fill).fill('0'), ...t].map((g) => parseInt(g, 16));
  return groups.length === 8 && groups.every((g) => g >= 0 && g <= 0xffff) ? groups : undefined;
}

/**
 * The IPv4 address inside an IPv4-mapped (::ffff:a.b.c.d) or IPv4-compatible (::a.b.c.d) IPv6
 * address, in either spelling (the URL parser writes ::ffff:a9fe:a9fe): such an address reaches
 * the IPv4 host, so it is judged as that host.
 */
export function embeddedIPv4(ip: string): string | undefined {
  if (isIP(ip) !== 6) return undefined;
  const g = ipv6Groups(ip);
  if (!g || g.slice(0, 5).some((x) => x !== 0) || (g[5] !== 0xffff && g[5] !== 0)) return undefined;
  if (g[5] === 0 && g[6] === 0) return undefined; // :: and ::1 are themselves
  return [g[6]! >> 8, g[6]! & 0xff, g[7]! >> 8, g[7]! & 0xff].join('.');
}

/** Classifies an IP address (v4 or v6, brackets and zone ids allowed). */
export function addressKind(address: string): AddressKind {
  const ip = address.replace(/^\[|\]$/g, '');
  const v4 = embeddedIPv4(ip);
  if (v4) return addressKind(v4);
  const family = isIP(ip);
  if (family === 0) return 'reserved';
  const type = family === 4 ? 'ipv4' : 'ipv6';
  const plain = ip.split('%')[0]!.toLowerCase();
  if (METADATA.has(plain) || (type === 'ipv6' && ipv6Groups(plain)?.join(':') === ipv6Groups('fd00:ec2::254')?.join(':'))) return 'metadata';
  if (LOOPBACK.check(plain, type)) return 'loopback';
  if (LINK_LOCAL.check(plain, type)) return 'link-local';
  if (PRIVATE.check(plain, type)) return 'private';
  if (RESERVED.check(plain, type)) return 'reserved';
  return 'public';
}
