/** The `postern` CLI: every verb and its error cases, alone and next to a running server. */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { TestServer, run, freePort, MAIN } from '../harness/server.js';
import { smtpSession } from '../harness/py.js';

const PW = 'correct horse battery';

describe('CLI against a running server', () => {
  let srv: TestServer;
  before(async () => {
    srv = await TestServer.create();
    await srv.start();
  });
  after(async () => {
    await srv.stop();
    srv.cleanup();
  });

  it('email add/update/del take effect immediately in the running server', async () => {
    let r = await srv.cli(['email', 'add', 'dave@example.org', PW]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'created dave@example.org');
    const ok = await smtpSession({ port: srv.ports.submissions, mode: 'ssl', user: 'dave@example.org', password: PW, from: 'dave@example.org', to: ['dave@example.org'] });
    assert.ok(ok.steps.every((s) => s.ok), JSON.stringify(ok));

    r = await srv.cli(['email', 'update', 'dave@example.org'], 'a new password 123\n');
    assert.equal(r.code, 0, r.stderr);
    const old = await smtpSession({ port: srv.ports.submissions, mode: 'ssl', user: 'dave@example.org', password: PW, send: false });
    assert.equal(old.steps[0]!.code, 535);
    const fresh = await smtpSession({ port: srv.ports.submissions, mode: 'ssl', user: 'dave@example.org', password: 'a new password 123', send: false });
    assert.ok(fresh.steps[0]!.ok);

    r = await srv.cli(['email', 'del', 'dave@example.org']);
    assert.equal(r.code, 0, r.stderr);
    const gone = await smtpSession({ port: srv.ports.smtp, mode: 'plain', from: 'x@remote.test', to: ['dave@example.org'] });
    assert.equal(gone.steps[0]!.refused?.['dave@example.org']?.[0], 550);
  });

  it('email add reads the password from stdin when it is not given', async () => {
    const r = await srv.cli(['email', 'add', 'Erin@Example.ORG'], 'stdin password 42\n');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'created erin@example.org');
    const s = await smtpSession({ port: srv.ports.submissions, mode: 'ssl', user: 'erin@example.org', password: 'stdin password 42', send: false });
    assert.ok(s.steps[0]!.ok);
  });

  it('email list shows quota use and aliases', async () => {
    await srv.addAccount('frank@example.org', PW);
    assert.equal((await srv.cli(['quota', 'set', 'frank@example.org', '500M'])).code, 0);
    assert.equal((await srv.cli(['alias', 'add', 'sales@example.org', 'frank@example.org'])).code, 0);
    await smtpSession({ port: srv.ports.smtp, mode: 'plain', from: 'x@remote.test', to: ['frank@example.org'] });
    const r = await srv.cli(['email', 'list']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^\* frank@example\.org \( \d+(\.\d)?[BK] \/ 500M \) \[0%\] 1 message\n {4}\[ aliases -> sales@example\.org \]$/m);
    assert.equal((await srv.cli(['quota', 'del', 'frank@example.org'])).stdout.trim(), 'quota frank@example.org unlimited');
    assert.match((await srv.cli(['email', 'list'])).stdout, /\* frank@example\.org \( \S+ \/ ~ \)/);
  });

  it('alias add/list/del, with catch-all and external targets', async () => {
    assert.equal((await srv.cli(['alias', 'add', '@other.test', 'frank@example.org'])).code, 0);
    assert.equal((await srv.cli(['alias', 'add', 'out@other.test', 'someone@external.test'])).code, 0);
    const list = await srv.cli(['alias', 'list']);
    assert.match(list.stdout, /^\* @other\.test frank@example\.org$/m);
    assert.match(list.stdout, /^\* out@other\.test someone@external\.test$/m);
    const dup = await srv.cli(['alias', 'add', '@other.test', 'frank@example.org']);
    assert.equal(dup.code, 1);
    assert.equal(dup.stderr.trim(), 'postern: alias @other.test -> frank@example.org already exists');
    assert.equal((await srv.cli(['alias', 'del', '@other.test', 'frank@example.org'])).code, 0);
    const missing = await srv.cli(['alias', 'del', '@other.test', 'frank@example.org']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^postern: no alias @other\.test -> frank@example\.org\n$/);
    assert.doesNotMatch((await srv.cli(['alias', 'list'])).stdout, /@other\.test frank/);
  });

  it('rejects bad input with one line and a non-zero exit', async () => {
    const cases: [string[], RegExp, string?][] = [
      [['email', 'add', 'not-an-address', PW], /^postern: malformed email address "not-an-address" \(expected user@example\.org\)$/],
      [['email', 'add', 'x@example.org', 'short'], /^postern: password too short \(at least 8 characters\)$/],
      [['email', 'add', 'frank@example.org', PW], /^postern: account frank@example\.org already exists$/],
      [['email', 'update', 'nobody@example.org', PW], /^postern: no account nobody@example\.org$/],
      [['email', 'del', 'nobody@example.org'], /^postern: no account nobody@example\.org$/],
      [['alias', 'add', 'bad alias', 'frank@example.org'], /^postern: malformed email address "bad alias"/],
      [['alias', 'add', 'a@example.org', 'a@example.org'], /^postern: an alias cannot point to itself$/],
      [['quota', 'set', 'frank@example.org', 'lots'], /^postern: invalid size "lots" \(expected e\.g\. 500K, 25M, 2G\)$/],
      [['quota', 'set', 'nobody@example.org', '1G'], /^postern: no account nobody@example\.org$/],
      [['frobnicate'], /^postern: unknown command 'frobnicate'/],
      [['email', 'add'], /^postern: missing required argument 'address'$/],
    ];
    for (const [args, re] of cases) {
      const r = await srv.cli(args);
      assert.notEqual(r.code, 0, args.join(' '));
      assert.match(r.stderr.trim().split('\n')[0]!, re, args.join(' '));
      assert.equal(r.stdout, '', args.join(' '));
    }
  });
});

