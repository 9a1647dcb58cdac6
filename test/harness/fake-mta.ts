/**
 * A recording remote MTA for outbound tests: an smtp-server instance on a loopback address (127.0.0.2:25 ...)
 * whose answers the test scripts per recipient. STARTTLS with smtp-server's built-in self-signed certificate
 * (so our client sees TLS but an unverified certificate), or none; optional AUTH for relay tests.
 */
import { SMTPServer, type SMTPServerOptions, type SMTPServerSession } from 'smtp-server';

export interface ReceivedMessage {
  from: string;
  to: string[];
  raw: string;
  secure: boolean;
  tlsVersion: string | null;
  mailArgs: Record<string, string>;
  rcptArgs: Record<string, string>[];
  at: number;
}

export interface FakeMtaOptions {
  host: string;
  port?: number;
  /** false: STARTTLS not offered. */
  starttls?: boolean;
  /** Implicit TLS (a relay on 465). */
  secure?: boolean;
  key?: string | Buffer;
  cert?: string | Buffer;
  /** Required AUTH user/password (relay tests); absent = no AUTH. */
  auth?: { user: string; pass: string };
  /** Extensions to hide, e.g. ['SMTPUTF8', 'DSN']. */
  hide?: string[];
  /** Greeting refusal: e.g. "421 busy" makes every connection fail at the greeting. */
  greeting?: string;
  /** Extra TLS options for the server, e.g. { minVersion: 'TLSv1', maxVersion: 'TLSv1' } for a handshake that fails. */
  tls?: Record<string, unknown>;
}

export type RcptScript = (address: string, count: number) => { code: number; message: string } | null;

export class FakeMta {
  readonly received: ReceivedMessage[] = [];
  /** RCPT answers: return null to accept. `count` = how many times this address was seen. */
  rcpt: RcptScript = () => null;
  /** Delay (ms) before answering the final DATA reply. */
  dataDelayMs = 0;
  readonly seen = new Map<string, number>();
  private constructor(readonly server: SMTPServer, readonly opts: FakeMtaOptions) {}

  static async start(opts: FakeMtaOptions): Promise<FakeMta> {
    let self: FakeMta;
    const hide = new Set(opts.hide ?? []);
    const options: SMTPServerOptions = {
      secure: !!opts.secure,
      ...(opts.key ? { key: opts.key, cert: opts.cert } : {}),
      ...(opts.tls ?? {}),
      hideSTARTTLS: opts.starttls === false,
      hideSMTPUTF8: hide.has('SMTPUTF8'),
      hide8BITMIME: hide.has('8BITMIME'),
      hidePIPELINING: hide.has('PIPELINING'),
      hideDSN: hide.has('DSN'),
      hideSize: false,
      size: 10 * 1024 * 1024,
      authOptional: !opts.auth,
      ...(opts.auth ? {} : { disabledCommands: ['AUTH'] }),
      allowInsecureAuth: false,
      logger: false,
      banner: 'fake MTA',
      onConnect(_session, cb) {
        if (opts.greeting) {
          const code = Number(opts.greeting.slice(0, 3));
          return cb(Object.assign(new Error(opts.greeting.slice(4)), { responseCode: code }));
        }
        cb();
      },
      onAuth(auth, _session, cb) {
        if (opts.auth && auth.username === opts.auth.user && auth.password === opts.auth.pass) return cb(null, { user: auth.username });
        cb(Object.assign(new Error('5.7.8 Authentication credentials invalid'), { responseCode: 535 }));
      },
      onRcptTo(address, _session, cb) {
        const n = (self.seen.get(address.address) ?? 0) + 1;
        self.seen.set(address.address, n);
        const r = self.rcpt(address.address, n);
        if (r) return cb(Object.assign(new Error(r.message), { responseCode: r.code }));
        cb();
      },
      onData(stream, session, cb) {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          const finish = () => {
            const s = session as SMTPServerSession & { tlsOptions?: { version?: string } };
            self.received.push({
              from: (session.envelope.mailFrom && session.envelope.mailFrom.address) || '',
              to: session.envelope.rcptTo.map((r) => r.address),
              raw: Buffer.concat(chunks).toString('utf8'),
              secure: session.secure,
              tlsVersion: s.tlsOptions?.version ?? null,
              mailArgs: ((session.envelope.mailFrom && session.envelope.mailFrom.args) || {}) as Record<string, string>,
              rcptArgs: session.envelope.rcptTo.map((r) => (r.args || {}) as Record<string, string>),
              at: Date.now(),
            });
            cb(null, 'Ok: queued');
          };
          if (self.dataDelayMs) setTimeout(finish, self.dataDelayMs);
          else finish();
        });
      },
    };
    const server = new SMTPServer(options);
    server.on('error', () => undefined);
    self = new FakeMta(server, opts);
    await new Promise<void>((resolve, reject) => {
      server.server.once('error', reject);
      server.listen(opts.port ?? 25, opts.host, () => resolve());
    });
    return self;
  }

  /** Messages received for an address. */
  for(address: string): ReceivedMessage[] {
    return this.received.filter((m) => m.to.includes(address));
  }

  close(): Promise<void> {
    return new Promise((r) => this.server.close(() => r()));
  }
}

export async function waitFor<T>(f: () => T | Promise<T>, timeoutMs = 10_000, what = 'condition'): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
