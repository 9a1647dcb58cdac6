/**
 * A minimal Rspamd HTTP client (https://rspamd.com/doc/developers/protocol.html): POST the message with the
 * envelope in request headers, get JSON back. node:http rather than fetch because Rspamd wants one `Rcpt`
 * header line per recipient, and fetch joins repeated headers into one comma-separated line.
 */
import http from 'node:http';
import https from 'node:https';

export interface RspamdResponse {
  status: number;
  body: string;
}

/** Headers: a value array sends one header line per element. */
export type RspamdHeaders = Record<string, string | string[]>;

export function rspamdPost(base: string, path: string, headers: RspamdHeaders, body: Buffer, timeoutMs: number): Promise<RspamdResponse> {
  const url = new URL(path, base.endsWith('/') ? base : `${base}/`);
  const mod = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.request(
      url,
      { method: 'POST', headers: { ...headers, 'Content-Length': String(body.length), 'User-Agent': 'Postern' }, timeout: timeoutMs, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (d: Buffer) => {
          size += d.length;
          if (size > 4 * 1024 * 1024) req.destroy(new Error('rspamd: reply too large'));
          else chunks.push(d);
        });
        res.on('end', () => {
          clearTimeout(overall);
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') });
        });
        res.on('error', (err) => reject(err));
      },
    );
    // `timeout` above is an idle timeout; this bounds the whole exchange.
    const overall = setTimeout(() => req.destroy(new Error(`rspamd: no answer within ${timeoutMs} ms`)), timeoutMs);
    req.on('timeout', () => req.destroy(new Error(`rspamd: no answer within ${timeoutMs} ms`)));
    req.on('error', (err) => {
      clearTimeout(overall);
      reject(new Error(err.message.startsWith('rspamd') ? err.message : `rspamd: ${err.message}`));
    });
    req.end(body);
  });
}
