/** Runs a Python snippet (real clients: smtplib, imaplib, poplib) with JSON arguments; returns its JSON output. */
import { spawn } from 'node:child_process';

export function python<T = unknown>(script: string, args: unknown = {}, timeoutMs = 60_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn('python3', ['-c', script], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code !== 0) return reject(new Error(`python exited ${code}: ${err}`));
      try {
        resolve(JSON.parse(out) as T);
      } catch {
        reject(new Error(`python printed no JSON: ${out} ${err}`));
      }
    });
    child.stdin.end(JSON.stringify(args));
  });
}

/**
 * smtplib helper: one SMTP session. mode: "plain" | "starttls" | "ssl". Returns each step's (code, message)
 * and, for send, the sendmail result or the SMTP error.
 */
export const SMTP_SESSION = String.raw`
import json, sys, smtplib, ssl
a = json.load(sys.stdin)
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
out = {"steps": []}
def step(name, fn):
    try:
        r = fn()
        out["steps"].append({"step": name, "ok": True, "result": r if isinstance(r, (list, dict, str, int)) or r is None else str(r)})
        return True
    except smtplib.SMTPResponseException as e:
        out["steps"].append({"step": name, "ok": False, "code": e.smtp_code, "message": e.smtp_error.decode("utf-8", "replace")})
    except smtplib.SMTPRecipientsRefused as e:
        out["steps"].append({"step": name, "ok": False, "refused": {k: [v[0], v[1].decode()] for k, v in e.recipients.items()}})
    except smtplib.SMTPSenderRefused as e:
        out["steps"].append({"step": name, "ok": False, "code": e.smtp_code, "message": e.smtp_error.decode()})
    except Exception as e:
        out["steps"].append({"step": name, "ok": False, "error": type(e).__name__ + ": " + str(e)})
    return False
if a["mode"] == "ssl":
    s = smtplib.SMTP_SSL("127.0.0.1", a["port"], context=ctx, timeout=20)
else:
    s = smtplib.SMTP("127.0.0.1", a["port"], timeout=20)
s.ehlo("client.example")
out["ehlo"] = s.ehlo_resp.decode()
if a["mode"] == "starttls":
    step("starttls", lambda: s.starttls(context=ctx)[0])
    s.ehlo("client.example")
    out["ehlo_tls"] = s.ehlo_resp.decode()
if a.get("user"):
    step("login", lambda: s.login(a["user"], a["password"])[0])
if a.get("send", True):
    msg = a.get("message") or ("From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\nMessage-ID: <%s@client.example>\r\n\r\nHello from smtplib.\r\n" % (a["from"], a["to"][0], a.get("subject", "test"), a.get("subject", "t").replace(" ", "-")))
    step("send", lambda: {k: [v[0], v[1].decode()] for k, v in s.sendmail(a["from"], a["to"], msg.encode() if isinstance(msg, str) else msg, mail_options=a.get("mail_options", [])).items()})
try:
    s.quit()
except Exception:
    pass
print(json.dumps(out))
`;

export interface SmtpStep {
  step: string;
  ok: boolean;
  result?: unknown;
  code?: number;
  message?: string;
  refused?: Record<string, [number, string]>;
  error?: string;
}

export interface SmtpSessionResult {
  ehlo: string;
  ehlo_tls?: string;
  steps: SmtpStep[];
}

export function smtpSession(args: {
  port: number;
  mode: 'plain' | 'starttls' | 'ssl';
  user?: string;
  password?: string;
  from?: string;
  to?: string[];
  subject?: string;
  message?: string;
  send?: boolean;
  mail_options?: string[];
}): Promise<SmtpSessionResult> {
  return python<SmtpSessionResult>(SMTP_SESSION, args);
}
