/**
 * A real Postern process for the benchmarks: the compiled CLI (dist/main.js, as operators run it), a fresh data
 * dir, loopback ports, N accounts (user1..userN@bench.test, created through the same Admin code the CLI uses,
 * before the server starts), the bench's TLS certificate. Log level info as shipped; stdout goes to a file.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { freePort } from '../../test/harness/server.js';
import { SqliteStore } from '../../src/storage/sqlite/store.js';
import { Admin } from '../../src/cli/admin.js';
import { ROOT } from './util.js';

export const MAIN = path.join(ROOT, 'dist/main.js');
export const DOMAIN = 'bench.test';
export const PASSWORD = 'bench password 1';
export const user = (i: number) => `user${i}@${DOMAIN}`;

export interface PosternPorts {
  smtp: number;
  submissions: number;
  imap: number;
  imaps: number;
}

export interface PosternOptions {
  accounts: number;
  cert: string;
  key: string;
  /** [smtp] banner_delay; default: the shipped default (the key is not written). */
  bannerDelay?: string;
  extraToml?: string;
  /** Reuse this data dir (already populated) instead of a fresh one. */
  dir?: string;
  nodeArgs?: string[];
}

export class Postern {
  child: ChildProcess | null = null;
  /** ms from spawn to the "postern started" log line (every listener bound). */
  startMs = 0;
  private constructor(
    readonly dir: string,
    readonly configFile: string,
    readonly ports: PosternPorts,
    private readonly opts: PosternOptions,
  ) {}

  get dataDir(): string {
    return path.join(this.dir, 'data');
  }
  get pid(): number {
    return this.child?.pid ?? 0;
  }

  static async create(opts: PosternOptions): Promise<Postern> {
    const fresh = !opts.dir;
    const dir = opts.dir ?? mkdtempSync(path.join(os.tmpdir(), 'postern-bench-'));
    const ports: PosternPorts = { smtp: await freePort(), submissions: await freePort(), imap: await freePort(), imaps: await freePort() };
    const l = (name: string, port: number) => `[listeners.${name}]\nenabled = true\naddress = "127.0.0.1:${port}"\nmax_connections = 20000\nmax_connections_per_ip = 20000\n`;
    const off = ['submission', 'pop3', 'pop3s'].map((n) => `[listeners.${n}]\nenabled = false\n`).join('');
    const toml = `hostname = "mx.${DOMAIN}"
data_dir = "${path.join(dir, 'data')}"
[log]
level = "info"
[tls]
cert = "${opts.cert}"
key = "${opts.key}"
${l('smtp', ports.smtp)}${l('submissions', ports.submissions)}${l('imap', ports.imap)}${l('imaps', ports.imaps)}${off}[dns]
servers = ["127.0.0.1:${await freePort()}"]
[protection]
enabled = false
[smtp]
${opts.bannerDelay !== undefined ? `banner_delay = "${opts.bannerDelay}"\n` : ''}[imap]
max_connections_per_account = 5000
max_commands_per_second = 0
plaintext_auth_networks = ["127.0.0.0/8"]
${opts.extraToml ?? ''}
`;
    const configFile = path.join(dir, 'postern.toml');
    writeFileSync(configFile, toml);
    if (fresh) {
      mkdirSync(path.join(dir, 'data'), { recursive: true });
      const store = new SqliteStore({ dataDir: path.join(dir, 'data') });
      try {
        const admin = new Admin(store, { defaultQuota: 0 });
        for (let i = 1; i <= opts.accounts; i++) await admin.addEmail(user(i), PASSWORD);
      } finally {
        await store.close();
      }
    }
    return new Postern(dir, configFile, ports, opts);
  }

  async start(): Promise<void> {
    const t0 = performance.now();
    const child = spawn(process.execPath, [...(this.opts.nodeArgs ?? []), MAIN, '--config', this.configFile, 'start'], { cwd: this.dir, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    const log = createWriteStream(path.join(this.dir, 'postern.log'));
    let stderr = '';
    let buf = '';
    let started = false;
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (d: Buffer) => {
        log.write(d);
        if (started) return;
        buf += d.toString();
        if (buf.includes('"postern started"')) {
          started = true;
          buf = '';
          this.startMs = performance.now() - t0;
          resolve();
        }
      });
      child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); if (process.env.BENCH_STDERR) process.stderr.write(d); });
      child.once('exit', (code) => reject(new Error(`postern exited with ${code}: ${stderr}`)));
      setTimeout(() => reject(new Error(`postern did not start within 30 s: ${stderr}`)), 30_000).unref();
    });
  }

  async stop(): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGTERM');
    const t = setTimeout(() => c.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(t);
  }

  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Messages readable in mailboxes (committed rows), read-only next to the running server (WAL). */
  private db: Database.Database | null = null;
  messageCount(): number {
    this.db ??= new Database(path.join(this.dataDir, 'postern.db'), { readonly: true, fileMustExist: true });
    return (this.db.prepare('SELECT count(*) AS n FROM messages').get() as { n: number }).n;
  }
  closeDb(): void {
    this.db?.close();
    this.db = null;
  }
}
