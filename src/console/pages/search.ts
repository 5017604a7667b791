// Search: for embedding pipelines, a query box showing the nearest chunks with their distance.
// The pipelines (and their models) come from the process serving the console: `walflow run
// --ui-port` passes the ones it loaded, `walflow ui` loads the pipelines directory.
import { html, type Html } from '../html.js';
import { layout, type PageContext } from '../layout.js';

export interface SearchHit { source_key: string; chunk_index: number; chunk_text: string; distance: number }
export interface ConsoleSearch {
  /** Names of the embedding pipelines that can be searched. */
  pipelines: string[];
  search(pipeline: string, query: string, k: number): Promise<SearchHit[]>;
}

export function searchPage(ctx: PageContext, names: string[], q: { pipeline?: string; query?: string; k: number }, hits?: SearchHit[], error?: string): Html {
  if (names.length === 0) {
    return layout(ctx, 'Search', html`<h1>Search</h1><section class="cards"><div class="card wide"><p class="empty">No embedding pipeline is loaded here: search needs a pipeline made with <code>createEmbeddingPipeline</code> in the pipelines directory.</p></div></section>`);
  }
  const results = hits === undefined ? '' : hits.length === 0
    ? html`<p class="empty">No chunks yet.</p>`
    : html`<table class="grid" id="hits"><thead><tr><th class="n">distance</th><th>source key</th><th class="n">chunk</th><th>text</th></tr></thead>
<tbody>${hits.map((h) => html`<tr><td class="n mono">${h.distance.toFixed(4)}</td><td class="mono">${h.source_key}</td><td class="n">${h.chunk_index}</td><td>${h.chunk_text.length > 600 ? `${h.chunk_text.slice(0, 600)}…` : h.chunk_text}</td></tr>`)}</tbody></table>`;
  return layout(ctx, 'Search', html`<h1>Search</h1>
<form method="get" action="/search" class="filters">
<label>pipeline <select name="pipeline">${names.map((n) => html`<option value="${n}" ${n === q.pipeline ? html`selected` : ''}>${n}</option>`)}</select></label>
<label>query <input name="q" value="${q.query ?? ''}" size="48" placeholder="what are you looking for?" required></label>
<label>k <input name="k" value="${q.k}" size="4"></label>
<button class="btn primary">Search</button>
</form>
${error ? html`<p class="err">${error}</p>` : ''}
<section class="cards"><div class="card wide">${results || html`<p class="empty">Nearest chunks by the pipeline's own model, closest first.</p>`}</div></section>`);
}
