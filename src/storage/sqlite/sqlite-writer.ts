/**
 * Client of the SQLite writer thread (sqlite-writer-thread.ts): message writes and the main database's WAL
 * checkpoints run there, on another core, instead of on the event loop that serves every session. A thread that
 * cannot start or died makes `available` false; callers then run their transactions on the event loop's
 * connection (same SQL: message-writes.ts).
 *
 * Writes are batched: write() queues one, and whatever queued while the thread was busy goes over as one
 * request, one transaction, one commit (a savepoint per write). Every request runs through the store's WriteGate,
 * so writes still made on the event loop's connection (mailbox changes, large blobs) and the thread take turns
 * instead of meeting SQLite's sleeping busy handler.
 */
import { DbThread, ThreadGone, ThreadUnavailable, type ThreadReply } from './db-thread.js';
import type { WriteOp, WriteReply, WriteResult } from './message-writes.js';
import type { WriteGate } from './write-gate.js';

/** Writes per request at most (a batch holds SQLite's write lock for its whole transaction). */
const BATCH_MAX = 64;
const IN_FLIGHT = 2;

interface Queued {
  op: WriteOp;
  sync: boolean;
  resolve: (v: WriteResult) => void;
  reject: (e: Error) => void;
}

interface Reply extends ThreadReply {
  replies?: WriteReply[];
}

export class SqliteWriter {
  private readonly thread: DbThread<{ ops?: WriteOp[]; checkpoint?: boolean; sync?: boolean }, Reply>;
  private queue: Queued[] = [];
  private pumping = false;

  constructor(
    dbFile: string,
    private readonly gate: WriteGate,
    enabled = true,
  ) {
    this.thread = new DbThread('sqlite-writer-thread', { dbFile }, enabled);
  }

  get available(): boolean {
    return this.thread.available;
  }

  /** A PASSIVE WAL checkpoint on the thread's connection (its writes and fsyncs off the event loop). */
  async checkpoint(): Promise<void> {
    await this.thread.request({ checkpoint: true });
  }

  /**
   * Queues one message write; resolves with its result once its batch committed, and with `sync` once that commit
   * is on disk too (the thread's fdatasync of the WAL after that commit; writes queued meanwhile share the next).
   */
  write<T extends WriteResult>(op: WriteOp, sync = false): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ op, sync, resolve: resolve as (v: WriteResult) => void, reject });
      if (!this.pumping) void this.pump();
    });
  }

  /**
   * Sends what is queued as one batch, with at most IN_FLIGHT batches posted at a time: the thread finds the next
   * batch waiting when it finishes one (no idle gap while the event loop handles the replies), and writes queued
   * meanwhile still share a batch.
   */
  private inFlight = 0;
  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.queue.length && this.inFlight < IN_FLIGHT) {
        const batch = this.queue.splice(0, BATCH_MAX);
        this.inFlight++;
        void this.send(batch).finally(() => {
          this.inFlight--;
          void this.pump();
        });
        // Let the writes of this turn of the event loop join the next batch.
        await new Promise((r) => setImmediate(r));
      }
    } finally {
      this.pumping = false;
    }
  }

  /**
   * Sends one batch; returns once the thread committed it (its in-flight slot and the WriteGate are free again).
   * The batch's writes are answered with the thread's replies at commit, except those that must be durable, which
   * are answered when the thread reports the batch synced to disk.
   */
  private async send(batch: Queued[]): Promise<void> {
    /** The thread's replies, once it reported the commit (with the interim message, or with its answer). */
    let replies: WriteReply[] | null = null;
    // Fails the writes not answered yet: all of them before the commit, the durable ones after it.
    const fail = (err: unknown) => {
      for (const q of replies ? batch.filter((x) => x.sync) : batch) q.reject(err instanceof ThreadGone || err instanceof ThreadUnavailable ? (err as Error) : new Error((err as Error).message));
    };
    const answer = (q: Queued, i: number) => {
      const r = replies?.[i];
      if (r?.ok) q.resolve(r.value);
      else q.reject(new Error(r ? r.error : 'no reply from the writer thread'));
    };
    const sync = batch.some((q) => q.sync);
    let final: Promise<Reply> | null = null;
    try {
      await this.gate.worker(() => {
        let committed!: () => void;
        const progress = new Promise<void>((r) => (committed = r));
        final = this.thread.request({ ops: batch.map((q) => q.op), sync }, (m) => {
          replies = m.replies ?? [];
          batch.forEach((q, i) => q.sync || answer(q, i));
          committed();
        });
        return Promise.race([progress, final]);
      });
    } catch (err) {
      fail(err);
      return;
    }
    void final!.then(
      (m) => {
        if (!replies) {
          // Not a durable batch: the replies come with the answer itself.
          replies = m.replies ?? [];
          batch.forEach(answer);
        } else batch.forEach((q, i) => q.sync && answer(q, i));
      },
      fail,
    );
  }

  stop(): Promise<void> {
    return this.thread.stop();
  }
}
