/** Generates docs/configuration.md from the schema (descriptions, types, defaults). Pure. */
import { z } from 'zod';
import { configSchema } from './schema.js';

interface Node {
  type?: string | string[];
  description?: string;
  default?: unknown;
  properties?: Record<string, Node>;
  anyOf?: Node[];
  items?: Node;
  enum?: unknown[];
}

function typeName(n: Node): string {
  if (n.enum) return n.enum.map((v) => JSON.stringify(v)).join(' \\| ');
  if (n.anyOf) return [...new Set(n.anyOf.map(typeName))].join(' or ');
  if (n.type === 'array') return `array of ${n.items ? typeName(n.items) : 'any'}`;
  if (n.type === 'integer') return 'integer';
  return ([] as string[]).concat(n.type ?? 'any').join(' or ');
}

function tomlValue(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(tomlValue).join(', ')}]`;
  return String(v);
}

export function configReference(): string {
  const root = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as Node;
  const out: string[] = [
    '# Configuration reference',
    '',
    '<!-- Generated from src/config/schema.ts by `npm run docs:config`. Do not edit by hand. -->',
    '',
    'Postern reads one TOML file: `--config FILE`, else `$POSTERN_CONFIG`, else `./postern.toml`; without a file the',
    'defaults below apply. Any key can be overridden by an environment variable `POSTERN_<SECTION>_<KEY>` in upper case,',
    'e.g. `POSTERN_SMTP_MAX_MESSAGE_SIZE=50M`, `POSTERN_LISTENERS_SMTP_ADDRESS=127.0.0.1:2525`; lists are comma-separated.',
    'Sizes are written `500K`, `25M`, `2G`; durations `500ms`, `30s`, `5m`, `4h`, `5d`. Unknown keys are an error.',
    '`kill -HUP` reloads the file (new limits and certificates apply to new connections; listeners are bound, moved or closed as `[listeners]` now says; open connections stay).',
    '',
  ];
  const section = (title: string, node: Node, prefix: string) => {
    const leaves = Object.entries(node.properties ?? {}).filter(([, c]) => !c.properties);
    const tables = Object.entries(node.properties ?? {}).filter(([, c]) => c.properties);
    if (leaves.length) {
      out.push(`## ${title}`, '');
      if (node.description && prefix) out.push(node.description, '');
      out.push('| key | type | default | meaning |', '|---|---|---|---|');
      for (const [k, c] of leaves) {
        const def = c.default === undefined ? '—' : `\`${tomlValue(c.default)}\``;
        out.push(`| \`${k}\` | ${typeName(c)} | ${def} | ${(c.description ?? '').replace(/\|/g, '\\|')} |`);
      }
      out.push('');
    } else if (node.description && prefix) {
      out.push(`## ${title}`, '', node.description, '');
    }
    for (const [k, c] of tables) section(`[${prefix ? `${prefix}.` : ''}${k}]`, c, `${prefix ? `${prefix}.` : ''}${k}`);
  };
  section('Top level', root, '');
  return out.join('\n');
}
