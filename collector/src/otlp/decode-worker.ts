/**
 * A decode thread of `DecodePool`: takes a `DecodeJob`, answers a `DecodeReply`
 * with the Native block transferred (not copied), or the error's kind and
 * message for the receiver to map onto HTTP (400, 413, …).
 */
// The namespace, not a named import: `registerHooks` is missing before Node 22.15, and
// the built worker (dist) never needs it.
import * as nodeModule from 'node:module';
import { parentPort } from 'node:worker_threads';
import type { DecodeJob, DecodeReply } from './decode-request.js';

if (import.meta.url.endsWith('.ts')) {
  // Run from the TypeScript sources (the tests): `./x.js` imports resolve to `./x.ts`,
  // whose types Node strips itself.
  nodeModule.registerHooks({
    resolve(specifier, context, nextResolve) {
      try {
        return nextResolve(specifier, context);
      } catch (error) {
        if (specifier.startsWith('.') && specifier.endsWith('.js')) {
          return nextResolve(specifier.slice(0, -3) + '.ts', context);
        }
        throw error;
      }
    },
  });
}

// Imported after the hook is in place.
const { decodeFailureOf, decodeRequest, loadJsonDecoder, ownedBytes } =
  await import('./decode-request.js');

const port = parentPort!;
port.on('message', async (job: DecodeJob) => {
  let reply: DecodeReply;
  try {
    if (job.encoding === 'json') await loadJsonDecoder();
    const { block, ...counts } = decodeRequest(job.encoding, job.body, job.limits);
    const bytes = ownedBytes(block);
    reply = { id: job.id, result: { ...counts, block: bytes } };
    port.postMessage(reply, [bytes.buffer as ArrayBuffer]);
    return;
  } catch (error) {
    reply = { id: job.id, error: decodeFailureOf(error) };
  }
  port.postMessage(reply);
});
port.postMessage({ ready: true });
