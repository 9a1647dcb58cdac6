/**
 * Network listeners: binding (with operator-friendly errors), per-listener and per-IP connection limits,
 * the PROXY protocol (v1/v2, trusted networks only), and implicit TLS; then the socket is handed to the
 * protocol's handler. Protocols never see a socket that broke a limit.
 *
 * Invariant: every accepted socket is counted exactly once and released exactly once (on 'close').
 */
import net from 'node:net';
import tls from 'node:tls';
import { randomBytes } from 'node:crypto';
import type { ListenerSettings } from '../config/load.js';
import type { Logger } from '../log.js';
import type { TlsManager } from './tls.js';
import { readProxyHeader } from './proxy-protocol.js';
import { cidrContains } from './cidr.js';
import { describePortHolder } from './port-holder.js';

/**
 * Connection ids (logs, Received "id"): a random per-process prefix and a counter, unique across restarts without
 * a randomBytes call per connection (a synchronous getrandom costing ~10 us, 1-2% of the SMTP accept path).
 */
const ID_PREFIX = randomBytes(6).toString('base64url');
let idCounter = 0;
export function connectionId(): string {
  return `${ID_PREFIX}${(++idCounter).toString(36)}`;
}

export interface ConnectionInfo {
  id: string;
  listener: string;
  remoteAddress: string;
  remotePort: number;
  localAddress: string;
  localPort: number;
  /** True when the connection is already TLS (implicit TLS listener). */
  secure: boolean;
}

export interface ProtocolHandler {
  /** Takes over a connection (plain or TLS). */
  accept(socket: net.Socket, info: ConnectionInfo): void;
  /** Answers and closes a connection refused by a limit (plain listeners only; TLS ones are just closed). */
  refuse(socket: net.Socket, reason: 'too-many' | 'too-many-ip' | 'shutdown'): void;
}

export class BindError extends Error {
  override name = 'BindError';
}

export interface ListenerOptions {
  settings: ListenerSettings;
  implicitTls: boolean;
  tls: TlsManager;
  trustedProxies: string[];
  log: Logger;
  handler: ProtocolHandler;
  /** Admission check on the real client address (bans); false closes the connection at once. */
  admit?: (ip: string) => boolean;
}

const addressKey = (a: { host: string; port: number }): string => `${a.host}|${a.port}`;

export function normalizeIp(ip: string | undefined): string {
  if (!ip) return '';
  return ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip;
}

export class Listener {
  /** One server per configured address, keyed by addressKey (rebind() compares keys). */
  private readonly bound = new Map<string, net.Server>();
  private readonly perIp = new Map<string, number>();
  private total = 0;
  private readonly sockets = new Set<net.Socket>();
  private accepting = true;

  constructor(private opts: ListenerOptions) {}

  get name(): string {
    return this.opts.settings.name;
  }

  get connectionCount(): number {
    return this.total;
  }

  /** New limits apply to new connections (SIGHUP); new addresses with rebind(). */
  update(settings: ListenerSettings, trustedProxies: string[]): void {
    this.opts = { ...this.opts, settings, trustedProxies };
  }

  /** Binds every configured address; rejects with a BindError explaining the fix. */
  async start(): Promise<void> {
    this.accepting = true;
    for (const a of this.opts.settings.addresses) {
      try {
        await this.bindOne(a);
      } catch (err) {
        await this.close();
        throw err;
      }
    }
  }

  /**
   * SIGHUP with changed addresses (after update()): stops listening on the addresses no longer configured, binds
   * the new ones, keeps the others (and every connection, on any address). A new address that cannot be bound is
   * reported with the fix and skipped (the others apply); a SIGHUP after the fix binds it. Returns those errors.
   */
  async rebind(): Promise<BindError[]> {
    this.accepting = true;
    const want = new Map(this.opts.settings.addresses.map((a) => [addressKey(a), a]));
    for (const [key, server] of this.bound) {
      if (want.has(key)) continue;
      const was = server.address() as net.AddressInfo | null;
      server.close();
      this.bound.delete(key);
      this.opts.log.info({ listener: this.name, address: was?.address, port: was?.port }, 'stopped listening (address removed from the configuration)');
    }
    const errors: BindError[] = [];
    for (const [key, a] of want) {
      if (this.bound.has(key)) continue;
      try {
        await this.bindOne(a);
      } catch (err) {
        errors.push(err as BindError);
        this.opts.log.error({ listener: this.name, err: (err as Error).message }, 'new listener address not bound');
      }
    }
    return errors;
  }

