/**
 * Starts a real Postern process (the compiled CLI, as operators run it) on free loopback ports with a
 * fresh data directory, and runs CLI commands against the same configuration.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const MAIN = path.join(ROOT, 'dist/main.js');

/**
 * A port that is free now, chosen at random BELOW the kernel's ephemeral range (32768-60999 on Linux), so
 * that no outgoing connection of a parallel test can take it between this check and the server's bind.
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 12000);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.createServer();
      s.once('error', () => resolve(false));
      s.listen(port, host, () => s.close(() => resolve(true)));
    });
    if (ok) return port;
  }
  throw new Error('no free port found');
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function run(args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], { cwd: opts.cwd ?? ROOT, env: { ...process.env, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}

export interface Ports {
  smtp: number;
  submissions: number;
  submission: number;
  imap: number;
  imaps: number;
  pop3: number;
  pop3s: number;
}

export type ListenerName = keyof Ports;

export interface TestServerOptions {
  /** Extra TOML appended to the generated configuration. */
  extraToml?: string;
  /** Replace sections entirely: when given, [smtp] etc. from here are used instead of the defaults. */
  smtpToml?: string;
  env?: NodeJS.ProcessEnv;
  dir?: string;
  /** Listeners to enable (default: the three SMTP ones). Every listener gets a free loopback port. */
  listeners?: ListenerName[];
}

export class TestServer {
  child: ChildProcess | null = null;
  logs: Record<string, unknown>[] = [];
  stderr = '';
  private exitPromise: Promise<number | null> | null = null;

  constructor(
    readonly dir: string,
    readonly configFile: string,
    readonly ports: Ports,
    private readonly env: NodeJS.ProcessEnv = {},
  ) {}

  static async create(opts: TestServerOptions = {}): Promise<TestServer> {
    const dir = opts.dir ?? mkdtempSync(path.join(os.tmpdir(), 'postern-test-'));
    const ports: Ports = { smtp: 0, submissions: 0, submission: 0, imap: 0, imaps: 0, pop3: 0, pop3s: 0 };
    for (const k of Object.keys(ports) as ListenerName[]) ports[k] = await freePort();
    const enabled = new Set<ListenerName>(opts.listeners ?? ['smtp', 'submissions', 'submission']);
    const listeners = (Object.keys(ports) as ListenerName[])
      .map((k) => `[listeners.${k}]\nenabled = ${enabled.has(k)}\naddress = "127.0.0.1:${ports[k]}"\n`)
      .join('');
    // No test may resolve through the system resolver (traffic must stay on loopback): unless the test brings
    // its own [dns], point DNS at a closed loopback port so every lookup fails fast and locally.
    const custom = `${opts.smtpToml ?? ''}${opts.extraToml ?? ''}`;
    const dns = custom.includes('[dns]') ? '' : `[dns]\nservers = ["127.0.0.1:${await freePort()}"]\n`;
    // Inbound protection (greylisting, pregreet wait, DNSBL ...) is on by default in Postern; tests that are not
    // about it get a plain MTA unless they bring their own [protection].
    const protection = custom.includes('[protection]') ? '' : `[protection]\nenabled = false\n`;
    const toml = `hostname = "mx.postern.test"
data_dir = "${path.join(dir, 'data')}"
[log]
level = "debug"
${listeners}${dns}${protection}[accounts]
auth_failure_delay = "100ms"
auth_failure_delay_max = "400ms"
${opts.smtpToml ?? ''}
${opts.extraToml ?? ''}
`;
    const configFile = path.join(dir, 'postern.toml');
    writeFileSync(configFile, toml);
    return new TestServer(dir, configFile, ports, opts.env);
  }

  /** Starts the server and waits until it logs "postern started" (or fails). */
  async start(): Promise<void> {
    this.logs = [];
    const child = spawn(process.execPath, [MAIN, '--config', this.configFile, 'start'], { cwd: this.dir, env: { ...process.env, ...this.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    this.exitPromise = new Promise((r) => child.on('exit', (code) => r(code)));
    let buf = '';
    const started = new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (d: Buffer) => {
        buf += d.toString();
        let i;
        while ((i = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          try {
            const entry = JSON.parse(line) as Record<string, unknown>;
            this.logs.push(entry);
            if (entry.msg === 'postern started') resolve();
          } catch {
            this.logs.push({ raw: line });
          }
        }
      });
      child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
      child.on('exit', (code) => reject(new Error(`server exited with ${code} before starting: ${this.stderr}`)));
    });
    const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`server did not start in time: ${this.stderr}`)), 20_000).unref());
    await Promise.race([started, timeout]);
  }

  cli(args: string[], input?: string): Promise<CliResult> {
    return run(['--config', this.configFile, ...args], { input, cwd: this.dir, env: this.env });
  }

  async addAccount(address: string, password = 'correct horse battery'): Promise<void> {
    const r = await this.cli(['email', 'add', address, password]);
    if (r.code !== 0) throw new Error(`email add failed: ${r.stderr}`);
  }

  /** Waits for the process to exit; returns its code. */
  waitExit(): Promise<number | null> {
    return this.exitPromise ?? Promise.resolve(null);
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<number | null> {
    if (!this.child || this.child.exitCode !== null) return this.child?.exitCode ?? null;
    this.child.kill(signal);
    return this.waitExit();
  }

  /** SIGTERM; a server that has not exited 20 s later is killed (and the test output says so). */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const timer = setTimeout(() => {
      process.stderr.write(`postern test server ${child.pid} ignored SIGTERM for 20 s; killing it\n`);
      child.kill('SIGKILL');
    }, 20_000);
    await this.kill('SIGTERM').finally(() => clearTimeout(timer));
  }

  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }

  /**
   * The newest log entry with this message (and matching `pred`), waiting for it: the server writes its log
   * asynchronously, so a line may arrive a moment after the reply it explains.
   */
  async logEntry(msg: string, pred: (l: Record<string, unknown>) => boolean = () => true, timeoutMs = 5000): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.logs.filter((l) => l.msg === msg && pred(l)).at(-1);
      if (hit) return hit;
      if (Date.now() > deadline) throw new Error(`no log entry "${msg}" within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  logsMatching(msg: string): Record<string, unknown>[] {
    return this.logs.filter((l) => l.msg === msg);
  }
}
