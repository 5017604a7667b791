// A run that sleeps across a redeploy: it continues on the loaded version, its steps matched by
// name; a step that is gone stops it with an error that walflow retry resumes once fixed.
import { describe, expect, it } from 'vitest';
import { definePipeline, type Pipeline } from '../../../src/pipeline/define.js';
import type { StepDefinition } from '../../../src/pipeline/types.js';
import { waitFor } from '../../harness/wait.js';
import { useWaitEngine } from './support.js';

const t = useWaitEngine();
const mark = (name: string): StepDefinition => ({ name, run: (_ctx, input: { trail?: string[] } | null) => ({ trail: [...(input?.trail ?? []), name] }) });
const v = (steps: StepDefinition[]): Pipeline => definePipeline({ name: 'deploy', steps });

async function parkedRun(sleep: string): Promise<string> {
  const e1 = await t.run([v([mark('a'), { name: 'nap', sleep }, mark('b')])]);
  const id = await e1.start('deploy', {});
  await waitFor('parked', async () => (await t.q(`SELECT 1 FROM walflow.waits WHERE run_id = $1`, [id])).length === 1);
  await t.stop(e1);
  return id;
}

describe('runs meet new versions', () => {
  it('a sleeping run continues on the new version: added steps run, removed ones do not', async () => {
    const id = await parkedRun('1s');
    const [{ pipeline_version: started }] = await t.q('SELECT pipeline_version FROM walflow.runs WHERE id = $1', [id]);
    // Redeploy: "b" removed, "added" and "c" new, "a" renamed to "a2" (already done: no matter).
    await t.run([v([mark('a2'), mark('pre'), { name: 'nap', sleep: '1s' }, mark('added'), mark('c')])]);
    await t.until(id, 'completed');
    expect(await t.result(id)).toEqual({ trail: ['a', 'added', 'c'] });
    expect((await t.timeline(id)).map((s) => s.step)).toEqual(['a', 'nap', 'added', 'c']);
    const [{ pipeline_version: now }] = await t.q('SELECT pipeline_version FROM walflow.runs WHERE id = $1', [id]);
    expect(now).toBe(started); // the version it started with stays on the run
  });

  it('the step it sleeps in renamed: the run stops with a clear error; retry resumes it once the step is back', async () => {
    const id = await parkedRun('500ms');
    const e2 = await t.run([v([mark('a'), { name: 'rest', sleep: '500ms' }, mark('b')])]);
    await t.until(id, 'failed');
    const [{ error }] = await t.q('SELECT error FROM walflow.runs WHERE id = $1', [id]);
    expect(error.message).toMatch(/^the run is parked in step "nap" \(sleep\), which pipeline "deploy" version \w+ does not have \(its steps: a, rest, b\): .* walflow retry /);
    await t.stop(e2);
    await t.run([v([mark('a'), { name: 'nap', sleep: '500ms' }, mark('b')])]);
    expect(await t.q('SELECT walflow.retry($1) AS ok', [id])).toEqual([{ ok: true }]);
    await t.until(id, 'completed');
    expect(await t.result(id)).toEqual({ trail: ['a', 'b'] });
  });

  it('a run whose last completed step is gone stops and says which', async () => {
    const e1 = await t.run([v([mark('a'), mark('b'), { name: 'c', run: () => { throw new Error('not yet'); }, retry: { maxAttempts: 1 } }])]);
    const id = await e1.start('deploy', {});
    await t.until(id, 'failed'); // past "a" and "b"; failed in "c"
    await t.stop(e1);
    await t.run([v([mark('x'), mark('y'), mark('c')])]);
    expect(await t.q('SELECT walflow.retry($1) AS ok', [id])).toEqual([{ ok: true }]);
    await t.until(id, 'failed');
    const [{ error }] = await t.q('SELECT error FROM walflow.runs WHERE id = $1', [id]);
    expect(error.message).toMatch(/^the run's last completed step "b" is not a step of pipeline "deploy" version \w+ \(its steps: x, y, c\): it was renamed or removed while the run was in flight\. .* walflow retry /);
  });
});
