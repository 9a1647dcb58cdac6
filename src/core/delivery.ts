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
import type { MailboxRepo, QueueRepo, BlobStore, Account, QueueEntry, QueueResult } from '../storage/types.js';
import { wantsDsn } from './dsn.js';
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
  /** Recipients that no longer resolve (removed between RCPT and DATA): bounced (see bounceDropped). */
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
    const dropped: EnvelopeRecipient[] = [];
    for (const rcpt of req.recipients) {
      const r = await this.deps.directory.resolveRecipient(rcpt.address);
      if (r.kind === 'local') {
        for (const a of r.resolution.accounts) accounts.set(a.id, a);
        // Forwarded by an alias: the original ORCPT is kept for DSNs (RFC 3461 4.2).
        for (const t of r.resolution.remote) if (!remote.has(t)) remote.set(t, { address: t, orcpt: rcpt.orcpt ?? `rfc822;${rcpt.address}`, notify: rcpt.notify ?? null });
      } else if (r.kind === 'remote' && req.allowRelay) {
        if (!remote.has(rcpt.address)) remote.set(rcpt.address, rcpt);
      } else {
        dropped.push(rcpt);
      }
    }

    // One put of the body for both entries (remote recipients, bounced ones) when there are two.
    let put: Promise<{ id: string; size: number }> | null = null;
    const enqueue = async (recipients: EnvelopeRecipient[]) => {
      const blob = await (put ??= this.deps.blobs.put(req.raw));
      return this.deps.queue.enqueue({
        sender: req.sender,
        blobId: blob.id,
        prefix: req.prefix,
        size: req.prefix.length + blob.size,
        accountId: req.accountId,
        envid: req.envid ?? null,
        ret: req.ret ?? null,
        smtputf8: !!req.smtputf8,
        body8bit: !!req.body8bit,
        recipients: recipients.map((r) => ({ address: r.address, orcpt: r.orcpt ?? null, notify: r.notify ?? null })),
      });
    };
    let queueId: string | null = null;
    if (remote.size) {
      queueId = (await enqueue([...remote.values()])).id;
      this.deps.onQueued?.();
    }
    if (dropped.length) await this.bounceDropped(req.sender, dropped, enqueue);

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
    return { localAccounts: [...accounts.values()].map((a) => a.address), queueId, remoteRecipients: [...remote.keys()], dropped: dropped.map((r) => r.address) };
  }

  /**
   * Recipients accepted at RCPT that no longer resolve now (the account or alias was removed before the end of
   * DATA): the message was acknowledged for them, so they get what any undeliverable recipient gets, a bounce
   * (RFC 5321 6.1), as Postfix's local delivery agent bounces a user removed meanwhile. They go into the queue
   * already failed with 5.1.1 and a pending DSN, which the queue runner sends like every other (NOTIFY and a
   * null sender respected). Before the reply, like the rest of the delivery: durable when the 250 goes out.
   */
  private async bounceDropped(sender: string, dropped: EnvelopeRecipient[], enqueue: (r: EnvelopeRecipient[]) => Promise<QueueEntry>): Promise<void> {
    this.deps.log.warn({ dropped: dropped.map((r) => r.address) }, 'recipients no longer exist at delivery time; bounced');
    const entry = await enqueue(dropped);
    const results: QueueResult[] = entry.recipients.map((r) => ({
      recipientId: r.id,
      status: 'failed',
      statusCode: '5.1.1',
      diagnostic: 'mailbox unavailable: the recipient was removed after the message was accepted',
      remoteMta: null,
      tls: null,
      dsnPending: sender !== '' && wantsDsn(r.notify, 'FAILURE') ? 'failed' : null,
    }));
    await this.deps.queue.recordResults(entry.id, results, Date.now());
    if (results.some((r) => r.dsnPending)) this.deps.onQueued?.();
    else await this.deps.queue.deleteIfComplete(entry.id);
  }
}
