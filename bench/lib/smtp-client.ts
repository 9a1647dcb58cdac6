/** SMTP load: Postfix's smtp-source for port 25; our own TLS + AUTH client for submission. */
import tls from 'node:tls';
import { sh, sleep } from './util.js';

export interface SourceResult {
  seconds: number;
  ok: boolean;
  err: string;
}

/** smtp-source: `sessions` concurrent, `messages` in total, body `size` bytes, new connection per message unless reuse. */
export async function smtpSource(port: number, o: { sessions: number; messages: number; size: number; reuse: boolean; to: string }): Promise<SourceResult> {
  const args = ['-s', String(o.sessions), '-m', String(o.messages), '-l', String(o.size), '-f', 'sender@source.test', '-t', o.to, '-M', 'source.test'];
  if (o.reuse) args.unshift('-d');
  const t0 = performance.now();
  const r = await sh('/usr/sbin/smtp-source', [...args, `127.0.0.1:${port}`], { timeoutMs: 300_000 });
  return { seconds: (performance.now() - t0) / 1000, ok: r.code === 0, err: (r.err + r.out).slice(0, 500) };
}

/** Waits until count() reaches target (or timeoutMs); returns seconds since t0 (performance.now() base). */
export async function waitCount(count: () => number, target: number, t0: number, timeoutMs = 120_000): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  while (count() < target) {
    if (performance.now() > deadline) throw new Error(`only ${count()} of ${target} messages arrived in time`);
    await sleep(10);
  }
  return (performance.now() - t0) / 1000;
}

/** A minimal SMTP client over implicit TLS (replies read by status line). */
class Session {
  private buf = '';
  private waiter: (() => void) | null = null;
  private constructor(private readonly s: tls.TLSSocket) {
    s.setEncoding('latin1');
    s.on('data', (d: string) => {
      this.buf += d;
      this.waiter?.();
    });
    s.on('error', () => undefined);
    s.on('close', () => this.waiter?.());
  }
  static connect(port: number): Promise<Session> {
    return new Promise((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, servername: 'mx.bench.test' }, () => resolve(new Session(s)));
      s.once('error', reject);
    });
  }
  async reply(): Promise<string> {
    for (;;) {
      const m = /(^|\r\n)(\d{3}) [^\r\n]*\r\n/.exec(this.buf);
      if (m) {
        const end = m.index + m[0].length;
        const line = this.buf.slice(m.index + m[1]!.length, end - 2);
        this.buf = this.buf.slice(end);
        return line;
      }
      if (this.s.destroyed) throw new Error('connection closed');
      await new Promise<void>((r) => (this.waiter = r));
      this.waiter = null;
    }
  }
  async cmd(line: string, expect: string): Promise<void> {
    this.s.write(`${line}\r\n`);
    const r = await this.reply();
    if (!r.startsWith(expect)) throw new Error(`${line.slice(0, 30)}: ${r}`);
  }
  write(data: string): void {
    this.s.write(data);
  }
  close(): void {
    this.s.end('QUIT\r\n');
  }
}

/** `sessions` TLS sessions, each AUTH PLAIN once then messages until `messages` in total were acknowledged. */
export async function submissionLoad(port: number, o: { sessions: number; messages: number; size: number; user: (i: number) => string; password: string; to: string }): Promise<number> {
  let left = o.messages;
  const body = `${'x'.repeat(74)}\r\n`.repeat(Math.max(1, Math.floor(o.size / 76)));
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: o.sessions }, async (_, k) => {
      const from = o.user(k + 1);
      const s = await Session.connect(port);
      await s.reply();
      await s.cmd('EHLO load.test', '250');
      await s.cmd(`AUTH PLAIN ${Buffer.from(`\0${from}\0${o.password}`).toString('base64')}`, '235');
      while (left > 0) {
        left--;
        await s.cmd(`MAIL FROM:<${from}>`, '250');
        await s.cmd(`RCPT TO:<${o.to}>`, '250');
        await s.cmd('DATA', '354');
        s.write(`From: <${from}>\r\nTo: <${o.to}>\r\nSubject: submission load\r\nMessage-ID: <${k}.${left}@load.test>\r\n\r\n${body}.\r\n`);
        const r = await s.reply();
        if (!r.startsWith('250')) throw new Error(`DATA: ${r}`);
      }
      s.close();
    }),
  );
  return (performance.now() - t0) / 1000;
}
