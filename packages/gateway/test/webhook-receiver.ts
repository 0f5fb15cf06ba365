/** A real webhook receiver on a free loopback port, for the alerts tests. */
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AlertPayload } from '../src/access/index.js';

/** A webhook receiver: records every POST; answers 500 to the first `failFirst` ones. */
export class Receiver {
  readonly received: { path: string; body: AlertPayload; headers: Record<string, unknown> }[] = [];
  failFirst = 0;
  private server: Server | undefined;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        this.received.push({
          path: request.url ?? '',
          body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as AlertPayload,
          headers: request.headers,
        });
        if (this.failFirst > 0) {
          this.failFirst -= 1;
          response.writeHead(500, { 'content-type': 'text/plain' }).end('receiver down');
          return;
        }
        response.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    const address = this.server.address();
    if (address === null || typeof address === 'string') throw new Error('no port');
    this.url = `http://127.0.0.1:${address.port}`;
  }

  of(rule: string): AlertPayload[] {
    return this.received.filter((entry) => entry.body.rule === rule).map((entry) => entry.body);
  }

  async close(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise((resolve) => this.server?.close(resolve));
  }
}
