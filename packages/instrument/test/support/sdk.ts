import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';

/**
 * `require()` of a provider SDK (its CJS copy) from the same place the tests' `import` resolves it:
 * the scratch install named by MODELMAXX_SDK_DIR in `.ci/run`'s SDK matrix when it has the package
 * (vitest.config.ts aliases the imports to it), the workspace's copy otherwise.
 */
export function requireSdk(name: 'openai' | '@anthropic-ai/sdk'): unknown {
  const dir = process.env['MODELMAXX_SDK_DIR'];
  if (dir !== undefined && dir !== '' && existsSync(join(dir, 'node_modules', name))) {
    return createRequire(join(resolve(dir), 'matrix.cjs'))(name);
  }
  return createRequire(import.meta.url)(name);
}
