/**
 * The ONE path by which a message enters mailboxes (SMTP delivery now, IMAP APPEND and import later).
 *
 * ingest(): writes the immutable blob (fsynced), parses MIME once (offsets, structure kept for IMAP), then
 * commits the metadata. Calls arriving within the same event-loop turn share one database transaction and
 * therefore one fsync (group commit). Changes are published only after the commit returned.
 * Never resolves before the message is durable; a failure rejects and nothing is half-visible.
 */
import { parseMessage } from '../lib/mime/parse.js';
import type { AppendOutcome, MessageRepo, BlobStore, NewMessage } from '../storage/types.js';
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

  constructor(
    private readonly deps: { messages: MessageRepo; blobs: BlobStore; changes: ChangeBus; now?: () => number },
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

  /** Commits everything pending in one transaction (one fsync), then answers each caller. */
  private async flush(): Promise<void> {
    const batch = this.pending;
    this.pending = [];
    this.scheduled = false;
    const all = batch.flatMap((p) => p.items);
    let outcomes: AppendOutcome[];
    try {
      outcomes = await this.deps.messages.appendMany(all);
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
