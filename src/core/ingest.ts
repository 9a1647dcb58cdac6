/**
 * The ONE path by which a message enters mailboxes (SMTP delivery now, IMAP APPEND and import later).
 *
 * ingest(): writes the immutable blob (fsynced; small bodies go into the metadata transaction instead), parses
 * MIME once (offsets, structure kept for IMAP), then commits the metadata. Group commit: what arrives in one turn
 * of the event loop goes to the store as one appendMany, which resolves once durable; the store shares one WAL
 * sync among everything committed meanwhile (SqliteMessages: its writer thread), so under 20 concurrent senders
 * one fsync covers many messages, and at idle a message waits for one fsync.
 * Changes are published, and callers answered, only after the batch is durable.
 * Never resolves before the message is durable; a failure rejects and nothing is half-visible.
 *
 * Full-text indexing is off this path (TextIndexer below): the message's transaction commits only a durable
 * "text owed" marker for its blob (blob_text.pending); the text (kept in memory since the parse) is inserted
 * into the FTS index after the commit, in chunks: on the SQLite store by a thread of its own, into a database of
 * its own (storage/sqlite/text-index-thread.ts), so the trigram insert (3 KB: ~0.3 ms; 64 KB: 3-6 ms) runs beside
 * the message writes instead of holding their lock; without that thread, in short slices on the event loop.
 * A crash never loses the obligation: markers left by a previous process (or dropped from the bounded memory
 * backlog) are found in the database and their text is read back from the blob.
 * SEARCH of header or text keys calls textIndexed() first, which indexes whatever is still pending, so a search
 * always sees every committed message.
 */
import { buildEnvelope, parseMessage } from '../lib/mime/parse.js';
import type { AppendOutcome, MessageRepo, BlobStore, NewMessage, BlobText } from '../storage/types.js';
import type { ChangeBus } from './changes.js';
import { messageIndexData } from './message-index.js';

export interface IngestItem {
  mailboxId: number;
  flags?: number;
  keywords?: string[];
  internalDate?: number;
  ignoreQuota?: boolean;
}

export interface IngestMessage {
  /** The message as received (without prefix). */
  raw: Buffer;
  /** Header lines the server adds (Received ...), stored apart from the content-addressed blob. */
  prefix?: Buffer;
  /** One message body, many mailboxes (several local recipients share one blob). */
  targets: IngestItem[];
}

interface Pending {
  items: NewMessage[];
  resolve: (r: AppendOutcome[]) => void;
  reject: (e: unknown) => void;
}

export class Ingest {
  private pending: Pending[] = [];
  private scheduled = false;

  private readonly texts: TextIndexer | null;

  constructor(
    private readonly deps: { messages: MessageRepo; blobs: BlobStore; changes: ChangeBus; now?: () => number },
  ) {
    const m = deps.messages;
    this.texts = m.indexTexts && m.pendingTexts ? new TextIndexer(m, deps.blobs) : null;
  }

  /** Resolves once every committed message's text is in the full-text index (SEARCH calls this first). */
  async textIndexed(): Promise<void> {
    await this.texts?.catchUp();
  }

