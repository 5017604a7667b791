// The operator's outbound-host policy, from configuration: what SQL-defined pipelines' HTTP steps
// (issue #14) must pass as `hostPolicy`, so that a database user cannot aim workers at internal hosts.
import type { WalflowConfig } from '../../config/config.js';
import type { HostPolicy } from './host-policy.js';

export function httpHostPolicyFromConfig(config: Pick<WalflowConfig, 'httpAllowHosts' | 'httpAllowPrivate'>): HostPolicy {
  return { allowHosts: [...config.httpAllowHosts], allowPrivate: config.httpAllowPrivate };
}
