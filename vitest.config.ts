import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { defineConfig } from 'vitest/config';

type ExportsTarget = string | null | ExportsTarget[] | { [condition: string]: ExportsTarget };

/** The file Node's `import` loads for a package's "." export (conditions node, import, default). */
function importTarget(target: ExportsTarget | undefined): string | undefined {
  if (target === undefined || target === null) return undefined;
  if (typeof target === 'string') return target;
  if (Array.isArray(target)) return target.map(importTarget).find((file) => file !== undefined);
  for (const [condition, value] of Object.entries(target)) {
    if (condition !== 'node' && condition !== 'import' && condition !== 'default') continue;
    const file = importTarget(value);
    if (file !== undefined) return file;
  }
  return undefined;
}

/**
 * `.ci/run`'s SDK matrix: MODELMAXX_SDK_DIR names a scratch install (`npm i --prefix <dir> openai@X`)
 * whose `openai` / `@anthropic-ai/sdk` the tests import instead of the workspace's (the ESM entry,
 * as Node would load it; a plain directory alias would make Vite pick the CJS `main`). Unset (the
 * default run), nothing is aliased.
 */
function sdkAliases(): { find: RegExp; replacement: string }[] {
  const dir = process.env['MODELMAXX_SDK_DIR'];
  if (dir === undefined || dir === '') return [];
  const aliases = [];
  for (const name of ['openai', '@anthropic-ai/sdk']) {
    const packageDir = resolve(dir, 'node_modules', name);
    const manifest = join(packageDir, 'package.json');
    if (!existsSync(manifest)) continue;
    const json = JSON.parse(readFileSync(manifest, 'utf8')) as {
      exports?: Record<string, ExportsTarget>;
      module?: string;
      main?: string;
    };
    const entry = importTarget(json.exports?.['.']) ?? json.module ?? json.main ?? 'index.js';
    const escaped = name.replace(/[/\\^$*+?.()|[\]{}]/g, '\\$&');
    aliases.push({ find: new RegExp(`^${escaped}$`), replacement: resolve(packageDir, entry) });
  }
  return aliases;
}

export default defineConfig({
  resolve: { conditions: ['@modelmaxx/source'], alias: sdkAliases() },
  ssr: {
    resolve: { conditions: ['@modelmaxx/source'], externalConditions: ['@modelmaxx/source'] },
  },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'collector/test/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
