/**
 * Migration from docker-mailserver: `postern import dms <config-dir>` with real hashes made by other tools
 * (openssl passwd for SHA512-CRYPT/SHA256-CRYPT, libxcrypt through Python for BLF-CRYPT, as doveadm makes
 * them), then logins with the old passwords, which upgrade the stored hash to argon2id.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { TestServer } from '../harness/server.js';
import { smtpSession } from '../harness/py.js';
import { SqliteStore } from '../../src/storage/sqlite/store.js';
import { dataDirOf } from '../harness/store.js';

const sha512 = (pw: string) => execFileSync('openssl', ['passwd', '-6', '-salt', 'dmsSalt1', pw], { encoding: 'utf8' }).trim();
const sha256 = (pw: string) => execFileSync('openssl', ['passwd', '-5', '-salt', 'dmsSalt2', pw], { encoding: 'utf8' }).trim();
const blf = (pw: string) =>
  execFileSync('python3', ['-W', 'ignore', '-c', `import crypt,sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=32)))`, pw], { encoding: 'utf8' })
    .trim()
    .replace(/^\$2b\$/, '$2y$'); // doveadm pw -s BLF-CRYPT writes $2y$

async function storedHash(dataDir: string, address: string): Promise<string> {
  const store = new SqliteStore({ dataDir });
  try {
    return (await store.directory.getAccount(address))!.passwordHash;
  } finally {
    await store.close();
  }
}

it('imports accounts, aliases and quotas from a docker-mailserver config dir; old passwords work and are upgraded', async () => {
  const srv = await TestServer.create();
  try {
    const dms = path.join(srv.dir, 'dms-config');
    mkdirSync(dms);
    writeFileSync(
      path.join(dms, 'postfix-accounts.cf'),
      [
        '# docker-mailserver accounts',
        `alice@example.org|{SHA512-CRYPT}${sha512('alice old password')}`,
        `bob@example.org|{BLF-CRYPT}${blf('bob old password')}`,
        `carol@example.net|{SHA256-CRYPT}${sha256('carol old password')}`,
        'dave@example.org|{PLAIN}not-a-hash',
        '',
      ].join('\n'),
    );
    writeFileSync(path.join(dms, 'postfix-virtual.cf'), 'info@example.org alice@example.org,bob@example.org\n@catchall.example.org alice@example.org\n');
    writeFileSync(path.join(dms, 'dovecot-quotas.cf'), 'alice@example.org:500M\n');

    const r = await srv.cli(['import', 'dms', dms]);
    assert.equal(r.code, 1, 'one account could not be imported');
    assert.match(r.stdout, /^imported alice@example\.org$/m);
    assert.match(r.stdout, /^imported bob@example\.org$/m);
    assert.match(r.stdout, /^imported carol@example\.net$/m);
    assert.match(r.stdout, /^imported info@example\.org -> alice@example\.org$/m);
    assert.match(r.stdout, /^imported @catchall\.example\.org -> alice@example\.org$/m);
    assert.match(r.stdout, /^imported alice@example\.org 500M$/m);
    assert.match(r.stdout, /^7 imported, 0 skipped, 1 failed$/m);
    assert.match(r.stderr, /postfix-accounts\.cf:5: unsupported password scheme for dave@example\.org/);

    const again = await srv.cli(['email', 'import', path.join(dms, 'postfix-accounts.cf')]);
    assert.match(again.stdout, /^0 imported, 3 skipped, 1 failed$/m, 'a second import changes nothing');
    assert.match((await srv.cli(['email', 'list'])).stdout, /^\* alice@example\.org \( 0B \/ 500M \) \[0%\] 0 messages\n {4}\[ aliases -> @catchall\.example\.org, info@example\.org \]$/m);

    await srv.start();
    for (const [user, pw] of [
      ['alice@example.org', 'alice old password'],
      ['bob@example.org', 'bob old password'],
      ['carol@example.net', 'carol old password'],
    ]) {
      assert.ok(!(await storedHash(dataDirOf(srv.dir), user!)).startsWith('$argon2id$'));
      const ok = await smtpSession({ port: srv.ports.submissions, mode: 'ssl', user, password: pw, send: false });
      assert.ok(ok.steps[0]!.ok, `${user} logs in with the imported hash: ${JSON.stringify(ok)}`);
      assert.match(await storedHash(dataDirOf(srv.dir), user!), /^\$argon2id\$/, `${user}'s hash upgraded to argon2id`);
      const again2 = await smtpSession({ port: srv.ports.submissions, mode: 'ssl', user, password: pw, send: false });
      assert.ok(again2.steps[0]!.ok, 'and logs in again with the upgraded hash');
    }
    const bad = await smtpSession({ port: srv.ports.submissions, mode: 'ssl', user: 'bob@example.org', password: 'not bob', send: false });
    assert.equal(bad.steps[0]!.code, 535);
  } finally {
    await srv.stop();
    srv.cleanup();
  }
});
