/**
 * Content-addressed, immutable blob store on the local file system.
 *
 * put(): sha256 -> blobs/<2 hex>/<64 hex>. The bytes go to a unique temp file in the same file system, opened
 * with O_DSYNC (the write returns when the data is on disk: one syscall instead of write + fdatasync), are
 * renamed into place, and the directory is fsynced: after put() resolves the blob survives a crash (kill -9 or
 * power loss). A blob that already exists is replaced by an identical one (content addressing makes that
 * harmless; it saves the existence check on the hot path, where blobs are nearly always new).
 *
 * Directory fsyncs: each of the 256 directories keeps one descriptor open, and puts landing in the same
 * directory while a sync of it is queued share that sync (group commit for directory entries).
 * Uses the libuv thread pool (callback fs API: no FileHandle bookkeeping), never blocking the event loop on fsync.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs, { promises as fsp, constants as fsc, mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { BlobStore } from '../types.js';

const writeFile = promisify(fs.writeFile);
const rename = promisify(fs.rename);
const open = promisify(fs.open);
const fsync = promisify(fs.fsync);

/** A blob's content address: the hex SHA-256 of its bytes (every blob store of the project uses it). */
export function contentId(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** One directory's fsync, shared by every put() that renamed into it before the sync started. */
interface DirSync {
  fd: Promise<number>;
  /** The sync not yet started, which newcomers join. */
  queued: Promise<void> | null;
  running: Promise<void> | null;
}

export class FsBlobStore implements BlobStore {
  private readonly root: string;
  private readonly tmp: string;
  /** Directories known to exist, to skip mkdir calls. */
  private readonly dirs = new Set<string>();
  private readonly dirSyncs = new Map<string, DirSync>();

  constructor(root: string) {
    this.root = root;
    this.tmp = path.join(root, 'tmp');
    mkdirSync(this.tmp, { recursive: true });
  }

  path(id: string): string {
    if (!/^[0-9a-f]{64}$/.test(id)) throw new Error(`invalid blob id ${id}`);
    return path.join(this.root, id.slice(0, 2), id);
  }

  /**
   * When each blob was last put (this process): garbage collection never deletes a blob put recently, since its
   * reference may not be committed yet (content addressing: a new message can bring back an orphan's bytes).
   */
  private readonly puts = new Map<string, number>();

  /** Records a put of `id` now (also for blobs another store keeps, e.g. the database: SqliteBlobStore). */
  notePut(id: string, now = Date.now()): void {
    this.puts.set(id, now);
  }

  /** True when `id` was put within the last `withinMs` milliseconds (see puts). */
  putRecently(id: string, withinMs: number, now = Date.now()): boolean {
    const t = this.puts.get(id);
    return t !== undefined && now - t < withinMs;
  }

  /** Forgets put times older than `olderThanMs` (called by the garbage collector). */
  prunePuts(olderThanMs: number, now = Date.now()): void {
    for (const [id, t] of this.puts) if (now - t >= olderThanMs) this.puts.delete(id);
  }

  /** Synchronous removal, so that the collector's check-and-delete cannot interleave with a put. */
  deleteSync(id: string): void {
    rmSync(this.path(id), { force: true });
  }

  async put(data: Buffer): Promise<{ id: string; size: number }> {
    const id = contentId(data);
    this.notePut(id); // before any I/O: see putRecently
    const final = this.path(id);
    const dir = path.dirname(final);
    if (!this.dirs.has(dir)) {
      await fsp.mkdir(dir, { recursive: true });
      await this.syncDir(this.root);
      this.dirs.add(dir);
    }
    const tmpFile = path.join(this.tmp, `${id}.${randomBytes(6).toString('hex')}`);
    await writeFile(tmpFile, data, { flag: (fsc.O_CREAT | fsc.O_WRONLY | fsc.O_EXCL | fsc.O_DSYNC) as unknown as string, mode: 0o640 });
    await rename(tmpFile, final);
    await this.syncDir(dir);
    return { id, size: data.length };
  }

  /** fsync(dir), coalesced: joins a queued sync of the same directory, else queues one after the running one. */
  private syncDir(dir: string): Promise<void> {
    let s = this.dirSyncs.get(dir);
    if (!s) {
      const fd = open(dir, fsc.O_RDONLY);
      fd.catch(() => this.dirSyncs.delete(dir));
      s = { fd, queued: null, running: null };
      this.dirSyncs.set(dir, s);
    }
    if (s.queued) return s.queued;
    const st = s;
    const prev = st.running ?? Promise.resolve();
    const mine: Promise<void> = prev
      .catch(() => undefined)
      .then(async () => {
        st.queued = null;
        st.running = mine;
        await fsync(await st.fd);
      })
      .finally(() => {
        if (st.running === mine) st.running = null;
      });
    st.queued = mine;
    return mine;
  }

  /** Closes the directory descriptors (the store is closing). */
  close(): void {
    for (const s of this.dirSyncs.values()) s.fd.then((fd) => fs.close(fd, () => undefined), () => undefined);
    this.dirSyncs.clear();
  }

  async get(id: string): Promise<Buffer> {
    return fsp.readFile(this.path(id));
  }

  async read(id: string, start: number, end: number): Promise<Buffer> {
    const len = Math.max(0, end - start);
    const buf = Buffer.allocUnsafe(len);
    const fh = await fsp.open(this.path(id), 'r');
    try {
      let off = 0;
      while (off < len) {
        const { bytesRead } = await fh.read(buf, off, len - off, start + off);
        if (bytesRead === 0) break;
        off += bytesRead;
      }
      return off === len ? buf : buf.subarray(0, off);
    } finally {
      await fh.close();
    }
  }

  async exists(id: string): Promise<boolean> {
    try {
      await fsp.access(this.path(id));
      return true;
    } catch {
      return false;
    }
  }

  async delete(id: string): Promise<void> {
    await fsp.rm(this.path(id), { force: true });
  }

  /** Removes temp files left by a crash between write and rename. */
  async cleanTemp(): Promise<number> {
    const names = await fsp.readdir(this.tmp);
    await Promise.all(names.map((n) => fsp.rm(path.join(this.tmp, n), { force: true })));
    return names.length;
  }
}