describe('CLI configuration and start-up errors', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'postern-cli-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('reports a config file that does not parse with file, line, key and reason', async () => {
    const f = path.join(dir, 'bad.toml');
    writeFileSync(f, 'hostname = "mx.test"\n\n[smtp]\nmax_message_size = "lots"\n');
    let r = await run(['--config', f, 'email', 'list']);
    assert.equal(r.code, 1);
    assert.equal(r.stderr.trim(), `postern: ${f}:4: key "smtp.max_message_size": invalid size "lots" (expected e.g. 500K, 25M, 2G)`);
    writeFileSync(f, 'hostname = "mx.test"\n[listeners.smtp]\nadress = "127.0.0.1:25"\n');
    r = await run(['--config', f, 'start']);
    assert.equal(r.stderr.trim(), `postern: ${f}:3: key "listeners.smtp": unknown key "adress"`);
    writeFileSync(f, 'hostname = "mx.test"\n[smtp\n');
    r = await run(['--config', f, 'start']);
    assert.match(r.stderr.trim(), new RegExp(`^postern: ${f.replace(/\./g, '\\.')}:2:\\d+: TOML syntax error: `));
    writeFileSync(f, '[smtp]\nrelay_networks = ["10.0.0.1/8"]\n');
    r = await run(['--config', f, 'start']);
    assert.match(r.stderr.trim(), /:2: key "smtp\.relay_networks": .*10\.0\.0\.1\/8/);
    r = await run(['--config', path.join(dir, 'missing.toml'), 'start']);
    assert.match(r.stderr.trim(), /^postern: .*missing\.toml: cannot read configuration: ENOENT/);
  });

  it('explains a port that is already in use, naming the process that holds it', async () => {
    const port = await freePort();
    const blocker = net.createServer().listen(port, '127.0.0.1');
    await new Promise((r) => blocker.once('listening', r));
    try {
      const f = path.join(dir, 'busy.toml');
      writeFileSync(f, `hostname = "mx.test"\ndata_dir = "${path.join(dir, 'data-busy')}"\n[listeners.smtp]\naddress = "127.0.0.1:${port}"\n[listeners.submissions]\nenabled = false\n[listeners.submission]\nenabled = false\n[listeners.imap]\nenabled = false\n[listeners.imaps]\nenabled = false\n`);
      const r = await run(['--config', f, 'start']);
      assert.equal(r.code, 1);
      assert.match(r.stderr, new RegExp(`^postern: listener "smtp" cannot bind 127\\.0\\.0\\.1:${port}: address already in use \\(EADDRINUSE\\) by pid ${process.pid} \\(.*\\)\\. Stop that service, or choose another port with \\[listeners\\.smtp\\] address\\n$`));
    } finally {
      blocker.close();
    }
  });

  it('explains a privileged port that cannot be bound (EACCES)', async (t) => {
    let runuser = '';
    try {
      runuser = execFileSync('sh', ['-c', 'command -v runuser'], { encoding: 'utf8' }).trim();
    } catch {
      /* not available */
    }
    if (process.getuid?.() !== 0 || !runuser) return t.skip('needs root and runuser to drop privileges');
    const d = mkdtempSync(path.join(os.tmpdir(), 'postern-eacces-'));
    chmodSync(d, 0o777);
    const f = path.join(d, 'low.toml');
    writeFileSync(f, `hostname = "mx.test"\ndata_dir = "${path.join(d, 'data')}"\n[listeners.smtp]\naddress = "127.0.0.1:25"\n[listeners.submissions]\nenabled = false\n[listeners.submission]\nenabled = false\n[listeners.imap]\nenabled = false\n[listeners.imaps]\nenabled = false\n`);
    chmodSync(f, 0o644);
    const out = (() => {
      try {
        execFileSync(runuser, ['-u', 'nobody', '--', process.execPath, MAIN, '--config', f, 'start'], { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'], cwd: d });
        return '';
      } catch (e) {
        return String((e as { stderr?: string }).stderr ?? '');
      }
    })();
    rmSync(d, { recursive: true, force: true });
    assert.match(out, /^postern: listener "smtp" cannot bind 127\.0\.0\.1:25: permission denied \(EACCES\)\. Ports below 1024 need privileges: run as root, grant the capability \(setcap cap_net_bind_service=\+ep .*\), or choose another port with \[listeners\.smtp\] address\n$/);
  });
});
