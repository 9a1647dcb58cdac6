/**
 * Garbage collection of message blobs that nothing references any more (expunged or deleted messages,
 * delivered queue entries, deleted accounts).
 *
 * Safety (a blob deleted while still wanted would lose an acknowledged message):
 *  - A blob is deleted only when it was unreferenced at two passes at least `graceMs` apart, so a reader that
 *    was streaming it (POP3 RETR, IMAP FETCH of a message expunged meanwhile) has long finished.
 *  - A blob put by this process within `graceMs` is never deleted: its reference may not be committed yet
 *    (content addressing lets a new message bring back an orphan's exact bytes).
 *  - The still-unreferenced check, the row removal and the file removal run synchronously in one turn of the
 *    event loop, so no put can interleave. Puts happen only in the server process (the CLI never writes
 *    blobs), which is where this runs.
 * Derived data kept elsewhere goes after a pass (BlobGcStore.pruneDerived: the SQLite store's full-text rows,
 * which live in another database, written by another thread); a crash in between leaves rows the next process's
 * first pass removes.
 */
import type { Logger } from '../log.js';

export interface BlobGcStore {
  orphanBlobs(limit: number): Promise<string[]>;
  dropOrphanBlob(id: string): boolean;
  /**
   * Runs fn (synchronous) once no other connection of the store writes (SqliteStore: the writer thread's batch in
   * flight), so the deletions never sleep in SQLite's busy handler on the event loop.
   */
  writeTurn?<T>(fn: () => T): Promise<T>;
  /**
   * Removes data derived from deleted blobs that lives elsewhere (SqliteStore: full-text rows, in their own
   * database); called after a pass that deleted blobs, and after the first pass of the process (a crash between a
   * blob's deletion and this leaves such rows behind). Returns how many went.
   */
  pruneDerived?(): Promise<number>;
}

export interface BlobGcFiles {
  putRecently(id: string, withinMs: number, now?: number): boolean;
  prunePuts(olderThanMs: number, now?: number): void;
  deleteSync(id: string): void;
}

export interface BlobGcOptions {
  graceMs: number;
  intervalMs: number;
  batch?: number;
  now?: () => number;
}

export class BlobGc {
  /** Orphans seen by an earlier pass, with when they were first seen. */
  private readonly seen = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<number> | null = null;
  /** pruneDerived ran once in this process. */
  private pruned = false;

  constructor(
    private readonly deps: { store: BlobGcStore; files: BlobGcFiles; log: Pick<Logger, 'info' | 'warn'> },
    private readonly opts: BlobGcOptions,
  ) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.runOnce().catch((err) => this.deps.log.warn({ err: (err as Error).message }, 'blob garbage collection failed')), this.opts.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running?.catch(() => undefined);
  }

  /** One pass; returns how many blobs were deleted. */
  runOnce(): Promise<number> {
    this.running ??= this.pass().finally(() => (this.running = null));
    return this.running;
  }

  private async pass(): Promise<number> {
    const now = (this.opts.now ?? Date.now)();
    const orphans = await this.deps.store.orphanBlobs(this.opts.batch ?? 1000);
    const current = new Set(orphans);
    for (const id of this.seen.keys()) if (!current.has(id)) this.seen.delete(id); // referenced again
    const ripe: string[] = [];
    for (const id of orphans) {
      const first = this.seen.get(id);
      if (first === undefined) this.seen.set(id, now);
      else if (now - first >= this.opts.graceMs) ripe.push(id);
    }
    // Synchronous from here (one turn of the event loop): no put can run between the checks and the deletions.
    const drop = (): number => {
      let deleted = 0;
      for (const id of ripe) {
        if (this.deps.files.putRecently(id, this.opts.graceMs, now)) continue;
        if (this.deps.store.dropOrphanBlob(id)) {
          this.deps.files.deleteSync(id);
          deleted++;
        }
        this.seen.delete(id);
      }
      return deleted;
    };
    const deleted = !ripe.length ? 0 : this.deps.store.writeTurn ? await this.deps.store.writeTurn(drop) : drop();
    this.deps.files.prunePuts(this.opts.graceMs, now);
    if (deleted) this.deps.log.info({ deleted }, 'unreferenced message blobs deleted');
    if (this.deps.store.pruneDerived && (deleted || !this.pruned)) {
      this.pruned = true;
      const rows = await this.deps.store.pruneDerived();
      if (rows) this.deps.log.info({ rows }, 'full-text rows of deleted message bodies removed');
    }
    return deleted;
  }
}
