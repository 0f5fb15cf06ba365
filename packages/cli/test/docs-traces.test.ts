/**
 * The container recipes of docs/traces.md start what they need without port clashes: per
 * section, the host ports that each `docker run` takes (published with -p, or every port the
 * image listens on under --network host) are distinct and leave the collector its 4318. No
 * container runtime runs here, so the ports are read from the commands as printed, with the
 * images' documented default ports.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const guide = readFileSync(
  join(import.meta.dirname, '..', '..', '..', 'docs', 'traces.md'),
  'utf8',
);

const COLLECTOR_PORT = 4318;

/** Ports an image listens on by default (its documentation), i.e. what it takes on the host network. */
const IMAGE_PORTS: Record<string, (env: Record<string, string>) => number[]> = {
  // Jaeger v2 all-in-one: OTLP gRPC and HTTP, UI, sampling, Zipkin, health check.
  'jaegertracing/jaeger': () => [4317, 4318, 16686, 5778, 9411, 13133],
  'grafana/grafana': (env) => [Number(env['GF_SERVER_HTTP_PORT'] ?? 3000)],
  'clickhouse/clickhouse-server': () => [8123, 9000, 9009],
  // nginx: the `listen` ports of the guide's proxy configuration.
  nginx: () => [...guide.matchAll(/^\s*listen (\d+);/gm)].map((match) => Number(match[1])),
};

interface Container {
  section: string;
  name: string;
  ports: number[];
}

/** `docker run` commands of the ```sh blocks, continuation lines joined, by `##` section. */
function containers(): Container[] {
  const found: Container[] = [];
  let section = '';
  for (const match of guide.matchAll(/^## (.+)$|^```sh\n([\s\S]*?)^```$/gm)) {
    if (match[1] !== undefined) {
      section = match[1];
      continue;
    }
    const script = (match[2] ?? '').replace(/\\\n\s*/g, ' ');
    for (const line of script.split('\n')) {
      const command = line.trim();
      if (!command.startsWith('docker run ')) continue;
      const words = command.split(/\s+/);
      const env: Record<string, string> = {};
      const published: number[] = [];
      let hostNetwork = false;
      let name = '';
      let image = '';
      for (let index = 2; index < words.length; index += 1) {
        const word = words[index]!;
        const next = words[index + 1] ?? '';
        if (word === '--network') {
          hostNetwork = next === 'host';
          index += 1;
        } else if (word === '--name') {
          name = next;
          index += 1;
        } else if (word === '-p') {
          // [ip:]host:container
          const parts = next.split(':');
          published.push(Number(parts[parts.length - 2]));
          index += 1;
        } else if (word === '-e') {
          const [key, value] = next.split('=');
          env[key ?? ''] = value ?? '';
          index += 1;
        } else if (word === '-v') {
          index += 1;
        } else if (word.startsWith('-')) {
          continue;
        } else {
          image = word.replace(/:[^/]*$/, '');
          break;
        }
      }
      const defaults = IMAGE_PORTS[image];
      expect(defaults, `ports of ${image} are known to this test`).toBeDefined();
      found.push({ section, name, ports: hostNetwork ? defaults!(env) : published });
    }
  }
  return found;
}

describe('docs/traces.md container recipes', () => {
  const all = containers();

  it('has the Grafana and Jaeger recipes', () => {
    expect(all.map((container) => container.name)).toEqual(
      expect.arrayContaining(['grafana', 'clickhouse', 'jaeger', 'jaeger-proxy']),
    );
  });

  const sections = [...new Set(all.map((container) => container.section))];
  it.each(sections)(
    '"%s": every host port is taken once, and 4318 stays the collector’s',
    (section) => {
      const taken = new Map<number, string>([[COLLECTOR_PORT, 'the collector']]);
      for (const container of all.filter((candidate) => candidate.section === section)) {
        for (const port of container.ports) {
          expect(taken.get(port), `${container.name} takes port ${port}`).toBeUndefined();
          taken.set(port, container.name);
        }
      }
    },
  );
});
