/** A throw-away test CA (openssl) and certificates from it, for TLS peers that must verify. */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** Makes a CA in `dir` and one certificate (subjectAltName DNS:name) per name; `ca` is the CA's PEM file. */
export function makePki(dir: string, names: string[]): { ca: string; certs: Record<string, { key: string; cert: string }> } {
  const o = (...a: string[]) => execFileSync('openssl', a, { cwd: dir, stdio: 'pipe' });
  o('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=Postern Test CA');
  const certs: Record<string, { key: string; cert: string }> = {};
  for (const name of names) {
    o('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
    writeFileSync(path.join(dir, `${name}.cnf`), `subjectAltName=DNS:${name}\n`);
    o('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', '-extfile', `${name}.cnf`);
    certs[name] = { key: readFileSync(path.join(dir, `${name}.key`), 'utf8'), cert: readFileSync(path.join(dir, `${name}.pem`), 'utf8') };
  }
  return { ca: path.join(dir, 'ca.pem'), certs };
}

/** makePki for one name: the CA file and that name's key and certificate. */
export function makeCa(dir: string, name: string): { ca: string; key: string; cert: string } {
  const p = makePki(dir, [name]);
  return { ca: p.ca, ...p.certs[name]! };
}
