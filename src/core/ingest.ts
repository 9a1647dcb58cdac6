/**
 * The ONE path by which a message enters mailboxes (SMTP delivery now, IMAP APPEND and import later).
 *
 * ingest(): writes the immutable blob (fsynced), parses MIME once (offsets, structure kept for IMAP), then
 * commits the metadata. Group commit: one flush loop commits everything pending in one transaction; with a
 * store that supports it (GroupCommit) the commit itself does not fsync and one sync off the event loop makes
 * the batch durable. Messages arriving while that sync runs wait for the next round, so batches grow with the
 * load: under 20 concurrent senders one fsync covers many messages, at idle a message waits for one fsync.
 * Changes are published, and callers answered, only after the batch is durable.
 * Never resolves before the message is durable; a failure rejects and nothing is half-visible.
 */
import { parseMessage } from '../lib/mime/parse.js';
import type { AppendOutcome, MessageRepo, BlobStore, NewMessage, GroupCommit } from '../storage/types.js';
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
  /** The flush loop is running (committing or waiting for its sync): new arrivals join its next round. */
  private flushing = false;

  constructor(
    private readonly deps: { messages: MessageRepo; blobs: BlobStore; changes: ChangeBus; now?: () => number; groupCommit?: GroupCommit },
  ) {}

  async ingest(msg: IngestMessage): Promise<AppendOutcome[]> {
    const blob = await this.deps.blobs.put(msg.raw);
    const mime = parseMessage(msg.raw);
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
    }));
    return new Promise<AppendOutcome[]>((resolve, reject) => {
      this.pending.push({ items, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => void this.flush());
      }
    });
  }

  /** Commits everything pending in one transaction (one fsync), then answers each caller; repeats while more came. */
  private async flush(): Promise<void> {
    this.scheduled = false;
    if (this.flushing) return; // the running loop takes the new arrivals in its next round
    this.flushing = true;
    try {
      while (this.pending.length) await this.commitRound();
    } finally {
      this.flushing = false;
    }
  }

  private async commitRound(): Promise<void> {
    const batch = this.pending;
    this.pending = [];
    const all = batch.flatMap((p) => p.items);
    const gc = this.deps.groupCommit;
    let outcomes: AppendOutcome[];
    try {
      // appendMany runs its transaction synchronously inside the call (better-sqlite3), as deferSync requires.
      outcomes = gc ? await gc.deferSync(() => this.deps.messages.appendMany(all)) : await this.deps.messages.appendMany(all);
      if (gc) await gc.syncCommitted();
    } catch (err) {
      for (const p of batch) p.reject(err);
      return;
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
