/**
 * TLS contexts for every listener and STARTTLS: TLS 1.2+ with AEAD ECDHE suites only, server cipher
 * preference, certificates chosen by SNI (names read from each certificate's subjectAltName), and files
 * re-read when they change on disk (ACME renewal by an external tool) without a restart.
 * With no certificate configured, a self-signed one for the host name is generated into data_dir/tls.
 */
import { EventEmitter } from 'node:events';
import { X509Certificate, webcrypto } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createSecureContext, type SecureContext, type SecureContextOptions } from 'node:tls';
import type { Logger } from '../log.js';

/** Mozilla "intermediate" TLS 1.2 suites minus DHE: forward secrecy and AEAD only. TLS 1.3 suites are all modern. */
export const TLS12_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

export interface TlsSettings {
  cert?: string;
  key?: string;
  certificates: { cert: string; key: string }[];
  minVersion: 'TLSv1.2' | 'TLSv1.3';
  reloadIntervalMs: number;
}

interface LoadedCert {
  files: { cert: string; key: string };
  mtimes: string;
  names: string[];
  context: SecureContext;
  options: SecureContextOptions;
}

export class TlsManager extends EventEmitter {
  private certs: LoadedCert[] = [];
  private timer: NodeJS.Timeout | null = null;
  readonly selfSigned: boolean;
  private readonly files: { cert: string; key: string }[];

  constructor(
    private settings: TlsSettings,
    private readonly opts: { hostname: string; dataDir: string; log: Logger },
  ) {
    super();
    this.selfSigned = !settings.cert || !settings.key;
    this.files = [];
  }

  /** Loads (or generates) all certificates; throws with a clear message when a file is unusable. */
  async init(): Promise<void> {
    if (this.settings.cert && !this.settings.key) throw new Error('[tls] cert is set but key is not');
    if (this.settings.key && !this.settings.cert) throw new Error('[tls] key is set but cert is not');
    const main = this.selfSigned ? await this.ensureSelfSigned() : { cert: this.settings.cert!, key: this.settings.key! };
    if (this.selfSigned) {
      this.opts.log.warn(
        { cert: main.cert },
        'NO TLS CERTIFICATE CONFIGURED: using a generated self-signed certificate. Clients will warn and remote MTAs may refuse it; set [tls] cert and key (e.g. from Let\'s Encrypt).',
      );
    }
    this.files.splice(0, this.files.length, main, ...this.settings.certificates);
    this.certs = this.files.map((f) => this.load(f));
  }

  private load(files: { cert: string; key: string }): LoadedCert {
    let certPem: string;
    let keyPem: string;
    try {
      certPem = readFileSync(files.cert, 'utf8');
      keyPem = readFileSync(files.key, 'utf8');
    } catch (err) {
      throw new Error(`cannot read TLS certificate or key: ${(err as Error).message}`);
    }
    const options: SecureContextOptions = {
      cert: certPem,
      key: keyPem,
      minVersion: this.settings.minVersion,
      ciphers: TLS12_CIPHERS,
      honorCipherOrder: true,
      sessionIdContext: 'postern',
    };
    let context: SecureContext;
    let names: string[];
    try {
      context = createSecureContext(options);
      names = certNames(certPem);
    } catch (err) {
      throw new Error(`invalid TLS certificate ${files.cert} / key ${files.key}: ${(err as Error).message}`);
    }
    return { files, mtimes: mtimes(files), names, context, options };
  }

  /** The default context (first certificate) or the one whose names match `servername`. */
  contextFor(servername?: string | null): SecureContext {
    return this.pick(servername).context;
  }

  /** Options for tls.TLSSocket / smtp-server: current default cert plus SNI. */
  defaultOptions(): SecureContextOptions {
    return this.certs[0]!.options;
  }

  private pick(servername?: string | null): LoadedCert {
    const name = (servername ?? '').toLowerCase().replace(/\.$/, '');
    if (name) {
      for (const c of this.certs) if (c.names.includes(name)) return c;
      const parent = name.slice(name.indexOf('.') + 1);
      for (const c of this.certs) if (c.names.includes(`*.${parent}`)) return c;
    }
    return this.certs[0]!;
  }

  sniCallback = (servername: string, cb: (err: Error | null, ctx?: SecureContext) => void): void => {
    cb(null, this.contextFor(servername));
  };

