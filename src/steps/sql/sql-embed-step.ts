// An embedding step of a pipeline defined in SQL (walflow.embed_step): embeds one text, with the
// run's :placeholders filled, and outputs { embedding, model, dimensions } for a later SQL step to
// store (':prev.embedding::vector'). The model is acquired on first use and shared per process.
import type { Json, SingleStep } from '../../pipeline/types.js';
import { acquireEmbedder, type EmbedderSpec } from '../embedding/embedder-spec.js';
import { allPlaceholdersEmpty, runContext, substitute } from './run-context.js';

export interface SqlEmbedStepOptions {
  name: string;
  /** The text, with :placeholders. */
  text: string;
  spec: EmbedderSpec;
}

export interface SqlEmbedStep extends SingleStep {
  /** Releases the model (the pipeline's close). */
  release(): Promise<void>;
}

export function sqlEmbedStep(o: SqlEmbedStepOptions): SqlEmbedStep {
  let held: ReturnType<typeof acquireEmbedder> | undefined;
  return {
    name: o.name,
    run: async (ctx, input) => {
      const c = await runContext(ctx.db, ctx, input);
      const text = substitute(o.text, c).trim();
      held ??= acquireEmbedder(o.spec);
      const embedder = await held.embedder;
      // Nothing to embed (every placeholder NULL or empty: 'Title: ' of a NULL title is not a text):
      // a null embedding, which a SQL step can store as NULL.
      if (text === '' || allPlaceholdersEmpty(o.text, c)) return { embedding: null, model: embedder.model, dimensions: embedder.dimensions };
      const [vector] = await embedder.embed([text], ctx.signal);
      return { embedding: Array.from(vector!) as Json, model: embedder.model, dimensions: embedder.dimensions };
    },
    release: async () => {
      await held?.release();
      held = undefined;
    },
  };
}
