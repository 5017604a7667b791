// What the wait steps share (wait-steps.ts: sleep, signal; child-runs.ts: children): their
// arguments and outcome, and finishing or parking a wait inside a run transaction.
import type pg from 'pg';
import type { Json, StepContext, WaitStep } from '../pipeline/types.js';
import type { GroupWriter } from './group-writer.js';
import { writeCheckpoints, type CheckpointItem } from './sql/checkpoint.js';
import type { ClaimedRun, ParkedWait } from './sql/claim.js';
import { clearWait, type ParkSpec, type SleepPark } from './sql/waits.js';

export interface SleepGroups {
  parks: GroupWriter<SleepPark>;
  wakes: GroupWriter<CheckpointItem>;
}

export type WaitOutcome =
  | { kind: 'done'; output: Json }
  | { kind: 'parked'; until: Date | null }
  | { kind: 'lost' }
  | { kind: 'failed'; error: unknown; retryable: boolean };

export interface WaitArgs {
  pool: pg.Pool;
  owner: string;
  run: ClaimedRun;
  step: WaitStep;
  /** The step's checkpoint ordinal (walflow.steps.step_index). */
  ord: number;
  final: boolean;
  input: unknown;
  attempt: number;
  /** The wait this run was parked in at this step, from the claim (undefined: reached just now). */
  parked: ParkedWait | undefined;
  /** Group-committed parks and wakes of sleeps (absent: each in its own run transaction). */
  sleeps?: SleepGroups | undefined;
  /** Calls user code of the step (a sleep's or children's function) with a full StepContext. */
  call: <T>(fn: (ctx: StepContext, input: unknown) => T | Promise<T>) => Promise<{ ok: true; value: T } | { ok: false; error: unknown }>;
}

/** Finishes the wait step: clears the wait and writes its checkpoint, in the run transaction `tx`. */
export async function finishWait(tx: pg.PoolClient, a: WaitArgs, output: Json): Promise<boolean> {
  await clearWait(tx, a.run.id);
  const item: CheckpointItem = { run_id: a.run.id, step_index: a.ord, step: a.step.name, output, attempts: a.attempt, duration_ms: 0, final: a.final };
  const applied = await writeCheckpoints(tx, [item], true);
  return applied.has(a.run.id);
}

/** The run transaction's verdict after finishWait: commit and go on, or (checkpoint refused) roll back, lost. */
export function finished(applied: boolean, output: Json): { commit: boolean; value: WaitOutcome } {
  return applied ? { commit: true, value: { kind: 'done', output } } : { commit: false, value: { kind: 'lost' } };
}

export function parkSpec(a: WaitArgs, kind: ParkedWait['kind'], until: ParkSpec['until'], extra: Partial<ParkSpec> = {}): ParkSpec {
  return { runId: a.run.id, pipeline: a.run.pipeline, stepIndex: a.ord, step: a.step.name, kind, until, ...extra };
}

