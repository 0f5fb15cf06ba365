import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..');

interface Manifest {
  name: string;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
}

function manifests(): Map<string, { dir: string; manifest: Manifest }> {
  const dirs = [
    ...readdirSync(join(root, 'packages')).map((name) => join('packages', name)),
    'collector',
  ];
  const result = new Map<string, { dir: string; manifest: Manifest }>();
  for (const dir of dirs) {
    const file = join(root, dir, 'package.json');
    if (!existsSync(file)) continue;
    const manifest = JSON.parse(readFileSync(file, 'utf8')) as Manifest;
    result.set(manifest.name, { dir, manifest });
  }
  return result;
}

/** SPEC "Layout": which of our packages each package may depend on at run time. */
const allowed: Record<string, string[]> = {
  '@modelmaxx/semconv': [],
  '@modelmaxx/pricing': [],
  '@modelmaxx/llm-sim': [],
  '@modelmaxx/instrument': ['@modelmaxx/semconv', '@modelmaxx/pricing'],
  '@modelmaxx/router': ['@modelmaxx/semconv', '@modelmaxx/pricing'],
  '@modelmaxx/collector': ['@modelmaxx/semconv', '@modelmaxx/pricing'],
  '@modelmaxx/gateway': ['@modelmaxx/semconv', '@modelmaxx/pricing', '@modelmaxx/router'],
  '@modelmaxx/cli': [
    '@modelmaxx/semconv',
    '@modelmaxx/pricing',
    '@modelmaxx/instrument',
    '@modelmaxx/router',
    '@modelmaxx/llm-sim',
    '@modelmaxx/collector',
    '@modelmaxx/gateway',
  ],
};

describe('package dependency graph', () => {
  const packages = manifests();

  it('knows every workspace package', () => {
    expect([...packages.keys()].sort()).toEqual(Object.keys(allowed).sort());
  });

  for (const [name, { manifest }] of packages) {
    it(`${name} depends only on the packages SPEC allows`, () => {
      const runtime = Object.keys({
        ...manifest.dependencies,
        ...manifest.peerDependencies,
      }).filter((dependency) => dependency.startsWith('@modelmaxx/'));
      expect(runtime.filter((dependency) => !(allowed[name] ?? []).includes(dependency))).toEqual(
        [],
      );
    });
  }

  it('keeps @opentelemetry/api out of library dependencies (peer only)', () => {
    for (const name of ['@modelmaxx/instrument', '@modelmaxx/router']) {
      const manifest = packages.get(name)?.manifest;
      expect(manifest?.dependencies?.['@opentelemetry/api'], name).toBeUndefined();
      expect(manifest?.peerDependencies?.['@opentelemetry/api'], name).toBeDefined();
    }
  });

  it('never imports test/ or bench/ from a package', () => {
    const offenders: string[] = [];
    const walk = (dir: string): void => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) {
          if (entry.name !== 'node_modules' && entry.name !== 'dist') walk(path);
        } else if (entry.name.endsWith('.ts')) {
          const text = readFileSync(path, 'utf8');
          if (
            /from ['"](\.\.\/)+(test|bench)\//.test(text) ||
            /@modelmaxx\/(e2e|bench)['"]/.test(text)
          ) {
            offenders.push(path);
          }
        }
      }
    };
    for (const { dir } of packages.values()) {
      if (existsSync(join(root, dir, 'src'))) walk(join(root, dir, 'src'));
    }
    expect(offenders).toEqual([]);
  });
});
