// Example: comment moderation with a durable wait for a person. Each new comment is classified by a
// tiny offline rule; a clean one is published at once, a flagged one waits (parked: no worker, no
// memory) up to a day for a moderator's signal, then is published or hidden. Silence for a day
// hides it: an unreviewed flagged comment stays out of sight rather than going live unchecked.
//
// The source table is yours (create it before `walflow run`, see the README, "Durable waits"):
//   CREATE TABLE comments (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, author text NOT NULL,
//                          body text NOT NULL, status text NOT NULL DEFAULT 'pending');
// A moderator decides by key (the comment's id), from SQL, the CLI or TypeScript:
//   SELECT walflow.signal_key('comment-moderation', '42', 'moderation', '{"decision": "publish", "moderator": "ann"}');
//   walflow signal --pipeline comment-moderation 42 moderation '{"decision": "hide"}'
import { definePipeline, NonRetryableError, type SignalResult } from 'walflow';

interface Comment { id: number; author: string; body: string; status: string }
interface Verdict { reasons: string[] }
type Decision = 'published' | 'hidden';

// Deterministic and offline on purpose: swap in your own classifier (an httpStep to a model, say).
const BANNED = ['casino', 'free money', 'viagra'];
const LINK = /\bhttps?:\/\/|\bwww\./i;

export function classify(body: string): string[] {
  const lower = body.toLowerCase();
  const reasons = BANNED.filter((w) => lower.includes(w)).map((w) => `banned word "${w}"`);
  if (LINK.test(body)) reasons.push('contains a link');
  return reasons;
}

/** The moderator's signal payload, checked: a typo must not publish or hide anything by accident. */
function decisionOf(review: SignalResult): { status: Decision; by: string } {
  if (review.timedOut) return { status: 'hidden', by: 'timeout' };
  const p = review.payload as { decision?: unknown; moderator?: unknown } | null;
  if (p?.decision !== 'publish' && p?.decision !== 'hide') {
    // Not retried: the signal was consumed; the run fails visibly with what was sent (docs: "Durable waits").
    throw new NonRetryableError(`moderation signal payload must be {"decision": "publish" | "hide"}, got ${JSON.stringify(review.payload)}`);
  }
  return { status: p.decision === 'publish' ? 'published' : 'hidden', by: typeof p.moderator === 'string' ? p.moderator : 'moderator' };
}

export default definePipeline<Comment>({
  name: 'comment-moderation',
  // Only new comments; existing rows are not re-moderated when the pipeline first loads.
  source: { table: 'comments', events: ['insert'], backfill: false },
  targets: ['moderation_log'],
  // The audit table this pipeline writes; idempotent, run by every process that loads the file.
  setup: async ({ db }) => {
    await db.query(`CREATE TABLE IF NOT EXISTS moderation_log (
      comment_id bigint PRIMARY KEY, status text NOT NULL, decided_by text NOT NULL,
      reasons text[] NOT NULL, decided_at timestamptz NOT NULL DEFAULT now())`);
  },
  steps: [
    { name: 'classify', run: (ctx): Verdict => ({ reasons: classify(ctx.runInput.row.body) }) },
    // Skipped (recorded as skipped) for a clean comment; otherwise parked until the signal or 24 h.
    { name: 'review', when: (_ctx, v: Verdict) => v.reasons.length > 0, waitFor: { signal: 'moderation', timeout: '24h' } },
    {
      name: 'apply',
      run: async (ctx, review: Verdict | SignalResult) => {
        const { reasons } = (await ctx.output('classify')) as unknown as Verdict;
        const d = 'timedOut' in review ? decisionOf(review) : { status: 'published' as const, by: 'auto' };
        // Through ctx.tx: the status change and the log row commit with this step's checkpoint, once.
        const tx = await ctx.tx();
        await tx.query('UPDATE comments SET status = $1 WHERE id = $2', [d.status, ctx.runInput.key.id]);
        await tx.query('INSERT INTO moderation_log (comment_id, status, decided_by, reasons) VALUES ($1, $2, $3, $4)',
          [ctx.runInput.key.id, d.status, d.by, reasons]);
        return { ...d, reasons };
      },
    },
  ],
});