  private async bindOne(a: { host: string; port: number }): Promise<void> {
    const server = net.createServer({ pauseOnConnect: false, noDelay: true }, (s) => this.onConnection(s));
    server.on('error', (err) => this.opts.log.error({ listener: this.name, err: err.message }, 'listener error'));
    try {
      await listen(server, a.host, a.port);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      const wildcardV6 = a.host === '::' && this.opts.settings.addresses.length > 1;
      if (wildcardV6 && (e.code === 'EAFNOSUPPORT' || e.code === 'EADDRNOTAVAIL')) {
        this.opts.log.warn({ listener: this.name, address: `[::]:${a.port}` }, 'IPv6 is not available on this machine; listening on IPv4 only');
        return;
      }
      throw new BindError(bindErrorMessage(this.name, a.host, a.port, e));
    }
    this.bound.set(addressKey(a), server);
    const bound = server.address() as net.AddressInfo;
    this.opts.log.info({ listener: this.name, address: bound.address, port: bound.port }, 'listening');
  }

  /** The ports actually bound (useful when the configuration says port 0). */
  boundAddresses(): net.AddressInfo[] {
    return [...this.bound.values()].map((s) => s.address() as net.AddressInfo);
  }

  /** Stops accepting; existing connections continue. */
  async stopAccepting(): Promise<void> {
    this.accepting = false;
    // close() stops listening at once; its callback waits for every open connection to end, which would
    // stall a graceful stop until clients leave by themselves. Sessions are ended by their services.
    for (const s of this.bound.values()) s.close();
    this.bound.clear();
  }

  /** Destroys every remaining connection. */
  destroyAll(): void {
    for (const s of this.sockets) s.destroy();
  }

  async close(): Promise<void> {
    await this.stopAccepting();
    this.destroyAll();
  }

  private onConnection(socket: net.Socket): void {
    socket.on('error', () => {
      /* reported by the protocol handler if it cares; never crash on a reset */
    });
    const settings = this.opts.settings;
    const peer = normalizeIp(socket.remoteAddress);
    const release = this.track(socket, peer);
    if (!this.accepting) return this.refuse(socket, 'shutdown');
    if (this.total > settings.maxConnections) return this.refuse(socket, 'too-many');
    if (!settings.proxyProtocol) {
      if ((this.perIp.get(peer) ?? 0) > settings.maxConnectionsPerIp) return this.refuse(socket, 'too-many-ip');
      if (this.opts.admit && !this.opts.admit(peer)) return this.drop(socket, peer);
      return this.handOver(socket, { remoteAddress: peer, remotePort: socket.remotePort ?? 0, localAddress: normalizeIp(socket.localAddress), localPort: socket.localPort ?? 0 });
    }
    if (!cidrContains(this.opts.trustedProxies, peer)) {
      this.opts.log.warn({ listener: this.name, remote: peer }, 'PROXY protocol header expected from an untrusted address; connection closed');
      socket.destroy();
      return;
    }
    readProxyHeader(socket, { timeoutMs: 10_000 })
      .then((h) => {
        const real =
          'local' in h
            ? { remoteAddress: peer, remotePort: socket.remotePort ?? 0, localAddress: normalizeIp(socket.localAddress), localPort: socket.localPort ?? 0 }
            : { remoteAddress: normalizeIp(h.remoteAddress), remotePort: h.remotePort, localAddress: normalizeIp(h.localAddress), localPort: h.localPort };
        // Limits count the real client, not the proxy.
        release();
        this.track(socket, real.remoteAddress);
        if ((this.perIp.get(real.remoteAddress) ?? 0) > settings.maxConnectionsPerIp) return this.refuse(socket, 'too-many-ip');
        if (this.opts.admit && !this.opts.admit(real.remoteAddress)) return this.drop(socket, real.remoteAddress);
        this.handOver(socket, real);
      })
      .catch((err: Error) => {
        this.opts.log.warn({ listener: this.name, remote: peer, err: err.message }, 'bad PROXY protocol header; connection closed');
        socket.destroy();
      });
  }

