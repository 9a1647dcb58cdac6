/**
 * A worker thread with its own SQLite connection (sqlite-writer-thread.ts, text-index-thread.ts), seen from the
 * event loop: requests are posted with an id and answered in order. Started on first use and stopped after
 * IDLE_MS without work, so an idle server carries no extra V8 isolates. A thread that cannot start (not built)
 * or dies makes `available` false for good; callers then do the work on the event loop's connection.
 */
import { existsSync } from 'node:fs';
import { Worker } from 'node:worker_threads';

const IDLE_MS = 30_000;

/** The thread stopped or failed while a request was in flight: whether it committed is unknown. */
export class ThreadGone extends Error {}
/** The thread is not available (not built, failed before): the request was not sent. */
export class ThreadUnavailable extends Error {}

export interface ThreadReply {
  id: number;
  ok: boolean;
  error?: string;
  /** An interim message (the request is not answered yet): passed to the request's onProgress. */
  progress?: boolean;
}

export class DbThread<Req extends object, Rep extends ThreadReply = ThreadReply> {
  private worker: Worker | null = null;
  private broken = false;
  private seq = 0;
  private readonly waiting = new Map<number, { resolve: (m: Rep) => void; reject: (e: Error) => void; onProgress?: (m: Rep) => void }>();
  private idleTimer: NodeJS.Timeout | null = null;

  /** `script`: the thread's module name in dist/storage/sqlite (without .js); `enabled` false: never started. */
  constructor(
    private readonly script: string,
    private readonly data: Record<string, unknown>,
    enabled = true,
  ) {
    this.broken = !enabled;
  }

  get available(): boolean {
    return !this.broken;
  }

  request(body: Req, onProgress?: (m: Rep) => void): Promise<Rep> {
    const w = this.start();
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    const id = ++this.seq;
    return new Promise<Rep>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject, onProgress });
      w.postMessage({ id, ...body });
    });
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    if (this.broken) throw new ThreadUnavailable(`${this.script} failed earlier`);
    // Run from source under tsx (unit tests, in-process benchmarks), worker threads get no TypeScript loader:
    // use the compiled thread from dist/; without one, the caller works on its own thread.
    const url = import.meta.url.endsWith('.ts')
      ? new URL(`../../../dist/storage/sqlite/${this.script}.js`, import.meta.url)
      : new URL(`./${this.script}.js`, import.meta.url);
    if (!existsSync(url)) {
      this.broken = true;
      throw new ThreadUnavailable(`${this.script} not built`);
    }
    const w = new Worker(url, { workerData: this.data });
    w.unref();
    w.on('message', (m: Rep) => {
      const p = this.waiting.get(m.id);
      if (m.progress) {
        p?.onProgress?.(m);
        return;
      }
      this.waiting.delete(m.id);
      if (m.ok) p?.resolve(m);
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
    w.on('error', (err) => fail(new ThreadGone(err.message)));
    w.on('exit', (code) => {
      if (code !== 0) fail(new ThreadGone(`${this.script} exited with ${code}`));
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
    for (const p of this.waiting.values()) p.reject(new ThreadGone(`${this.script} stopped`));
    this.waiting.clear();
  }
}
