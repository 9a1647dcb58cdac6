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
  | { type: 'mailbox'; accountId: number; mailboxId: number };

export class ChangeBus {
  private readonly emitter = new EventEmitter();
  constructor() {
    this.emitter.setMaxListeners(0);
  }
  publish(change: Change): void {
    this.emitter.emit(String(change.accountId), change);
  }
  subscribe(accountId: number, fn: (c: Change) => void): () => void {
    const key = String(accountId);
    this.emitter.on(key, fn);
    return () => this.emitter.off(key, fn);
  }
}
