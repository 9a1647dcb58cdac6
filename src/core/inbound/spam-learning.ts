/**
 * Training Rspamd from users' decisions (docker-mailserver's RSPAMD_LEARN, Dovecot's imapsieve scripts): a
 * message moved or copied INTO the Junk mailbox is learned as spam (controller POST /learnspam), one moved OUT
 * of Junk into anything but Trash as ham (/learnham). Deleting spam is not a verdict, hence the Trash exception.
 *
 * Source of truth: the change bus. IMAP COPY/MOVE publish a `{ type: 'move' }` Change after commit (see
 * core/changes.ts); the learner resolves the mailboxes' special-use and the destination messages, and posts
 * each message (our prefix + the stored blob, i.e. what the user saw) to the controller.
 *
 * Invariants: learning never blocks or fails an IMAP command (it runs after commit, in the background);
 * requests go one at a time, and the backlog is bounded (further work is dropped with a warning), so a mass
 * move cannot flood Rspamd or memory. A failed request is logged, not retried: the next move teaches again.
 */
import type { Change, ChangeBus } from '../changes.js';
import type { BlobStore, MailboxRepo, MessageRepo, SpecialUse } from '../../storage/types.js';
import { rspamdPost, type RspamdHeaders } from './rspamd.js';

export interface SpamLearnerSettings {
  /** Base URL of the Rspamd controller worker, e.g. http://127.0.0.1:11334. */
  controller: string;
  password: string | null;
  timeoutMs: number;
}

export interface SpamLearnerDeps {
  mailboxes: MailboxRepo;
  messages: MessageRepo;
  blobs: BlobStore;
  log: { info(o: object, msg: string): void; warn(o: object, msg: string): void; debug(o: object, msg: string): void };
}

export interface MoveEvent {
  accountId: number;
  fromSpecialUse: SpecialUse | null;
  toSpecialUse: SpecialUse | null;
  blobId: string;
  /** Header fields we prepended at receipt (Received, Authentication-Results, X-Spam-*). */
  prefix: Buffer;
}

export type Lesson = 'spam' | 'ham';

const MAX_BACKLOG = 10_000;

/** What a move teaches: into Junk = spam; out of Junk (not to Trash) = ham; anything else nothing. */
export function lessonOf(from: SpecialUse | null, to: SpecialUse | null): Lesson | null {
  if (to === '\\Junk' && from !== '\\Junk') return 'spam';
  if (from === '\\Junk' && to !== '\\Junk' && to !== '\\Trash') return 'ham';
  return null;
}

export class SpamLearner {
  private chain: Promise<void> = Promise.resolve();
  private backlog = 0;
  private unsubscribe: (() => void) | null = null;
  /** Lessons sent successfully (for status and tests). */
  learned = { spam: 0, ham: 0, failed: 0 };

  constructor(
    private readonly settings: SpamLearnerSettings,
    private readonly deps: SpamLearnerDeps,
  ) {}

  /** Listens to every account's changes. */
  subscribe(bus: ChangeBus): void {
    this.unsubscribe?.();
    this.unsubscribe = bus.subscribeAll((c) => this.onChange(c));
  }

  stop(): void {
    this.unsubscribe?.();
    this.unsubscribe = null;
  }

  /** Resolves when everything queued so far has been sent (or failed). */
  idle(): Promise<void> {
    return this.chain;
  }

  onChange(c: Change): void {
    if (c.type !== 'move') return;
    this.enqueue(async () => {
      const [from, to] = await Promise.all([this.deps.mailboxes.getById(c.fromMailboxId), this.deps.mailboxes.getById(c.toMailboxId)]);
      if (!from || !to || !lessonOf(from.specialUse, to.specialUse)) return;
      for (const uid of c.newUids) {
        const m = await this.deps.messages.get(c.toMailboxId, uid);
        if (!m) continue; // expunged meanwhile
        const prefix = m.prefixLength ? await this.deps.messages.prefix(m.id) : Buffer.alloc(0);
        await this.learn({ accountId: c.accountId, fromSpecialUse: from.specialUse, toSpecialUse: to.specialUse, blobId: m.blobId, prefix });
      }
    });
  }

  /** One message changed mailboxes; learns it if the move means something. Resolves to what was learned. */
  onMove(e: MoveEvent): Promise<Lesson | null> {
    return new Promise((resolve) => this.enqueue(async () => resolve(await this.learn(e))));
  }

  private enqueue(job: () => Promise<void>): void {
    if (this.backlog >= MAX_BACKLOG) {
      this.deps.log.warn({ backlog: this.backlog }, 'spam learning backlog full; move not learned');
      return;
    }
    this.backlog++;
    this.chain = this.chain
      .then(job)
      .catch((err) => this.deps.log.warn({ err: (err as Error).message }, 'spam learning failed'))
      .finally(() => this.backlog--);
  }

  private async learn(e: MoveEvent): Promise<Lesson | null> {
    const lesson = lessonOf(e.fromSpecialUse, e.toSpecialUse);
    if (!lesson) return null;
    const body = Buffer.concat([e.prefix, await this.deps.blobs.get(e.blobId)]);
    const headers: RspamdHeaders = {};
    if (this.settings.password) headers.Password = this.settings.password;
    try {
      const res = await rspamdPost(this.settings.controller, lesson === 'spam' ? 'learnspam' : 'learnham', headers, body, this.settings.timeoutMs);
      // 208: "already learned" (Rspamd answers so for a message it has seen with the same verdict).
      if (res.status !== 200 && res.status !== 208) throw new Error(`HTTP ${res.status} ${res.body.slice(0, 200)}`);
      this.learned[lesson]++;
      this.deps.log.info({ account: e.accountId, blob: e.blobId, lesson, status: res.status }, 'rspamd learned');
      return lesson;
    } catch (err) {
      this.learned.failed++;
      this.deps.log.warn({ account: e.accountId, blob: e.blobId, lesson, err: (err as Error).message }, 'rspamd learning failed');
      return null;
    }
  }
}
