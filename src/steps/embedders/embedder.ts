// What an embedding pipeline needs from a model, whichever provider serves it (the local model in
// worker threads, or an OpenAI-compatible HTTP endpoint), and how a provider reports its faults.
export interface Embedder {
  readonly model: string;
  readonly dimensions: number;
  readonly maxInputTokens: number;
  countTokens(text: string): number;
  /** `observer` hears about every provider fault of this call, retried or not (remote providers). */
  embed(texts: string[], signal?: AbortSignal, observer?: EmbedObserver): Promise<Float32Array[]>;
  close(): Promise<void>;
}

/** One failed attempt to reach the model: an HTTP error, a timeout, a broken connection or body. */
export interface EmbedFault {
  /** HTTP status ("429", "500"...) or "timeout", "network", "invalid_json", "invalid_response". */
  reason: string;
  status?: number;
  /** Attempt number of this request within the call (1 = first). */
  attempt: number;
  /** When the provider retries it itself: after this many ms. Undefined: the call fails with `message`. */
  retryInMs?: number;
  /** The delay the server asked for (Retry-After), when it did. */
  serverDelayMs?: number;
  /** Texts in the failed request. */
  inputs: number;
  /** What went wrong; secrets (API key, secret headers) already redacted. */
  message: string;
}

/** Per call, so that a provider shared by several pipelines reports each fault to the pipeline that saw it. */
export interface EmbedObserver {
  onFault?(fault: EmbedFault): void;
}
