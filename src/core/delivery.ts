/**
 * Delivery of one received message to its recipients: local accounts through ingest, everything else into
 * the durable outbound queue. Resolves only when every part is durable; the caller answers 250 after that.
 *
 * Order: the blob is written once; the queue entry (remote recipients) is committed before the local
 * mailboxes, so a crash between the two can at worst cause a retry to duplicate remote mail that was not
 * yet sent, never lose an acknowledged message.
 * Quota: enforced at RCPT (see protocols/smtp); here local delivery ignores quota so that a message
 * accepted at RCPT is never refused after DATA (like Dovecot's quota grace).
 */
import type { Logger } from '../log.js';
import type { MailboxRepo, QueueRepo, BlobStore, Account } from '../storage/types.js';
import type { Directory } from './directory.js';
import type { Ingest } from './ingest.js';

export interface EnvelopeRecipient {
  address: string;
  orcpt?: string | null;
  notify?: string[] | null;
}

export interface DeliveryRequest {
  sender: string;
  recipients: EnvelopeRecipient[];
  raw: Buffer;
  prefix: Buffer;
  /** Authenticated submitter, if any. */
  accountId: number | null;
  envid?: string | null;
  ret?: 'FULL' | 'HDRS' | null;
  smtputf8?: boolean;
  body8bit?: boolean;
  /** Recipients in non-local domains go to the queue only when this is true (submission, relay networks). */
  allowRelay: boolean;
  /** Inbound checks judged it spam: local copies go to each account's Junk mailbox. */
  junk?: boolean;
}

export interface DeliveryResult {
  localAccounts: string[];
  queueId: string | null;
  remoteRecipients: string[];
  /** Recipients that no longer resolve (removed between RCPT and DATA). */
  dropped: string[];
}

export class Delivery {
  constructor(
    private readonly deps: {
      directory: Directory;
      ingest: Ingest;
      mailboxes: MailboxRepo;
      queue: QueueRepo;
      blobs: BlobStore;
      log: Logger;
      /** DKIM-signs mail we send for our domains (core/dkim.ts: why here, before storing). */
      signer?: { sign(raw: Buffer): Promise<{ raw: Buffer; domain: string | null; selectors: string[] }> };
      /** Called after a queue entry is durable (wakes the queue runner). */
      onQueued?: () => void;
    },
  ) {}

  async deliver(input: DeliveryRequest): Promise<DeliveryResult> {
    let req = input;
    // Submitted / relayed mail (never mail arriving from the world) is signed once, before it is stored.
    if (req.allowRelay && req.sender !== '' && this.deps.signer) {
      const signed = await this.deps.signer.sign(req.raw);
      if (signed.selectors.length) req = { ...req, raw: signed.raw };
    }
    const accounts = new Map<number, Account>();
    const remote = new Map<string, EnvelopeRecipient>();
    const dropped: string[] = [];
    for (const rcpt of req.recipients) {
      const r = await this.deps.directory.resolveRecipient(rcpt.address);
      if (r.kind === 'local') {
        for (const a of r.resolution.accounts) accounts.set(a.id, a);
        // Forwarded by an alias: the original ORCPT is kept for DSNs (RFC 3461 4.2).
        for (const t of r.resolution.remote) if (!remote.has(t)) remote.set(t, { address: t, orcpt: rcpt.orcpt ?? `rfc822;${rcpt.address}`, notify: rcpt.notify ?? null });
      } else if (r.kind === 'remote' && req.allowRelay) {
        if (!remote.has(rcpt.address)) remote.set(rcpt.address, rcpt);
      } else {
        dropped.push(rcpt.address);
      }
    }

    let queueId: string | null = null;
    if (remote.size) {
      const blob = await this.deps.blobs.put(req.raw);
      const entry = await this.deps.queue.enqueue({
        sender: req.sender,
        blobId: blob.id,
        prefix: req.prefix,
        size: req.prefix.length + blob.size,
        accountId: req.accountId,
        envid: req.envid ?? null,
        ret: req.ret ?? null,
        smtputf8: !!req.smtputf8,
        body8bit: !!req.body8bit,
        recipients: [...remote.values()].map((r) => ({ address: r.address, orcpt: r.orcpt ?? null, notify: r.notify ?? null })),
      });
      queueId = entry.id;
      this.deps.onQueued?.();
    }

    if (accounts.size) {
      const targets = [];
      for (const a of accounts.values()) {
        const junk = req.junk ? await this.deps.mailboxes.bySpecialUse(a.id, '\\Junk') : null;
        const inbox = junk ?? (await this.deps.mailboxes.get(a.id, 'INBOX'));
        if (!inbox) throw new Error(`account ${a.address} has no INBOX`);
        targets.push({ mailboxId: inbox.id, ignoreQuota: true });
      }
      const outcomes = await this.deps.ingest.ingest({ raw: req.raw, prefix: req.prefix, targets });
      const failed = outcomes.filter((o) => !o.ok);
      if (failed.length) throw new Error(`local delivery failed for ${failed.length} mailbox(es)`);
    }
    if (dropped.length) this.deps.log.warn({ dropped }, 'recipients no longer resolve at delivery time; not delivered');
    return { localAccounts: [...accounts.values()].map((a) => a.address), queueId, remoteRecipients: [...remote.keys()], dropped };
  }
}
