import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadSettings, ConfigError, findKeyLine } from '../../src/config/load.js';
import { configReference } from '../../src/config/docs.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'postern-config-'));
function file(name: string, text: string): string {
  const f = path.join(dir, name);
  writeFileSync(f, text);
  return f;
}

describe('configuration', () => {
  it('has the seed port table as defaults', () => {
    const s = loadSettings({ cwd: dir, env: {} });
    assert.equal(s.file, null);
    const ports = Object.fromEntries(Object.values(s.listeners).map((l) => [l.name, [l.enabled, ...l.addresses.map((a) => `${a.host}:${a.port}`)]]));
    assert.deepEqual(ports, {
      smtp: [true, '0.0.0.0:25', ':::25'],
      submissions: [true, '0.0.0.0:465', ':::465'],
      submission: [true, '0.0.0.0:587', ':::587'],
      imap: [true, '0.0.0.0:143', ':::143'],
      imaps: [true, '0.0.0.0:993', ':::993'],
      pop3: [false, '0.0.0.0:110', ':::110'],
      pop3s: [false, '0.0.0.0:995', ':::995'],
    });
    assert.equal(s.smtp.maxMessageSize, 25 * 1024 * 1024);
    assert.deepEqual(s.smtp.relayNetworks, []);
    assert.deepEqual(s.dns.servers, []);
    assert.equal(s.dataDir, path.join(dir, 'data'));
  });

  it('reads the documented keys', () => {
    const f = file(
      'full.toml',
      `hostname = "Mail.Example.org"
data_dir = "/var/lib/postern"
[tls]
cert = "certs/full.pem"
key = "certs/key.pem"
[listeners.smtp]
address = ["127.0.0.1:2525", "[::1]:2525"]
proxy_protocol = true
[listeners.pop3]
enabled = true
[proxy]
trusted_networks = ["10.0.0.0/8"]
[smtp]
max_message_size = "10M"
relay_networks = ["192.168.0.0/16", "fd00::/8"]
[dns]
servers = ["127.0.0.1:5353"]
[accounts]
recipient_delimiter = "+-"
`,
    );
    const s = loadSettings({ file: f, env: {} });
    assert.equal(s.hostname, 'mail.example.org');
    assert.equal(s.tls.cert, path.join(dir, 'certs/full.pem'));
    assert.deepEqual(s.listeners.smtp.addresses, [{ host: '127.0.0.1', port: 2525 }, { host: '::1', port: 2525 }]);
    assert.equal(s.listeners.smtp.proxyProtocol, true);
    assert.equal(s.listeners.pop3.enabled, true);
    assert.equal(s.smtp.maxMessageSize, 10 * 1024 * 1024);
    assert.deepEqual(s.smtp.relayNetworks, ['192.168.0.0/16', 'fd00::/8']);
    assert.deepEqual(s.dns.servers, ['127.0.0.1:5353']);
    assert.equal(s.accounts.recipientDelimiter, '+-');
  });

  it('lets POSTERN_<SECTION>_<KEY> environment variables override the file', () => {
    const f = file('env.toml', '[smtp]\nmax_message_size = "10M"\n');
    const s = loadSettings({
      file: f,
      env: { POSTERN_SMTP_MAX_MESSAGE_SIZE: '1M', POSTERN_HOSTNAME: 'env.example', POSTERN_LISTENERS_POP3_ENABLED: 'true', POSTERN_LISTENERS_SMTP_ADDRESS: '127.0.0.1:2626', POSTERN_SMTP_RELAY_NETWORKS: '10.0.0.0/8, 172.16.0.0/12', POSTERN_DNS_SERVERS: '127.0.0.1:53' },
    });
    assert.equal(s.smtp.maxMessageSize, 1024 * 1024);
    assert.equal(s.hostname, 'env.example');
    assert.equal(s.listeners.pop3.enabled, true);
    assert.deepEqual(s.listeners.smtp.addresses, [{ host: '127.0.0.1', port: 2626 }]);
    assert.deepEqual(s.smtp.relayNetworks, ['10.0.0.0/8', '172.16.0.0/12']);
    assert.deepEqual(s.dns.servers, ['127.0.0.1:53']);
  });

  it('reports errors with file, line, key and reason', () => {
    const cases: [string, RegExp][] = [
      ['hostname = "x"\n[smtp]\nmax_message_size = true\n', /:3: key "smtp\.max_message_size": /],
      ['[listeners.imap]\nenabled = "yes"\n', /:2: key "listeners\.imap\.enabled": Invalid input: expected boolean/],
      ['[listeners.smtp]\naddress = "nonsense"\n', /:2: key "listeners\.smtp\.address": /],
      ['[smtp]\n\nunknown_thing = 1\n', /:3: key "smtp": unknown key "unknown_thing"/],
      ['[tls]\nmin_version = "TLSv1.1"\n', /:2: key "tls\.min_version": /],
      ['[proxy]\ntrusted_networks = ["300.1.1.1/8"]\n', /:2: key "proxy\.trusted_networks": /],
      ['x = [1,\n', /:\d+:\d+: TOML syntax error: /],
    ];
    for (const [text, re] of cases) {
      const f = file('bad.toml', text);
      assert.throws(() => loadSettings({ file: f, env: {} }), (e: Error) => e instanceof ConfigError && re.test(e.message) && e.message.startsWith(f) && !e.message.includes('\n'), text);
    }
  });

  it('finds key lines in nested tables', () => {
    const text = 'a = 1\n[x]\nb = 2\n[x.y]\nc = 3\n';
    assert.equal(findKeyLine(text, ['x', 'b']), 3);
    assert.equal(findKeyLine(text, ['x', 'y', 'c']), 5);
    assert.equal(findKeyLine(text, ['a']), 1);
  });

  it('docs/configuration.md is generated from the schema and up to date', () => {
    const committed = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
    assert.equal(committed, configReference() + '\n', 'run `npm run docs:config`');
    for (const key of ['max_message_size', 'relay_networks', 'proxy_protocol', 'trusted_networks', 'recipient_delimiter', 'servers']) assert.match(committed, new RegExp(`\`${key}\``));
  });
});
