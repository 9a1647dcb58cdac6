/** Submits a message on 465 with AUTH (nodemailer's SMTP client), as a mail client would. */
import SMTPConnection from 'nodemailer/lib/smtp-connection';

const PW = 'correct horse battery';

export async function submit(
  port: number,
  opts: { from?: string; to: string[]; subject: string; body?: string; headers?: string; dsn?: SMTPConnection.DSNOptions; user?: string },
): Promise<string> {
  const conn = new SMTPConnection({ host: '127.0.0.1', port, secure: true, tls: { rejectUnauthorized: false }, logger: false });
  await new Promise<void>((resolve, reject) => {
    conn.once('error', reject);
    conn.connect(() => resolve());
  });
  const from = opts.from ?? 'alice@example.org';
  await new Promise<void>((resolve, reject) => conn.login({ user: opts.user ?? from, pass: PW }, (err) => (err ? reject(err) : resolve())));
  const msg = `From: Alice <${from}>\r\nTo: ${opts.to.join(', ')}\r\nSubject: ${opts.subject}\r\nDate: ${new Date().toUTCString()}\r\nMessage-ID: <${Math.random().toString(36).slice(2)}@example.org>\r\n${opts.headers ?? ''}\r\n${opts.body ?? 'Hello there.\r\n'}`;
  const info = await new Promise<SMTPConnection.SentMessageInfo>((resolve, reject) =>
    conn.send({ from, to: opts.to, ...(opts.dsn ? { dsn: opts.dsn } : {}) }, msg, (err, i) => (err ? reject(err) : resolve(i as SMTPConnection.SentMessageInfo))),
  );
  conn.quit();
  return info.response;
}