  /** Starts polling the certificate files for changes. */
  watch(): void {
    if (this.timer || this.settings.reloadIntervalMs <= 0) return;
    this.timer = setInterval(() => this.reloadIfChanged(), this.settings.reloadIntervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Re-reads changed certificate files; a broken new file keeps the old certificate in service. */
  reloadIfChanged(force = false): boolean {
    let changed = false;
    this.certs = this.certs.map((c) => {
      if (!force && mtimes(c.files) === c.mtimes) return c;
      try {
        const n = this.load(c.files);
        changed = true;
        this.opts.log.info({ cert: c.files.cert, names: n.names }, 'TLS certificate reloaded');
        return n;
      } catch (err) {
        this.opts.log.error({ cert: c.files.cert, err: (err as Error).message }, 'TLS certificate changed but cannot be loaded; keeping the previous one');
        return c;
      }
    });
    if (changed) this.emit('reload');
    return changed;
  }

  /** SIGHUP: new settings (possibly other files). Keeps the old contexts if the new ones fail. */
  async reconfigure(settings: TlsSettings): Promise<void> {
    const old = { settings: this.settings, certs: this.certs, files: [...this.files] };
    this.settings = settings;
    try {
      await this.init();
    } catch (err) {
      Object.assign(this, { settings: old.settings, certs: old.certs });
      this.files.splice(0, this.files.length, ...old.files);
      throw err;
    }
    this.emit('reload');
  }

  private async ensureSelfSigned(): Promise<{ cert: string; key: string }> {
    const dir = path.join(this.opts.dataDir, 'tls');
    const cert = path.join(dir, 'selfsigned-cert.pem');
    const key = path.join(dir, 'selfsigned-key.pem');
    if (existsSync(cert) && existsSync(key)) {
      try {
        const c = new X509Certificate(readFileSync(cert));
        const fresh = new Date(c.validTo).getTime() > Date.now() + 7 * 86_400_000;
        if (fresh && certNames(c.toString()).includes(this.opts.hostname)) return { cert, key };
      } catch {
        /* regenerate below */
      }
    }
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const pems = await generateSelfSigned(this.opts.hostname);
    writeFileSync(key, pems.key, { mode: 0o600 });
    writeFileSync(cert, pems.cert, { mode: 0o644 });
    this.opts.log.info({ cert, hostname: this.opts.hostname }, 'generated a self-signed TLS certificate');
    return { cert, key };
  }
}

function mtimes(files: { cert: string; key: string }): string {
  try {
    const a = statSync(files.cert);
    const b = statSync(files.key);
    return `${a.mtimeMs}:${a.size}:${b.mtimeMs}:${b.size}`;
  } catch {
    return 'missing';
  }
}

/** DNS names a certificate serves: subjectAltName DNS entries, else the CN. */
export function certNames(pem: string): string[] {
  const c = new X509Certificate(pem);
  const san = c.subjectAltName ?? '';
  const names = san
    .split(/,\s*/)
    .filter((s) => s.startsWith('DNS:'))
    .map((s) => s.slice(4).toLowerCase());
  if (names.length) return names;
  const cn = /CN=([^\n,]+)/.exec(c.subject);
  return cn ? [cn[1]!.toLowerCase()] : [];
}

/** A self-signed ECDSA P-256 certificate for `hostname`, valid 2 years. */
export async function generateSelfSigned(hostname: string): Promise<{ cert: string; key: string }> {
  // Loaded only when a certificate must be generated: @peculiar/x509 needs the reflect-metadata polyfill.
  await import('reflect-metadata');
  const x509 = await import('@peculiar/x509');
  x509.cryptoProvider.set(webcrypto as unknown as Crypto);
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as CryptoKeyPair;
  const now = Date.now();
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: Buffer.from(webcrypto.getRandomValues(new Uint8Array(16))).toString('hex').replace(/^[89a-f]/, '1'),
    name: `CN=${hostname}`,
    notBefore: new Date(now - 3_600_000),
    notAfter: new Date(now + 2 * 365 * 86_400_000),
    signingAlgorithm: alg,
    keys,
    extensions: [
      new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: hostname }]),
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
    ],
  });
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  const key = `-----BEGIN PRIVATE KEY-----\n${Buffer.from(pkcs8).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END PRIVATE KEY-----\n`;
  return { cert: certificate.toString('pem') + '\n', key };
}