  async ingest(msg: IngestMessage): Promise<AppendOutcome[]> {
    // Small bodies go into the metadata transaction (one sync per group commit); larger ones are put() first.
    const b = this.deps.blobs;
    const inline = !!b.inlineLimit && !!b.idOf && msg.raw.length <= b.inlineLimit;
    const blob = inline ? { id: b.idOf!(msg.raw), size: msg.raw.length } : await b.put(msg.raw);
    const parsed = parseMessage(msg.raw);
    // ENVELOPE precomputed with the tree (FETCH ENVELOPE then reads no blob bytes; older rows lack it and
    // FETCH reads the header block as before).
    let mime: typeof parsed & { rootEnvelope?: unknown } = parsed;
    try {
      mime = { ...parsed, rootEnvelope: buildEnvelope(msg.raw, parsed) };
    } catch {
      // left to FETCH, which builds it from the header as it always could
    }
    // Search/sort data and text for the full-text index (IMAP SEARCH BODY/TEXT), extracted once here.
    const index = messageIndexData(msg.raw, mime);
    const now = (this.deps.now ?? Date.now)();
    const items: NewMessage[] = msg.targets.map((t) => ({
      mailboxId: t.mailboxId,
      blobId: blob.id,
      blobSize: blob.size,
      prefix: msg.prefix ?? Buffer.alloc(0),
      flags: t.flags ?? 0,
      keywords: t.keywords ?? [],
      internalDate: t.internalDate ?? now,
      mime,
      ignoreQuota: t.ignoreQuota,
      index,
      deferText: this.texts !== null,
      blobData: inline ? msg.raw : undefined,
    }));
    return new Promise<AppendOutcome[]>((resolve, reject) => {
      this.pending.push({ items, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /**
   * Hands everything pending to the repository as one appendMany (one transaction) and answers each caller when it
   * resolves, which is once the messages are durable. Not awaited: what arrives meanwhile goes in the next call,
   * which the store commits while this one's sync runs (SqliteMessages: the writer thread batches the calls that
   * queue behind one another, and one WAL sync covers every commit before it), so batches grow with the load and
   * a message waits for about one commit and one sync.
   */
  private flush(): void {
    this.scheduled = false;
    const batch = this.pending;
    this.pending = [];
    if (batch.length) void this.commitRound(batch);
  }

  private async commitRound(batch: Pending[]): Promise<void> {
    const all = batch.flatMap((p) => p.items);
    let outcomes: AppendOutcome[];
    try {
      outcomes = await this.deps.messages.appendMany(all);
    } catch (err) {
      for (const p of batch) p.reject(err);
      return;
    }
    if (this.texts) {
      this.texts.noteCommit();
      for (const it of all) if (it.index && it.deferText) this.texts.add(it.blobId, it.index.headers, it.index.body);
    }
    let i = 0;
    for (const p of batch) {
      const mine = outcomes.slice(i, i + p.items.length);
      i += p.items.length;
      for (const o of mine) {
        if (o.ok) this.deps.changes.publish({ type: 'append', accountId: o.accountId, mailboxId: o.message.mailboxId, uid: o.message.uid, modseq: o.message.modseq });
      }
      p.resolve(mine);
    }
  }
}

/** In-memory backlog bounds: beyond them a text is dropped and read back from its blob later (the marker stays). */
const BACKLOG_MAX_ENTRIES = 5000;
const BACKLOG_MAX_CHARS = 64 * 1024 * 1024;
/** One slice of background indexing holds the event loop about this long, then yields for SLICE_GAP_MS. */
const SLICE_MS = 8;
const SLICE_GAP_MS = 4;
/**
 * One FTS transaction: at most this many texts / characters (a 64 KB text costs 3-6 ms to index). The trigram
 * index's cost is mostly per transaction (a new segment, merges): 3 KB texts cost ~0.85 ms each one at a time and
 * ~0.3 ms each 32 at a time (measured here), hence chunks, and holding back partial ones under load (BUSY_MS).
 */
const CHUNK_ENTRIES = 32;
const CHUNK_CHARS = 128 * 1024;
/**
 * While messages are being committed (one committed within BUSY_MS), background indexing runs only full chunks
 * (CHUNK_ENTRIES or CHUNK_CHARS: the per-transaction cost shared by many texts), waits BUSY_MS between chunks, and
 * runs a partial chunk once its oldest text has waited STARVE_MS: a chunk holds SQLite's write lock for a few
 * milliseconds, and every ingest commit waits for it. When commits stop, what is left is indexed at once.
 * SEARCH's catch-up indexes everything pending at once whatever the load.
 */
const BUSY_MS = 25;
const STARVE_MS = 250;
const SCAN_STARVE_MS = 1000;

/**
 * Deferred full-text indexing (see the header). Invariant: every blob_text row with pending = 1 whose body a
 * message references is either in `backlog` or will be found by the database scan (`scanDb`), which is on at
 * start (markers a previous process left) and whenever a text was dropped from the backlog. indexTexts() clears a
 * marker in the transaction that inserts the text and ignores blobs already indexed, so indexing twice is
 * harmless. A text whose body lost its last message before its turn is not indexed (the store skips it); the
 * same body stored again comes back through add().
 */
class TextIndexer {
  /** Texts owed to the index, oldest first (a Map keeps insertion order), with when each arrived. */
  private readonly backlog = new Map<string, { headers: string; body: string; at: number }>();
  private chars = 0;
  private scanDb = true;
  private scanAfter = 0;
  private timer: NodeJS.Timeout | NodeJS.Immediate | null = null;
  private immediate = false;
  /** The slice or catch-up that is running (one at a time: they share the backlog and the scan cursor). */
  private running: Promise<void> = Promise.resolve();

  constructor(
    private readonly messages: MessageRepo,
    private readonly blobs: BlobStore,
  ) {
    this.schedule(0);
  }

  private lastCommit = -Infinity;
  private lastScan = -Infinity;

  /** Texts go to a thread of the store (no time slicing on the event loop, and all of them are deferred). */
  get offThread(): boolean {
    return !!this.messages.textIndexOffThread?.();
  }

  /** An ingest transaction just committed (see BUSY_MS). */
  noteCommit(): void {
    this.lastCommit = performance.now();
  }

  /** Whether background indexing should wait: messages are arriving and no full chunk (nor a starving text) waits. */
  private holdBack(): boolean {
    const now = performance.now();
    if (now - this.lastCommit >= BUSY_MS) return false;
    if (this.backlog.size >= CHUNK_ENTRIES || this.chars >= CHUNK_CHARS) return false;
    const first = this.backlog.values().next();
    return first.done || now - first.value.at < STARVE_MS;
  }

  add(blobId: string, headers: string, body: string): void {
    if (this.backlog.has(blobId)) return;
    if (this.backlog.size >= BACKLOG_MAX_ENTRIES || this.chars + body.length > BACKLOG_MAX_CHARS) this.scanDb = true;
    else {
      this.backlog.set(blobId, { headers, body, at: performance.now() });
      this.chars += headers.length + body.length;
    }
    this.schedule(this.holdBack() ? BUSY_MS : 0);
  }

  /** Indexes everything pending (memory and database), then resolves. */
  catchUp(): Promise<void> {
    const run = this.running.then(async () => {
      while (this.backlog.size || this.scanDb) await this.step(Infinity);
    });
    this.running = run.catch(() => undefined);
    return run;
  }

  private schedule(delayMs: number): void {
    if (this.timer) {
      if (delayMs > 0 || this.immediate) return;
      clearTimeout(this.timer as NodeJS.Timeout); // a full chunk is waiting: now rather than at the timer
    }
    this.immediate = delayMs <= 0;
    const go = () => {
      this.timer = null;
      const run = this.running.then(() => this.step(SLICE_MS, true));
      this.running = run.catch(() => undefined);
      // A failure (e.g. the store closed under us) stops the loop; the markers stay for the next add/catch-up/start.
      void run.then(
        () => {
          if (this.backlog.size || this.scanDb) this.schedule(this.holdBack() ? BUSY_MS : SLICE_GAP_MS);
        },
        () => undefined,
      );
    };
    this.timer = delayMs > 0 ? setTimeout(go, delayMs) : setImmediate(go);
    this.timer.unref?.();
  }

  /** Indexes for about budgetMs: the memory backlog first, then one batch of markers found in the database. */
  private async step(budgetMs: number, background = false): Promise<void> {
    const t0 = performance.now();
    // Off-thread indexing costs the event loop only a message post per chunk: no time slicing needed.
    if (this.offThread) budgetMs = Infinity;
    if (background && this.holdBack()) return;
    while (this.backlog.size && performance.now() - t0 < budgetMs) {
      const chunk: BlobText[] = [];
      let chars = 0;
      for (const [blobId, t] of this.backlog) {
        if (chunk.length >= CHUNK_ENTRIES || (chunk.length && chars + t.body.length > CHUNK_CHARS)) break;
        chunk.push({ blobId, headers: t.headers, body: t.body });
        chars += t.headers.length + t.body.length;
      }
      for (const c of chunk) this.backlog.delete(c.blobId);
      this.chars -= chars;
      try {
        await this.commit(chunk);
      } catch (err) {
        this.scanDb = true; // their markers are still set: the database scan finds them again
        throw err;
      }
      if (background && this.holdBack()) return; // messages are arriving: let their commits go first
    }
    if (this.backlog.size || !this.scanDb || performance.now() - t0 >= budgetMs) return;
    // Bodies to read back (a burst overflowed the backlog): background work that waits for quiet, except for one
    // chunk every SCAN_STARVE_MS while messages keep arriving (SEARCH's catch-up does not wait).
    const now = performance.now();
    if (background && now - this.lastCommit < BUSY_MS && now - this.lastScan < SCAN_STARVE_MS) return;
    this.lastScan = now;
    const rows = this.messages.pendingTexts!(CHUNK_ENTRIES, this.scanAfter);
    if (!rows.length) {
      this.scanDb = false;
      this.scanAfter = 0;
      return;
    }
    const ids: string[] = [];
    for (const r of rows) {
      this.scanAfter = r.row;
      if (!this.backlog.has(r.blobId)) ids.push(r.blobId);
    }
    // The store reads and parses these bodies off the event loop when it can (a burst can leave thousands).
    if (ids.length && (await this.messages.indexBlobTexts?.(ids))) return;
    const chunk: BlobText[] = [];
    for (const blobId of ids) chunk.push({ blobId, ...(await this.readText(blobId)) });
    await this.commit(chunk);
  }

  /** One FTS transaction (taking turns with the event loop's writers: the store's WriteGate). */
  private async commit(chunk: BlobText[]): Promise<void> {
    if (!chunk.length) return;
    await this.messages.indexTexts!(chunk);
  }

  private async readText(blobId: string): Promise<{ headers: string; body: string }> {
    try {
      const raw = await this.blobs.get(blobId);
      const ix = messageIndexData(raw, parseMessage(raw));
      return { headers: ix.headers, body: ix.body };
    } catch {
      return { headers: '', body: '' }; // a blob we cannot read: cleared with empty text rather than retried forever
    }
  }
}
