// The outbound-host policy: which URLs an HTTP step may call, decided before connecting.
import { describe, expect, it } from 'vitest';
import { addressKind, embeddedIPv4 } from '../../src/steps/http/addresses.js';
import { hostAllowed, HostNotAllowedError, parseHostPattern, vetUrl, type Lookup } from '../../src/steps/http/host-policy.js';

const resolvesTo = (...addresses: string[]): Lookup => async () => addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
const refused = (url: string, policy: Parameters<typeof vetUrl>[1], lookup: Lookup = resolvesTo('93.184.216.34')) => vetUrl(new URL(url), policy, lookup).then(() => 'allowed', (err: unknown) => {
  if (!(err instanceof HostNotAllowedError)) throw err;
  return err.message;
});

describe('address kinds', () => {
  it('knows loopback, link-local, metadata, private and reserved ranges, in v4 and v6', () => {
    expect(addressKind('127.0.0.1')).toBe('loopback');
    expect(addressKind('::1')).toBe('loopback');
    expect(addressKind('169.254.169.254')).toBe('metadata');
    expect(addressKind('fd00:ec2::254')).toBe('metadata');
    expect(addressKind('169.254.10.1')).toBe('link-local');
    expect(addressKind('fe80::1')).toBe('link-local');
    expect(addressKind('10.1.2.3')).toBe('private');
    expect(addressKind('172.31.0.1')).toBe('private');
    expect(addressKind('192.168.1.1')).toBe('private');
    expect(addressKind('fd12::1')).toBe('private');
    expect(addressKind('0.0.0.0')).toBe('reserved');
    expect(addressKind('::')).toBe('reserved');
    expect(addressKind('8.8.8.8')).toBe('public');
    expect(addressKind('2606:4700::1111')).toBe('public');
  });

  it('judges an IPv4-mapped IPv6 address as the IPv4 host it reaches, in both spellings', () => {
    expect(embeddedIPv4('::ffff:169.254.169.254')).toBe('169.254.169.254');
    expect(embeddedIPv4('::ffff:a9fe:a9fe')).toBe('169.254.169.254');
    expect(addressKind('::ffff:169.254.169.254')).toBe('metadata');
    expect(addressKind('[::ffff:7f00:1]')).toBe('loopback');
    expect(addressKind('::ffff:8.8.8.8')).toBe('public');
  });
});

describe('vetUrl', () => {
  it('refuses metadata, link-local, loopback and private targets by default, however they are spelled', async () => {
    expect(await refused('http://169.254.169.254/latest/meta-data/', {})).toMatch(/169\.254\.169\.254, a metadata address/);
    expect(await refused('http://[::ffff:169.254.169.254]/', {})).toMatch(/metadata address/);
    expect(await refused('http://2852039166/', {})).toMatch(/metadata address/); // decimal spelling of 169.254.169.254
    expect(await refused('http://metadata.google.internal/computeMetadata/v1/', {})).toMatch(/cloud metadata service/);
    expect(await refused('http://[fe80::1]/', {})).toMatch(/link-local/);
    expect(await refused('http://127.0.0.1:5432/', {})).toMatch(/loopback address: refused \(allowPrivate/);
    expect(await refused('http://10.0.0.5/', {})).toMatch(/private address/);
    expect(await refused('http://example.com/', {})).toBe('allowed');
  });

  it('refuses a name when ANY of its addresses is refused (DNS rebinding)', async () => {
    expect(await refused('https://evil.example/', {}, resolvesTo('93.184.216.34', '169.254.169.254'))).toMatch(/resolves to 169\.254\.169\.254/);
    expect(await refused('https://internal.example/', {}, resolvesTo('10.0.0.7'))).toMatch(/private/);
  });

  it('allowPrivate lets loopback and private through, but never link-local or metadata', async () => {
    expect(await refused('http://127.0.0.1:8080/', { allowPrivate: true })).toBe('allowed');
    expect(await refused('http://10.0.0.5/', { allowPrivate: true })).toBe('allowed');
    expect(await refused('http://169.254.169.254/', { allowPrivate: true })).toMatch(/metadata/);
    expect(await refused('http://[fe80::1]/', { allowPrivate: true })).toMatch(/link-local/);
  });

  it('checks the allowlist: names, *.patterns, ports', async () => {
    const allowHosts = ['api.example.com', '*.svc.example.com', 'hooks.example.com:8443', 'any.example.com:*'];
    expect(await refused('https://api.example.com/v1', { allowHosts })).toBe('allowed');
    expect(await refused('https://API.example.com./v1', { allowHosts })).toBe('allowed');
    expect(await refused('https://api.example.com:444/', { allowHosts })).toMatch(/not on the allowed hosts/);
    expect(await refused('https://a.svc.example.com/', { allowHosts })).toBe('allowed');
    expect(await refused('https://svc.example.com/', { allowHosts })).toMatch(/not on the allowed hosts/);
    expect(await refused('https://evilsvc.example.com/', { allowHosts })).toMatch(/not on the allowed hosts/);
    expect(await refused('https://hooks.example.com:8443/', { allowHosts })).toBe('allowed');
    expect(await refused('https://hooks.example.com/', { allowHosts })).toMatch(/not on the allowed hosts/);
    expect(await refused('http://any.example.com:9999/', { allowHosts })).toBe('allowed');
    expect(await refused('https://other.example.com/', { allowHosts: [] })).toMatch(/none are allowed; operators set WALFLOW_HTTP_ALLOW_HOSTS/);
    // An allowed name still may not resolve to an internal address.
    expect(await refused('https://api.example.com/', { allowHosts }, resolvesTo('169.254.169.254'))).toMatch(/metadata/);
  });

  it('only http and https; hostPolicy any skips the checks', async () => {
    expect(await refused('file:///etc/passwd', 'any')).toMatch(/only http and https/);
    expect(await refused('http://127.0.0.1/', 'any')).toBe('allowed');
  });

  it('parses allowlist entries and names a bad one', () => {
    expect(parseHostPattern('[::1]:8080')).toEqual({ host: '::1', wildcard: false, port: 8080 });
    expect(() => parseHostPattern('http://x.com')).toThrow(/is not a host pattern/);
    expect(() => parseHostPattern('x.com:70000')).toThrow(/is not a host pattern/);
    expect(hostAllowed(new URL('http://[::1]:8080/'), ['[::1]:8080'])).toBe(true);
  });
});
