/**
 * Part of the composition root (app.ts): builds the outbound side — DNS resolver, DKIM signer, SMTP client,
 * queue runner — from the settings. Kept apart so app.ts only holds the lifecycle calls.
 */
import path from 'node:path';
import type { Settings } from './config/load.js';
import type { Logger } from './log.js';
import type { Store } from './storage/types.js';
import type { Delivery } from './core/delivery.js';
import { NodeResolver, type Resolver } from './lib/dns/resolver.js';
import { DkimKeys, DkimSigner } from './core/dkim.js';
import { Outbound } from './core/outbound.js';
import { MtaSts } from './core/mta-sts.js';
import { QueueRunner, type QueueSettings } from './core/queue.js';

export function dkimKeys(dataDir: string): DkimKeys {
  return new DkimKeys(path.join(dataDir, 'dkim'));
}

export function dkimSigner(settings: Settings): DkimSigner {
  return new DkimSigner(dkimKeys(settings.dataDir));
}

export function queueSettings(s: Settings): QueueSettings {
  return {
    hostname: s.hostname,
    lifetimeMs: s.queue.lifetimeMs,
    delayWarningMs: s.queue.delayWarningMs,
    retryBaseMs: s.queue.retryBaseMs,
    retryMaxMs: s.queue.retryMaxMs,
    pollIntervalMs: s.queue.pollIntervalMs,
    maxConnections: s.delivery.maxConnections,
    maxConnectionsPerDomain: s.delivery.maxConnectionsPerDomain,
    maxMessagesPerConnection: s.delivery.maxMessagesPerConnection,
    relay: s.delivery.relay,
  };
}

export function createQueueRunner(s: Settings, deps: { store: Store; delivery: Delivery; log: Logger; resolver?: Resolver }): QueueRunner {
  const resolver = deps.resolver ?? new NodeResolver({ servers: s.dns.servers });
  const outbound = new Outbound(
    { resolver, random: Math.random, log: deps.log, ...(s.delivery.mtaSts ? { mtaSts: new MtaSts({ resolver, log: deps.log, ...(deps.store.stsPolicies ? { store: deps.store.stsPolicies } : {}) }) } : {}) },
    {
      hostname: s.hostname,
      port: s.delivery.port,
      ipv6: s.delivery.ipv6,
      sourceIpv4: s.delivery.sourceIpv4,
      sourceIpv6: s.delivery.sourceIpv6,
      connectTimeoutMs: s.delivery.connectTimeoutMs,
      commandTimeoutMs: s.delivery.commandTimeoutMs,
      maxMessagesPerConnection: s.delivery.maxMessagesPerConnection,
      relayCaFile: s.delivery.relayCaFile,
      dane: s.delivery.dane,
    },
  );
  return new QueueRunner({ repo: deps.store.queue, blobs: deps.store.blobs, outbound, delivery: deps.delivery, log: deps.log }, queueSettings(s));
}
