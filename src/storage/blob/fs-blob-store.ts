/**
 * Content-addressed, immutable blob store on the local file system.
 *
 * put(): sha256 -> blobs/<2 hex>/<64 hex>. The bytes go to a unique temp file in the same file system,
 * are fsynced, renamed into place and the directory is fsynced: after put() resolves the blob survives a
 * crash (kill -9 or power loss). A blob that already exists is not written again (dedup across recipients).
 * Uses the libuv thread pool (fs.promises), never blocking the event loop on fsync.
 */
import { createHash, randomBytes } from 'node:crypto';
import { promises as fsp, constants as fsc, mkdirSync } from 'node:fs';
import path from 'node:path';
import type { BlobStore } from '../types.js';

export class FsBlobStore implements BlobStore {
  private readonly root: string;
  private readonly tmp: string;
  /** Directories known to exist, to skip mkdir calls. */
  private readonly dirs = new Set<string>();

  constructor(root: string) {
    this.root = root;
    this.tmp = path.join(root, 'tmp');
    mkdirSync(this.tmp, { recursive: true });
  }

  path(id: string): string {
    if (!/^[0-9a-f]{64}$/.test(id)) throw new Error(`invalid blob id ${id}`);
    return path.join(this.root, id.slice(0, 2), id);
  }

  async put(data: Buffer): Promise<{ id: string; size: number }> {
    const id = createHash('sha256').update(data).digest('hex');
    const final = this.path(id);
    if (await this.exists(id)) return { id, size: data.length };
    const dir = path.dirname(final);
    if (!this.dirs.has(dir)) {
      await fsp.mkdir(dir, { recursive: true });
      await syncDir(this.root);
      this.dirs.add(dir);
    }
    const tmpFile = path.join(this.tmp, `${id}.${randomBytes(6).toString('hex')}`);
    const fh = await fsp.open(tmpFile, fsc.O_CREAT | fsc.O_WRONLY | fsc.O_EXCL, 0o640);
    try {
      await fh.writeFile(data);
      await fh.datasync();
    } finally {
      await fh.close();
    }
    await fsp.rename(tmpFile, final);
    await syncDir(dir);
    return { id, size: data.length };
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

async function syncDir(dir: string): Promise<void> {
  const fh = await fsp.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
