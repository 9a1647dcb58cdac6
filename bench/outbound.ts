/**
 * bench/outbound: how fast the outbound queue empties, and how long a message waits in it under load.
 *
 * Set-up (all on loopback): a real Postern process (dist/, as operators run it) with a fresh data dir, our
 * test DNS server, and a sink MTA (smtp-server, PIPELINING, no STARTTLS, message discarded, 250 at once)
 * on 127.0.0.8:25. Recipients are spread over DOMAINS domains whose MX is the sink, so the per-destination
 * concurrency limit ([delivery] max_connections_per_domain) and connection reuse are exercised.
 *
 * 1. Queue drain: N messages are submitted while the sink is down (each attempt is refused and deferred
 *    with a long retry interval), then the sink starts and `postern queue retry --all` is run. Figure:
 *    messages delivered per second from that moment until the last one arrives.
 * 2. Latency under load: with the sink up, SENDERS submission connections (AUTH once, then one message
 *    after another) submit M messages; for each, the time from the start of its submission to the sink's
 *    250 after DATA. Figures: p50/p95/p99/max and the end-to-end rate.
 *
 * Output: one figure per line as `name value unit`, and a JSON report in bench/results/.
 * Usage: node --import tsx bench/outbound.ts [--messages N] [--load M] [--senders S] [--domains D]
 * (needs root for port 25 on 127.0.0.8, and a build: `npm run build`).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import { SMTPServer } from 'smtp-server';
import { startDnsServer } from '../test/harness/dns-server.js';
import { MAIN, ROOT, TestServer } from '../test/harness/server.js';
import { dataDirOf, queueEntries } from '../test/harness/store.js';

const SINK_HOST = '127.0.0.8';
const PW = 'correct horse battery';

const { values: args } = parseArgs({
  options: {
    messages: { type: 'string', default: '2000' },
    load: { type: 'string', default: '2000' },
    senders: { type: 'string', default: '8' },
    domains: { type: 'string', default: '10' },
    size: { type: 'string', default: '4096' },
  },
});
const N = Number(args.messages);
const M = Number(args.load);
const SENDERS = Number(args.senders);
const DOMAINS = Number(args.domains);
const SIZE = Number(args.size);

/** The sink: counts messages and notes, per bench id, when it answered 250 to DATA. */
class Sink {
  readonly arrived = new Map<string, number>();
  count = 0;
  private server: SMTPServer | null = null;

  async start(): Promise<void> {
    const server = new SMTPServer({
      logger: false,
      hideSTARTTLS: true,
      authOptional: true,
      disabledCommands: ['AUTH', 'STARTTLS'],
      size: 50 * 1024 * 1024,
      onData: (stream, _session, cb) => {
        let head = '';
        stream.on('data', (c: Buffer) => {
          if (head.length < 2048) head += c.toString('latin1');
        });
        stream.on('end', () => {
          const id = /\r\nX-Bench-Id: (\S+)/.exec(head)?.[1];
          this.count++;
          if (id) this.arrived.set(id, performance.now());
          cb(null, 'Ok: discarded');
        });
      },
    });
    server.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      server.server.once('error', reject);
      server.listen(25, SINK_HOST, () => resolve());
    });
    this.server = server;
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (s) await new Promise<void>((r) => s.close(() => r()));
  }
}

/** A submission client: one connection, AUTH once, then messages one after another. */
async function sender(port: number): Promise<SMTPConnection> {
  const conn = new SMTPConnection({ host: '127.0.0.1', port, secure: true, tls: { rejectUnauthorized: false }, logger: false, socketTimeout: 120_000 });
  await new Promise<void>((resolve, reject) => {
    conn.once('error', reject);
    conn.connect(() => resolve());
  });
  await new Promise<void>((resolve, reject) => conn.login({ user: 'alice@example.org', pass: PW }, (err) => (err ? reject(err) : resolve())));
  return conn;
}

const filler = (() => {
  const line = 'The quick brown fox jumps over the lazy dog, again and again and again.\r\n';
  return line.repeat(Math.max(1, Math.ceil(SIZE / line.length)));
})();

function message(id: string, to: string): string {
  return `From: Alice <alice@example.org>\r\nTo: ${to}\r\nSubject: bench ${id}\r\nDate: ${new Date().toUTCString()}\r\nMessage-ID: <${id}@example.org>\r\nX-Bench-Id: ${id}\r\n\r\n${filler}`;
}

function send(conn: SMTPConnection, id: string, to: string): Promise<void> {
  return new Promise((resolve, reject) => conn.send({ from: 'alice@example.org', to: [to] }, message(id, to), (err) => (err ? reject(err) : resolve())));
}

