/**
 * How many requests generate at once (`parallel`) and how many may wait for a slot
 * (`maxQueue`): past that a request is refused at once (429 with Retry-After) rather than
 * queued without bound. The engine batches whatever runs; this only caps it, so one server
 * can't be made to hold unbounded sequences and memory.
 */
import { ApiError } from "./errors.js";

export class Admission {
  private active = 0;
  private readonly waiters: Array<{ resolve: () => void; reject: (e: unknown) => void }> = [];

  constructor(
    readonly parallel: number,
    readonly maxQueue: number,
  ) {}

  get running(): number {
    return this.active;
  }

  get waiting(): number {
    return this.waiters.length;
  }

  /** Resolves when a slot is free; rejects at once when the queue is full, or on abort. */
  acquire(signal: AbortSignal): Promise<void> {
    if (this.active < this.parallel) {
      this.active++;
      return Promise.resolve();
    }
    if (this.waiters.length >= this.maxQueue)
      return Promise.reject(new ApiError(429, `the server is at capacity (${this.parallel} running, ${this.maxQueue} waiting); retry later`, "rate_limit_error", null, "queue_full", 1));
    return new Promise<void>((resolve, reject) => {
      const waiter = {
        resolve: () => {
          signal.removeEventListener("abort", onAbort);
          resolve();
        },
        reject,
      };
      const onAbort = () => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new ApiError(499, "the client went away", "request_cancelled"));
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  release(): void {
    const next = this.waiters.shift();
    if (next) next.resolve();
    else this.active--;
  }

  /** Refuses everything waiting (shutdown). */
  rejectWaiting(error: ApiError): void {
    for (const w of this.waiters.splice(0)) w.reject(error);
  }
}
