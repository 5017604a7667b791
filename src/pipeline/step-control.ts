// What a step can return besides its output: finish the run now, or run this step again later.
// Markers are plain objects tagged with a registered symbol, so that two copies of walflow in one
// process (the package and a pipeline file's own import) recognise each other's.
import { parseDuration } from '../util/duration.js';
import type { Duration } from './types.js';

const TAG = Symbol.for('walflow.stepControl');

export interface FinishRun<O = unknown> {
  readonly [TAG]: 'finish';
  readonly output: O;
}

export interface RunAgain {
  readonly [TAG]: 'again';
  readonly afterMs: number;
}

/**
 * Ends the run now, completed, with `output` as this step's output and the run's result; the steps
 * after it do not run.
 */
export function finish<O>(output: O): FinishRun<O> {
  return { [TAG]: 'finish', output };
}

/**
 * Runs this step again after `after` (polling an external job until it reports done). The run is
 * parked meanwhile and this does not count as a failed attempt; `ctx.repeats` counts the repeats,
 * bounded by the step's `maxRepeats` (default 1000).
 */
export function again(after: Duration): RunAgain {
  return { [TAG]: 'again', afterMs: parseDuration(after, 'again(after)') };
}

export function stepControl(value: unknown): FinishRun | RunAgain | undefined {
  if (typeof value !== 'object' || value === null || !(TAG in value)) return undefined;
  return value as FinishRun | RunAgain;
}

export function isFinish(c: FinishRun | RunAgain): c is FinishRun {
  return c[TAG] === 'finish';
}
