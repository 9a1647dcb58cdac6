/**
 * Client of the full-text indexing worker thread (messages-text-worker-thread.ts). Started on first use and
 * stopped after IDLE_MS without work, so an idle server carries no second V8 isolate. A worker that cannot start
 * or dies makes `available` false; the caller then indexes on its own thread (ImapMessageStore.indexTexts).
 */
import { existsSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import type { BlobText } from '../types.js';

const IDLE_MS = 30_000;

export class TextIndexWorker {
  private worker: Worker | null = null;
  private broken = false;
  private seq = 0;
  private readonly waiting = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
  private idleTimer: NodeJS.Timeout | null = null;

  constructor(private readonly dbFile: string) {}

  get available(): boolean {
    return !this.broken;
  }

  index(texts: BlobText[]): Promise<void> {
    return this.request({ texts });
  }

  /** A PASSIVE WAL checkpoint on the thread's connection (its writes and fsyncs off the event loop). */
  checkpoint(): Promise<void> {
    return this.request({ checkpoint: true });
  }

  private request(body: { texts?: BlobText[]; checkpoint?: boolean }): Promise<void> {
    const w = this.start();
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    const id = ++this.seq;
    return new Promise<void>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      w.postMessage({ id, ...body });
    });
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    // Run from source under tsx (unit tests, in-process benchmarks), worker threads get no TypeScript loader:
    // use the compiled thread from dist/ (it imports only better-sqlite3); without one, index on this thread.
    const url = import.meta.url.endsWith('.ts')
      ? new URL('../../../dist/storage/sqlite/messages-text-worker-thread.js', import.meta.url)
      : new URL('./messages-text-worker-thread.js', import.meta.url);
    if (!existsSync(url)) {
      this.broken = true;
      throw new Error('text index worker not built');
    }
    const w = new Worker(url, { workerData: { dbFile: this.dbFile } });
    w.unref();
    w.on('message', (m: { id: number; ok: boolean; error?: string }) => {
      const p = this.waiting.get(m.id);
      this.waiting.delete(m.id);
      if (m.ok) p?.resolve();
      else p?.reject(new Error(m.error));
      if (this.waiting.size === 0) this.armIdle();
    });
    const fail = (err: Error) => {
      if (this.worker !== w) return;
      this.worker = null;
      this.broken = true;
      for (const p of this.waiting.values()) p.reject(err);
      this.waiting.clear();
    };
    w.on('error', fail);
    w.on('exit', (code) => {
      if (code !== 0) fail(new Error(`text index worker exited with ${code}`));
      else if (this.worker === w) this.worker = null;
    });
    this.worker = w;
    return w;
  }

  private armIdle(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => void this.stop(), IDLE_MS);
    this.idleTimer.unref();
  }

  async stop(): Promise<void> {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    const w = this.worker;
    this.worker = null;
    if (!w) return;
    const exited = new Promise((r) => w.once('exit', r));
    w.postMessage('close');
    const t = setTimeout(() => void w.terminate(), 2000);
    await exited;
    clearTimeout(t);
    for (const p of this.waiting.values()) p.reject(new Error('text index worker stopped'));
    this.waiting.clear();
  }
}
