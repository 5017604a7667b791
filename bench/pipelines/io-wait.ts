// The scale-out benchmark's pipeline: one step that waits `ms` (its input) like a call to a slow
// service, then returns. With `ms: 0` it measures what walflow and PostgreSQL cost per run.
import { definePipeline } from '../../src/pipeline/define.js';

export default definePipeline<{ ms: number }>({
  name: 'bench-io-wait',
  steps: [{ name: 'wait', run: async (ctx) => {
    if (ctx.runInput.ms > 0) await new Promise((r) => setTimeout(r, ctx.runInput.ms));
    return null;
  } }],
});
