/**
 * The change bus: typed events published AFTER a write has committed, per account. IMAP sessions subscribe
 * to their account and apply events to their selected view (IDLE, untagged EXISTS/EXPUNGE/FETCH).
 * In-process now; a PostgreSQL backend spans nodes with LISTEN/NOTIFY behind the same interface.
 */
import { EventEmitter } from 'node:events';

export type Change =
  | { type: 'append'; accountId: number; mailboxId: number; uid: number; modseq: number }
  | { type: 'flags'; accountId: number; mailboxId: number; uids: number[]; modseq: number }
  | { type: 'expunge'; accountId: number; mailboxId: number; uids: number[]; modseq: number }
  | { type: 'mailbox'; accountId: number; mailboxId: number }
  /**
   * IMAP COPY/MOVE (RFC 9051 6.4.7, RFC 6851) committed between two mailboxes of one account: `uids` in the
   * source, `newUids` the destination UIDs in the same order (CopyOutcome.pairs), `copy` true when the source
   * messages stay (COPY). `mailboxId` = toMailboxId, so per-mailbox consumers can filter every change alike.
   * Published once per command after commit, besides the 'append'/'expunge' events views need. Spam learning
   * listens for it (into/out of Junk).
   */
  | { type: 'move'; accountId: number; mailboxId: number; fromMailboxId: number; toMailboxId: number; uids: number[]; newUids: number[]; modseq: number; copy: boolean };

const ALL = Symbol('all accounts');

export class ChangeBus {
  private readonly emitter = new EventEmitter();
  constructor() {
    this.emitter.setMaxListeners(0);
  }
  publish(change: Change): void {
    this.emitter.emit(String(change.accountId), change);
    this.emitter.emit(ALL, change);
  }
  /** Every account's changes (server-wide consumers such as spam learning). */
  subscribeAll(fn: (c: Change) => void): () => void {
    this.emitter.on(ALL, fn);
    return () => this.emitter.off(ALL, fn);
  }
  subscribe(accountId: number, fn: (c: Change) => void): () => void {
    const key = String(accountId);
    this.emitter.on(key, fn);
    return () => this.emitter.off(key, fn);
  }
}
