/**
 * A first-come, first-served async mutex over SQLite's one connection. better-sqlite3 runs each
 * statement synchronously, but a transaction spans awaits; without this queue two async
 * callers' statements would interleave inside one BEGIN…COMMIT ("cannot start a transaction
 * within a transaction", or worse, one caller committing the other's half-done work).
 */
export class SessionQueue {
  #tail: Promise<void> = Promise.resolve();
  #waiting = 0;
  #held = false;

  /** Callers queued behind the current holder. */
  get waiting(): number {
    return this.#waiting;
  }

  /** True while some caller holds the session. */
  get held(): boolean {
    return this.#held;
  }

  /** Run `fn` once every earlier caller has finished; the next caller waits for this one. */
  run<T>(fn: () => Promise<T>): Promise<T> {
    const previous = this.#tail;
    let release!: () => void;
    this.#tail = new Promise<void>((resolve) => (release = resolve));
    this.#waiting++;
    return previous.then(async () => {
      this.#waiting--;
      this.#held = true;
      try {
        return await fn();
      } finally {
        this.#held = false;
        release();
      }
    });
  }
}