/** Submits `count` messages over `senders` connections; `onStart` is called as each submission begins. */
async function submitAll(port: number, prefix: string, count: number, senders: number, onStart: (id: string) => void): Promise<void> {
  const conns = await Promise.all(Array.from({ length: senders }, () => sender(port)));
  let next = 0;
  await Promise.all(
    conns.map(async (conn) => {
      for (;;) {
        const i = next++;
        if (i >= count) break;
        const id = `${prefix}${i}`;
        onStart(id);
        await send(conn, id, `u${i}@d${i % DOMAINS}.bench.test`);
      }
      conn.quit();
    }),
  );
}

async function until(f: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await f())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function pct(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

const round = (x: number, d = 1) => Math.round(x * 10 ** d) / 10 ** d;

async function main(): Promise<void> {
  if (!existsSync(MAIN)) {
    console.error(`bench/outbound: ${path.relative(ROOT, MAIN)} is missing; run \`npm run build\` first`);
    process.exit(1);
  }
  const dns = await startDnsServer();
  dns.set('sink.bench.test', [{ type: 'A', data: SINK_HOST }]);
  for (let d = 0; d < DOMAINS; d++) dns.set(`d${d}.bench.test`, [{ type: 'MX', data: { preference: 10, exchange: 'sink.bench.test' } }]);
  const srv = await TestServer.create({
    extraToml: `[dns]\nservers = ["${dns.address}"]\n[queue]\nretry_base = "1h"\nretry_max = "4h"\npoll_interval = "100ms"\n[delivery]\nconnect_timeout = "2s"\n`,
    // The default level (the harness sets debug, which logs every SMTP command).
    env: { POSTERN_LOG_LEVEL: 'info' },
  });
  const sink = new Sink();
  const figures: { name: string; value: number; unit: string }[] = [];
  const report = (name: string, value: number, unit: string) => {
    figures.push({ name, value, unit });
    console.log(`${name} ${value} ${unit}`);
  };
  try {
    await srv.start();
    await srv.addAccount('alice@example.org', PW);

    // 1. Queue drain.
    await submitAll(srv.ports.submissions, 'q', N, SENDERS, () => undefined);
    await until(async () => (await queueEntries(dataDirOf(srv.dir))).filter((e) => e.recipients.every((r) => r.attempts > 0)).length >= N, 120_000, 'every queued message to be deferred once');
    await sink.start();
    const t0 = performance.now();
    execFileSync(process.execPath, [MAIN, '--config', srv.configFile, 'queue', 'retry', '--all'], { cwd: srv.dir, stdio: 'pipe' });
    await until(() => sink.count >= N, 300_000, 'the queue to drain');
    const drainS = (performance.now() - t0) / 1000;
    report('outbound_queue_drain_rate', round(N / drainS), 'msg/s');
    report('outbound_queue_drain_time', round(drainS, 3), 's');
    await until(async () => (await queueEntries(dataDirOf(srv.dir))).length === 0, 60_000, 'the queue entries to be removed');

    // 2. Latency under load.
    const started = new Map<string, number>();
    const before = sink.count;
    const t1 = performance.now();
    await submitAll(srv.ports.submissions, 'l', M, SENDERS, (id) => started.set(id, performance.now()));
    const submitS = (performance.now() - t1) / 1000;
    await until(() => sink.count - before >= M, 300_000, 'the loaded messages to arrive');
    const e2eS = (performance.now() - t1) / 1000;
    const lat = [...started].map(([id, t]) => sink.arrived.get(id)! - t).sort((a, b) => a - b);
    report('outbound_submit_rate', round(M / submitS), 'msg/s');
    report('outbound_e2e_rate', round(M / e2eS), 'msg/s');
    report('outbound_latency_p50', round(pct(lat, 50)), 'ms');
    report('outbound_latency_p95', round(pct(lat, 95)), 'ms');
    report('outbound_latency_p99', round(pct(lat, 99)), 'ms');
    report('outbound_latency_max', round(lat[lat.length - 1]!), 'ms');
  } finally {
    await srv.stop();
    await sink.stop();
    await dns.close();
    srv.cleanup();
  }
  const dir = path.join(ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `outbound-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(
    file,
    JSON.stringify(
      {
        bench: 'outbound',
        at: new Date().toISOString(),
        machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version },
        params: { messages: N, load: M, senders: SENDERS, domains: DOMAINS, size: SIZE, sink: `${SINK_HOST}:25 (smtp-server, discard)`, postern: 'defaults; [queue] poll_interval 100ms' },
        figures,
      },
      null,
      2,
    ) + '\n',
  );
  console.error(`report: ${path.relative(ROOT, file)}`);
}

main().catch((err) => {
  console.error(`bench/outbound failed: ${(err as Error).stack ?? err}`);
  process.exit(1);
});
