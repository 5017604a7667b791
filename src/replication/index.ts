// The replication layer's front door — everything outside src/replication imports from here:
// the replication source (WAL in → RxJS → committed run starts → slot acknowledged), the startup
// checks of the server and the pipelines' source tables, and dropping a slot or publication.
// Inside, files are grouped by the stage a change passes: setup/ (publication, slot, validation),
// stream/ (WAL stream → change events, flow control), operators/ (route, filter, key, batch),
// writing/ (run starts and the durable position), leadership/ (one consumer per slot).
export { ReplicationSource, type ReplicationSourceOptions, type ReplicationStatus, type ReplicationRole } from './replication-source.js';
export type { ReplicationCounters } from './types.js';
export { checkServer, resolveSources, type ResolvedSources } from './setup/validate.js';
export { dropSlot } from './setup/slot.js';
export { dropPublication } from './setup/publication.js';
