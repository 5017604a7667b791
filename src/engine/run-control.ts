// Cancellation for a run and its steps. It means what an AbortController means (cancel, lost lease,
// shutdown, step timeout) but costs almost nothing until a step asks for ctx.signal: Node's
// AbortController and its event listeners cost more per run than a no-op step itself, and most
// runs finish without anything ever being aborted.

export type AbortListener = (reason: unknown) => void;

export class RunControl {
  aborted = false;
  reason: unknown = undefined;
  private controller: AbortController | undefined;
  private listeners: AbortListener[] | undefined;
  private timer: NodeJS.Timeout | undefined;
  private unlink: (() => void) | undefined;

  /**
   * A control aborted by its parent's abort, or after `timeoutMs` with a TimeoutError (the reason
   * AbortSignal.timeout gives, which the executor reports as a retryable step timeout). Call
   * dispose() when the step ends so that neither keeps it alive.
   */
  static child(parent: RunControl, timeoutMs: number): RunControl {
    const c = new RunControl();
    if (parent.aborted) {
      c.abort(parent.reason);
      return c;
    }
    const forward: AbortListener = (reason) => c.abort(reason);
    parent.onAbort(forward);
    c.unlink = () => parent.offAbort(forward);
    c.timer = setTimeout(() => c.abort(new DOMException(`timed out after ${timeoutMs} ms`, 'TimeoutError')), timeoutMs);
    return c;
  }

  /** A real AbortSignal, built on first use and kept in step with this control. */
  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.aborted) this.controller.abort(this.reason);
    }
    return this.controller.signal;
  }

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.dispose();
    this.controller?.abort(reason);
    const listeners = this.listeners;
    this.listeners = undefined;
    if (listeners) for (const l of listeners) l(reason);
  }

  onAbort(listener: AbortListener): void {
    (this.listeners ??= []).push(listener);
  }

  offAbort(listener: AbortListener): void {
    const i = this.listeners?.indexOf(listener) ?? -1;
    if (i >= 0) this.listeners!.splice(i, 1);
  }

  /** Throws the abort reason, like AbortSignal.throwIfAborted. */
  throwIfAborted(): void {
    if (this.aborted) throw this.reason;
  }

  /** Detaches from the parent and stops the timer (the step ended). */
  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.unlink?.();
    this.unlink = undefined;
  }
}