  /** Counts a socket against the limits; the returned function un-counts it (idempotent). */
  private track(socket: net.Socket, ip: string): () => void {
    let done = false;
    this.total++;
    this.perIp.set(ip, (this.perIp.get(ip) ?? 0) + 1);
    this.sockets.add(socket);
    const release = () => {
      if (done) return;
      done = true;
      this.total--;
      const n = (this.perIp.get(ip) ?? 1) - 1;
      if (n <= 0) this.perIp.delete(ip);
      else this.perIp.set(ip, n);
      this.sockets.delete(socket);
      socket.off('close', release);
    };
    socket.on('close', release);
    return release;
  }

  /** A banned client: no banner, no protocol, just a closed connection (as a firewall drop would do). */
  private drop(socket: net.Socket, ip: string): void {
    this.opts.log.info({ listener: this.name, remote: ip }, 'connection from a banned address closed');
    socket.destroy();
  }

  private refuse(socket: net.Socket, reason: 'too-many' | 'too-many-ip' | 'shutdown'): void {
    this.opts.log.info({ listener: this.name, remote: normalizeIp(socket.remoteAddress), reason }, 'connection refused');
    if (this.opts.implicitTls) socket.destroy();
    else this.opts.handler.refuse(socket, reason);
  }

  private handOver(socket: net.Socket, addr: Omit<ConnectionInfo, 'id' | 'listener' | 'secure'>): void {
    const info: ConnectionInfo = { id: connectionId(), listener: this.name, secure: this.opts.implicitTls, ...addr };
    if (!this.opts.implicitTls) return this.opts.handler.accept(socket, info);
    // Implicit TLS (RFC 8314): the handshake comes first; a client that does not finish it in time is dropped.
    const t = this.opts.tls;
    const tlsSocket = new tls.TLSSocket(socket, { isServer: true, secureContext: t.contextFor(null), SNICallback: t.sniCallback });
    const timer = setTimeout(() => tlsSocket.destroy(), 15_000);
    tlsSocket.once('secure', () => {
      clearTimeout(timer);
      this.opts.handler.accept(tlsSocket, info);
    });
    tlsSocket.on('error', (err) => {
      clearTimeout(timer);
      this.opts.log.debug({ listener: this.name, remote: info.remoteAddress, err: err.message }, 'TLS handshake failed');
      socket.destroy();
    });
  }
}

function listen(server: net.Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once('error', onError);
    server.listen({ host, port, ipv6Only: host.includes(':'), backlog: 511 }, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

export function bindErrorMessage(listener: string, host: string, port: number, e: NodeJS.ErrnoException): string {
  const where = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  const head = `listener "${listener}" cannot bind ${where}`;
  switch (e.code) {
    case 'EACCES':
      return `${head}: permission denied (EACCES). Ports below 1024 need privileges: run as root, grant the capability (setcap cap_net_bind_service=+ep ${process.execPath}), or choose another port with [listeners.${listener}] address`;
    case 'EADDRINUSE': {
      const holder = describePortHolder(host, port);
      return `${head}: address already in use (EADDRINUSE)${holder ? ` by ${holder}` : ''}. Stop that service, or choose another port with [listeners.${listener}] address`;
    }
    case 'EADDRNOTAVAIL':
      return `${head}: this machine has no such address (EADDRNOTAVAIL). Use an address of one of its interfaces, or 0.0.0.0 / [::]`;
    default:
      return `${head}: ${e.message}`;
  }
}
