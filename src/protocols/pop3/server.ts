/**
 * POP3 service for the pop3 (110, STLS required before login) and pop3s (995, implicit TLS done by the
 * listener) listeners. Off by default ([listeners.pop3] / [listeners.pop3s] enabled = true).
 * One Pop3Service per listener; both share one MaildropLocks so a maildrop is locked across ports.
 */
import type net from 'node:net';
import type { ConnectionInfo, ProtocolHandler } from '../../net/listener.js';
import { Pop3Session, type MaildropLockTable, type Pop3Deps, type Pop3Settings } from './session.js';
import { Err } from './errors.js';

export type { Pop3Settings, Pop3Deps } from './session.js';

/**
 * RFC 1939 8: the exclusive-access lock on a maildrop, per account. This map lives in this process only;
 * several nodes sharing one store need a store-level lease (with expiry, renewed while the session lives)
 * instead.
 */
export class MaildropLocks implements MaildropLockTable {
  private readonly held = new Map<number, string>();

  acquire(accountId: number, owner: string): (() => void) | null {
    if (this.held.has(accountId)) return null;
    this.held.set(accountId, owner);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (this.held.get(accountId) === owner) this.held.delete(accountId);
    };
  }

  get size(): number {
    return this.held.size;
  }
}

export class Pop3Service implements ProtocolHandler {
  private readonly sessions = new Set<Pop3Session>();

  constructor(
    private settings: Pop3Settings,
    private readonly deps: Pop3Deps,
  ) {}

  /** New settings apply to new sessions and to idle timers set from now on (SIGHUP). */
  updateSettings(settings: Pop3Settings): void {
    this.settings = settings;
  }

  accept(socket: net.Socket, info: ConnectionInfo): void {
    this.deps.log.info({ cid: info.id, proto: 'pop3', listener: info.listener, remote: info.remoteAddress, tls: info.secure }, 'pop3 connection');
    const session = new Pop3Session(socket, info, () => this.settings, this.deps);
    this.sessions.add(session);
    session.onClose(() => {
      this.sessions.delete(session);
      this.deps.log.debug({ cid: info.id, proto: 'pop3' }, 'pop3 session closed');
    });
    session.start();
  }

  refuse(socket: net.Socket, reason: 'too-many' | 'too-many-ip' | 'shutdown'): void {
    const e = reason === 'too-many-ip' ? Err.tooManyConnectionsFromIp() : reason === 'shutdown' ? Err.shuttingDown() : Err.tooManyConnections();
    socket.end(e.line() + '\r\n');
    setTimeout(() => socket.destroy(), 1000).unref();
  }

  /** Graceful stop: idle sessions close now, busy ones after their command; none enters UPDATE. */
  async close(graceMs: number): Promise<void> {
    for (const s of this.sessions) s.shutdown();
    const started = Date.now();
    while (this.sessions.size && Date.now() - started < graceMs) await new Promise((r) => setTimeout(r, 25));
  }
}
