/**
 * The reference stack, as docker-mailserver runs it: Postfix (smtpd on 25-equivalent and 465-equivalent ports,
 * SASL through Dovecot) delivering over LMTP to Dovecot, which stores Maildir and serves IMAP (plain and TLS).
 * Debian's packages, installed with apt-get when missing; configured in a temp dir on loopback ports of their
 * own (`postfix -c DIR/postfix`, `dovecot -F -c DIR/dovecot.conf`): nothing is written to /etc. Same accounts
 * (user1..N@bench.test with the same argon2id hashes as Postern), same TLS certificate.
 * Dovecot gets an auth cache (auth_cache_size), as Postern has one; its other settings are the defaults
 * except the process and connection limits the 1,000-connection workload needs.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../../test/harness/server.js';
import { hashPassword } from '../../src/core/passwords.js';
import { DOMAIN, PASSWORD, user } from './postern.js';
import { sh, sleep } from './util.js';

const PACKAGES = ['postfix', 'dovecot-imapd', 'dovecot-pop3d', 'dovecot-lmtpd'];

/** Installs the reference packages when missing (Debian's apt, noninteractive). Returns an error text or null. */
export async function ensureInstalled(): Promise<string | null> {
  const missing = PACKAGES.filter((p) => {
    try {
      return !/install ok installed/.test(execFileSync('dpkg-query', ['-W', '-f=${Status}', p], { stdio: 'pipe' }).toString());
    } catch {
      return true;
    }
  });
  if (!missing.length) return null;
  if (process.getuid?.() !== 0) return `needs root to install ${missing.join(' ')}`;
  console.log(`# installing ${missing.join(' ')} (apt-get)`);
  await sh('sh', ['-c', 'echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections']);
  const env = { DEBIAN_FRONTEND: 'noninteractive' };
  let r = await sh('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { env, timeoutMs: 600_000 });
  if (r.code !== 0) {
    await sh('apt-get', ['update', '-qq'], { env, timeoutMs: 300_000 });
    r = await sh('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { env, timeoutMs: 600_000 });
  }
  // Where apt starts services (no policy-rc.d), stop the system instances: they would hold the standard ports.
  await sh('sh', ['-c', 'command -v service >/dev/null && { service postfix stop; service dovecot stop; } >/dev/null 2>&1; true']);
  return r.code === 0 ? null : `apt-get install failed: ${r.err.slice(-500)}`;
}

export interface ReferencePorts {
  smtp: number;
  submissions: number;
  imap: number;
  imaps: number;
  lmtp: number;
}

const MASTER_CF = `# service type private unpriv chroot wakeup maxproc command
127.0.0.1:SMTP_PORT inet n - n - - smtpd
127.0.0.1:SUBMISSIONS_PORT inet n - n - - smtpd
  -o syslog_name=postfix/submissions
  -o smtpd_tls_wrappermode=yes
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_client_restrictions=permit_sasl_authenticated,reject
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
`;

async function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

export class Reference {
  private dovecot: ChildProcess | null = null;
  private constructor(
    readonly dir: string,
    readonly ports: ReferencePorts,
  ) {}

  get postfixDir(): string {
    return path.join(this.dir, 'postfix');
  }
  get mailDir(): string {
    return path.join(this.dir, 'mail');
  }

  static async create(opts: { accounts: number; cert: string; key: string }): Promise<Reference> {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'postern-ref-'));
    chmodSync(dir, 0o755);
    const ports: ReferencePorts = { smtp: await freePort(), submissions: await freePort(), imap: await freePort(), imaps: await freePort(), lmtp: await freePort() };
    const ref = new Reference(dir, ports);
    const pf = ref.postfixDir;
    for (const d of ['postfix', 'postfix/queue', 'postfix/data', 'mail', 'dovecot', 'dovecot/run', 'dovecot/state']) mkdirSync(path.join(dir, d), { recursive: true });
    const id = (args: string[]) => Number(execFileSync('id', args).toString().trim());
    const postfixUid = id(['-u', 'postfix']);
    const nobody = id(['-u', 'nobody']);
    const nogroup = id(['-g', 'nobody']);
    chownSync(path.join(pf, 'data'), postfixUid, -1);
    chownSync(ref.mailDir, nobody, nogroup);
    // Same hash parameters as Postern's accounts (argon2id m=19 MiB t=2); Dovecot verifies the encoded string.
    // libsodium (Dovecot) wants the parameters as m,t,p; node-argon2 writes m,p,t: same hash, other order.
    const hash = (await hashPassword(PASSWORD)).replace(/m=(\d+),p=(\d+),t=(\d+)/, 'm=$1,t=$3,p=$2');
    const users: string[] = [];
    const vmailbox: string[] = [];
    for (let i = 1; i <= opts.accounts; i++) {
      users.push(`${user(i)}:{ARGON2ID}${hash}::::::`);
      vmailbox.push(`${user(i)} ok`);
    }
    writeFileSync(path.join(dir, 'dovecot', 'users'), users.join('\n') + '\n');
    chmodSync(path.join(dir, 'dovecot', 'users'), 0o644);
    writeFileSync(path.join(pf, 'vmailbox'), vmailbox.join('\n') + '\n');
    const main = `compatibility_level = 3.6
queue_directory = ${pf}/queue
data_directory = ${pf}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.ref.${DOMAIN}
mydestination =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.1/32
maillog_file = ${dir}/maillog
maillog_file_prefixes = ${dir}
smtpd_peername_lookup = no
smtp_dns_support_level = disabled
default_transport = error:the reference sends no mail
relay_transport = error:the reference sends no mail
alias_maps =
alias_database =
biff = no
smtpd_banner = $myhostname ESMTP Postfix
smtpd_tls_cert_file = ${opts.cert}
smtpd_tls_key_file = ${opts.key}
smtpd_tls_security_level = may
smtpd_relay_restrictions = permit_sasl_authenticated, reject_unauth_destination
smtpd_sasl_type = dovecot
smtpd_sasl_path = ${dir}/dovecot/run/auth-postfix
virtual_mailbox_domains = ${DOMAIN}
virtual_mailbox_maps = texthash:${pf}/vmailbox
virtual_transport = lmtp:inet:127.0.0.1:${ports.lmtp}
`;
    writeFileSync(path.join(pf, 'main.cf'), main);
    writeFileSync(path.join(pf, 'master.cf'), MASTER_CF.replace('SMTP_PORT', String(ports.smtp)).replace('SUBMISSIONS_PORT', String(ports.submissions)));
    const dv = path.join(dir, 'dovecot');
    const conf = `base_dir = ${dv}/run
state_dir = ${dv}/state
log_path = ${dir}/dovecot.log
protocols = imap lmtp
listen = 127.0.0.1
ssl = yes
ssl_cert = <${opts.cert}
ssl_key = <${opts.key}
auth_mechanisms = plain login
auth_cache_size = 10M
auth_cache_ttl = 1 hour
passdb {
  driver = passwd-file
  args = ${dv}/users
}
userdb {
  driver = static
  args = uid=${nobody} gid=${nogroup} home=${dir}/mail/%d/%n
}
mail_location = maildir:~/Maildir
first_valid_uid = 1
mail_max_userip_connections = 5000
default_process_limit = 3000
default_client_limit = 10000
default_vsz_limit = 0
default_login_user = dovenull
default_internal_user = dovecot
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = ${ports.imap}
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = ${ports.imaps}
    ssl = yes
  }
  process_limit = 3000
}
service imap {
  process_limit = 3000
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = ${ports.lmtp}
  }
}
service auth {
  unix_listener auth-postfix {
    mode = 0666
  }
}
`;
    writeFileSync(path.join(dir, 'dovecot.conf'), conf);
    return ref;
  }

  /** Starts Dovecot then Postfix; resolves when every port answers. Returns ms to listening. */
  async start(): Promise<number> {
    const t0 = performance.now();
    const conf = path.join(this.dir, 'dovecot.conf');
    this.dovecot = spawn('sh', ['-c', `ulimit -n 65536; exec /usr/sbin/dovecot -F -c ${conf}`], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    this.dovecot.stderr!.on('data', (d) => (err += d));
    const r = await sh('/usr/sbin/postfix', ['-c', this.postfixDir, 'start']);
    if (r.code !== 0) throw new Error(`postfix start failed: ${r.out}${r.err}\n${this.log()}`);
    const deadline = Date.now() + 20_000;
    for (const p of [this.ports.smtp, this.ports.submissions, this.ports.imap, this.ports.imaps, this.ports.lmtp]) {
      while (!(await listening(p))) {
        if (Date.now() > deadline || this.dovecot.exitCode !== null) throw new Error(`reference did not listen on ${p}: ${err}\n${this.log()}`);
        await sleep(20);
      }
    }
    return performance.now() - t0;
  }

  /** Every process of the stack: Postfix's master and children, Dovecot's master and children. */
  pids(): number[] {
    const out: number[] = [];
    try {
      const master = Number(readFileSync(path.join(this.postfixDir, 'queue', 'pid', 'master.pid'), 'utf8').trim());
      out.push(master);
    } catch {
      /* not running */
    }
    if (this.dovecot?.pid) out.push(this.dovecot.pid);
    return out;
  }

  dovecotPid(): number {
    return this.dovecot?.pid ?? 0;
  }

  /** Messages delivered into every Maildir (new/ and cur/). */
  messageCount(): number {
    let n = 0;
    const base = path.join(this.mailDir, DOMAIN);
    if (!existsSync(base)) return 0;
    for (const u of readdirSync(base)) {
      for (const sub of ['new', 'cur']) {
        try {
          n += readdirSync(path.join(base, u, 'Maildir', sub)).length;
        } catch {
          /* no such dir yet */
        }
      }
    }
    return n;
  }

  log(): string {
    const read = (f: string) => {
      try {
        return readFileSync(path.join(this.dir, f), 'utf8').slice(-3000);
      } catch {
        return '';
      }
    };
    return `${read('maillog')}${read('dovecot.log')}`;
  }

  async stop(): Promise<void> {
    await sh('/usr/sbin/postfix', ['-c', this.postfixDir, 'stop']);
    const d = this.dovecot;
    if (d && d.exitCode === null) {
      const exited = new Promise((r) => d.once('exit', r));
      d.kill('SIGTERM');
      const t = setTimeout(() => d.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
    }
    // Postfix's master exits asynchronously; wait until its ports are free.
    for (let i = 0; i < 100 && (await listening(this.ports.smtp)); i++) await sleep(50);
  }

  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
