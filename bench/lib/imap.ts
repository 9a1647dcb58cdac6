/**
 * A lean IMAP client for load: one command at a time, the tagged completion awaited, untagged data counted
 * (literals skipped by their announced length) but not kept. Plain or implicit TLS.
 */
import net from 'node:net';
import tls from 'node:tls';

export class LoadImap {
  private chunks: Buffer[] = [];
  private pendingTag = '';
  private done: ((line: string) => void) | null = null;
  private fail: ((e: Error) => void) | null = null;
  private n = 0;
  private literal = 0;
  private line = '';
  private greeted: Promise<void>;
  private onGreeting!: () => void;
  /** Bytes received (replies included). */
  received = 0;

  private constructor(readonly sock: net.Socket) {
    this.greeted = new Promise((r) => (this.onGreeting = r));
    sock.on('data', (d: Buffer) => this.onData(d));
    sock.on('error', () => undefined);
    sock.on('close', () => this.fail?.(new Error('connection closed')));
  }

  static connect(port: number, secure: boolean): Promise<LoadImap> {
    return new Promise((resolve, reject) => {
      const s = secure ? tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, servername: 'mx.bench.test' }) : net.connect({ host: '127.0.0.1', port });
      s.once(secure ? 'secureConnect' : 'connect', () => {
        const c = new LoadImap(s);
        c.greeted.then(() => resolve(c), reject);
      });
      s.once('error', reject);
    });
  }

  private onData(d: Buffer): void {
    this.received += d.length;
    let i = 0;
    while (i < d.length) {
      if (this.literal > 0) {
        const take = Math.min(this.literal, d.length - i);
        this.literal -= take;
        i += take;
        continue;
      }
      const lf = d.indexOf(0x0a, i);
      if (lf < 0) {
        this.line += d.toString('latin1', i);
        break;
      }
      this.line += d.toString('latin1', i, lf + 1);
      i = lf + 1;
      const m = /\{(\d+)\+?\}\r\n$/.exec(this.line);
      if (m) {
        this.literal = Number(m[1]);
        this.line = '';
        continue;
      }
      this.onLine(this.line);
      this.line = '';
    }
  }

  private onLine(line: string): void {
    if (line.startsWith('* OK') && this.onGreeting) {
      const g = this.onGreeting;
      this.onGreeting = undefined as never;
      g();
      return;
    }
    if (this.pendingTag && line.startsWith(`${this.pendingTag} `)) {
      const f = this.done;
      this.done = null;
      this.fail = null;
      this.pendingTag = '';
      f?.(line);
    }
  }

  /** Sends a command; resolves with the tagged line (throws unless OK). */
  cmd(command: string, literal?: Buffer): Promise<string> {
    const tag = `a${++this.n}`;
    this.pendingTag = tag;
    return new Promise((resolve, reject) => {
      this.done = (line) => (line.startsWith(`${tag} OK`) ? resolve(line) : reject(new Error(`${command.slice(0, 40)}: ${line.trim()}`)));
      this.fail = reject;
      // One write per command, as mail clients send it: three writes made the last one wait for a delayed ACK
      // (Nagle on the client socket), adding ~40 ms to every APPEND on either server.
      if (literal) this.sock.write(Buffer.concat([Buffer.from(`${tag} ${command} {${literal.length}+}\r\n`), literal, Buffer.from('\r\n')]));
      else this.sock.write(`${tag} ${command}\r\n`);
    });
  }

  /** Enters IDLE: resolves at the continuation request. */
  idle(): Promise<void> {
    const tag = `a${++this.n}`;
    return new Promise((resolve, reject) => {
      const onData = (d: Buffer) => {
        if (d.includes('+ ')) {
          this.sock.off('data', onData);
          resolve();
        }
      };
      this.sock.on('data', onData);
      this.fail = reject;
      this.sock.write(`${tag} IDLE\r\n`);
    });
  }

  close(): void {
    this.sock.destroy();
  }
}

/** A realistic message of about `size` bytes (headers, a text body of words), unique per n. */
const WORDS = 'the quick brown fox jumps over lazy dogs meeting agenda project report budget review invoice schedule travel update release server mail client network storage security performance customer support weekly notes minutes draft final approval'.split(' ');
export function makeMessage(n: number, size = 4096, to = 'user1@bench.test'): Buffer {
  const word = (k: number) => WORDS[(n * 7 + k * 13 + ((n >> 3) ^ k)) % WORDS.length]!;
  const subject = `${word(1)} ${word(2)} ${word(3)} #${n}`;
  const date = new Date(Date.UTC(2024, 0, 1) + n * 60_000).toUTCString().replace('GMT', '+0000');
  const head = `Return-Path: <sender${n % 97}@example.net>\r\nFrom: Sender ${n % 97} <sender${n % 97}@example.net>\r\nTo: <${to}>\r\nSubject: ${subject}\r\nDate: ${date}\r\nMessage-ID: <${n}.bench@example.net>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n`;
  const lines: string[] = [];
  let len = head.length;
  for (let l = 0; len < size; l++) {
    const line = Array.from({ length: 10 }, (_, k) => word(l * 10 + k)).join(' ');
    lines.push(line);
    len += line.length + 2;
  }
  return Buffer.from(head + lines.join('\r\n') + '\r\n');
}
