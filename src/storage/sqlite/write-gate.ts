/**
 * Turn-taking between the event loop's write transactions and the writer thread's (its own SQLite connection on
 * another thread, storage/sqlite/sqlite-writer.ts).
 *
 * SQLite admits one writer at a time; a writer that meets another's lock runs the busy handler, which *sleeps*
 * (1, 2, 5, 10 ms ...) and, on the event loop, stalls every session of the server. So a write transaction on the
 * event loop first waits here (asynchronously) for the thread's running batch and holds the next one back, and
 * the thread starts a batch only while no such writer waits. Writers themselves never meet each other: they run
 * synchronously on the one event loop.
 */
const NOOP = (): void => undefined;

export class WriteGate {
  private chunk: Promise<unknown> | null = null;
  private writers = 0;
  private readonly waiting: Array<() => void> = [];

  /**
   * null when a write transaction may run at once (call it synchronously, in the same turn); else a promise of
   * the release function to call right after the (synchronous) transaction.
   */
  enter(): Promise<() => void> | null {
    if (!this.chunk) return null;
    this.writers++;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      if (--this.writers === 0) for (const w of this.waiting.splice(0)) w();
    };
    return this.chunk.then(
      () => release,
      () => release,
    );
  }

  /** Convenience: waits for the turn, runs the synchronous transaction, releases. */
  async write<T>(fn: () => T): Promise<T> {
    const wait = this.enter();
    const release = wait ? await wait : NOOP;
    try {
      return fn();
    } finally {
      release();
    }
  }

  /** Runs one worker transaction once no event-loop writer is waiting. */
  async worker<T>(run: () => Promise<T>): Promise<T> {
    while (this.writers) await new Promise<void>((r) => this.waiting.push(r));
    const p = run();
    this.chunk = p;
    try {
      return await p;
    } finally {
      if (this.chunk === p) this.chunk = null;
    }
  }
}
