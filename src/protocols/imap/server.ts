/**
 * The IMAP service for the `imap` (143, STARTTLS required before login) and `imaps` (993, implicit TLS done by
 * the listener) listeners. Owns the sessions of its listener: per-account connection limits, graceful shutdown
 * (`* BYE`), refusal of connections over a listener limit (`* BYE` before closing, RFC 9051 7.1.5).
 */
import type net from 'node:net';
import type { ConnectionInfo, ProtocolHandler } from '../../net/listener.js';
import { ImapSession, type SessionHost } from './session.js';
import type { ImapDeps, ImapSettings } from './context.js';

export type { ImapDeps, ImapSettings } from './context.js';

/** Shared by both IMAP listeners so the per-account limit counts all of an account's connections. */
export class AccountConnections {
  private readonly counts = new Map<number, number>();
  acquire(id: number, max: number): boolean {
    const n = this.counts.get(id) ?? 0;
    if (n >= max) return false;
    this.counts.set(id, n + 1);
    return true;
  }
  release(id: number): void {
    const n = (this.counts.get(id) ?? 1) - 1;
    if (n <= 0) this.counts.delete(id);
    else this.counts.set(id, n);
  }
}

export class ImapService implements ProtocolHandler, SessionHost {
  private readonly sessions = new Set<ImapSession>();

  constructor(
    readonly role: 'imap' | 'imaps',
    private current: ImapSettings,
    readonly deps: ImapDeps,
    private readonly accounts: AccountConnections = new AccountConnections(),
  ) {}

  settings(): ImapSettings {
    return this.current;
  }

  updateSettings(settings: ImapSettings): void {
    this.current = settings;
  }

  acquireAccount(accountId: number): boolean {
    return this.accounts.acquire(accountId, this.current.maxConnectionsPerAccount);
  }

  releaseAccount(accountId: number): void {
    this.accounts.release(accountId);
  }

  accept(socket: net.Socket, info: ConnectionInfo): void {
    this.deps.log.info({ cid: info.id, proto: this.role, remote: info.remoteAddress, tls: info.secure }, 'imap connection');
    socket.setNoDelay(true);
    const session = new ImapSession(socket, info, this, this.role);
    this.sessions.add(session);
    socket.once('close', () => this.sessions.delete(session));
    session.start();
  }

  refuse(socket: net.Socket, reason: 'too-many' | 'too-many-ip' | 'shutdown'): void {
    const text = reason === 'shutdown' ? 'Server shutting down' : reason === 'too-many-ip' ? 'Too many connections from your address' : 'Too many connections';
    socket.end(`* BYE [UNAVAILABLE] ${text}\r\n`);
    setTimeout(() => socket.destroy(), 1000).unref();
  }

  /** Graceful stop: BYE to every session, then wait up to graceMs for them to go. */
  async close(graceMs: number): Promise<void> {
    await Promise.all([...this.sessions].map((s) => s.shutdown().catch(() => undefined)));
    const deadline = Date.now() + Math.min(graceMs, 2000);
    while (this.sessions.size && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  }
}
