/**
 * Virus scanning with ClamAV's clamd over its INSTREAM command (clamd(8), "INSTREAM": the client sends
 * `zINSTREAM\0`, then chunks as a 4-byte big-endian length followed by that many bytes, then a zero length;
 * clamd answers `stream: OK\0`, `stream: <signature> FOUND\0` or `... ERROR\0`), over a unix socket or TCP.
 *
 * Verdicts: infected -> 554 5.7.1 (the signature goes to the log, not to the wire); clamd unreachable, slow or
 * answering an error -> the filter throws, and the pipeline answers 451 4.7.1 unless [virus] fail_open.
 * One connection per message: clamd's IDSESSION would save a connect, but a broken session would then fail
 * several messages, and connecting to a local socket costs microseconds.
 */
import net from 'node:net';
import type { DataContext, DataResult, InboundFilter } from './pipeline.js';
import { Reply } from '../../protocols/smtp/replies.js';

export type ClamdAddress = { path: string } | { host: string; port: number };

/** "unix:/run/clamav/clamd.ctl", "/run/clamav/clamd.ctl", "127.0.0.1:3310" or "[::1]:3310". */
export function parseClamdAddress(s: string): ClamdAddress {
  if (s.startsWith('unix:')) return { path: s.slice(5) };
  if (s.startsWith('/')) return { path: s };
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^\s:[\]]+)):(\d{1,5})$/.exec(s);
  if (!m || Number(m[3]) < 1 || Number(m[3]) > 65535) throw new Error(`invalid clamd address "${s}": expected "unix:/path/to/clamd.ctl" or "host:port"`);
  return { host: (m[1] ?? m[2])!, port: Number(m[3]) };
}

export type ScanResult = { infected: false } | { infected: true; signature: string };

const CHUNK = 64 * 1024;
const MAX_REPLY = 4096;

/** Scans one buffer with INSTREAM. Rejects on connection errors, timeouts and clamd errors. */
export function clamdScan(address: ClamdAddress, data: Buffer, timeoutMs: number): Promise<ScanResult> {
  return new Promise((resolve, reject) => {
    const socket = 'path' in address ? net.connect({ path: address.path }) : net.connect({ host: address.host, port: address.port });
    let reply = Buffer.alloc(0);
    let settled = false;
    const finish = (err: Error | null, r?: ScanResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(r!);
    };
    const timer = setTimeout(() => finish(new Error(`clamd did not answer within ${timeoutMs} ms`)), timeoutMs);
    socket.on('error', (err) => finish(new Error(`clamd: ${err.message}`)));
    socket.on('data', (d: Buffer) => {
      reply = Buffer.concat([reply, d]);
      const nul = reply.indexOf(0);
      if (nul >= 0) finish(...parseReply(reply.subarray(0, nul).toString('utf8')));
      else if (reply.length > MAX_REPLY) finish(new Error('clamd: reply too long'));
    });
    socket.on('end', () => {
      // clamd may close without the NUL terminator (older versions, or after an error line).
      if (reply.length) finish(...parseReply(reply.toString('utf8')));
      else finish(new Error('clamd closed the connection without an answer'));
    });
    socket.on('connect', () => {
      socket.write('zINSTREAM\0');
      for (let off = 0; off < data.length; off += CHUNK) {
        const part = data.subarray(off, Math.min(off + CHUNK, data.length));
        const len = Buffer.alloc(4);
        len.writeUInt32BE(part.length);
        socket.write(len);
        socket.write(part);
      }
      socket.write(Buffer.alloc(4)); // zero-length chunk: end of stream
    });
  });

  function parseReply(text: string): [Error | null, ScanResult?] {
    const line = text.replace(/\0/g, '').trim();
    // "stream: OK" | "stream: Eicar-Test-Signature FOUND" | "INSTREAM size limit exceeded. ERROR"
    const body = line.replace(/^(?:\d+: )?stream: /, '');
    if (body === 'OK') return [null, { infected: false }];
    const found = /^(.*) FOUND$/.exec(body);
    if (found) return [null, { infected: true, signature: found[1]! }];
    return [new Error(`clamd: ${line || 'empty reply'}`)];
  }
}

export interface VirusSettings {
  clamd: string;
  failOpen: boolean;
  timeoutMs: number;
}

export interface VirusFilterDeps {
  log: { info(o: object, msg: string): void; warn(o: object, msg: string): void };
}

export class VirusFilter implements InboundFilter {
  readonly name = 'virus';
  readonly failOpen: boolean;
  private readonly address: ClamdAddress;

  constructor(
    private readonly settings: VirusSettings,
    private readonly deps: VirusFilterDeps,
  ) {
    this.address = parseClamdAddress(settings.clamd);
    this.failOpen = settings.failOpen;
  }

  async data(ctx: DataContext, result: DataResult): Promise<void> {
    let r: ScanResult;
    try {
      r = await clamdScan(this.address, ctx.raw, this.settings.timeoutMs);
    } catch (err) {
      result.log.virus = { error: (err as Error).message, failOpen: this.failOpen };
      throw err;
    }
    if (!r.infected) {
      result.log.virus = 'clean';
      return;
    }
    result.log.virus = { infected: r.signature };
    this.deps.log.warn({ cid: ctx.id, remote: ctx.remoteAddress, from: ctx.sender, signature: r.signature }, 'virus found; message refused');
    result.reject = Reply.virusFound();
  }
}
