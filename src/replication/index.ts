// The replication source: WAL in → RxJS → committed run starts → slot acknowledged.
export { ReplicationSource, type ReplicationSourceOptions, type ReplicationStatus, type ReplicationRole } from './replication-source.js';
export type { ReplicationCounters } from './types.js';
export { dropSlot } from './slot.js';
export { dropPublication } from './publication.js';
