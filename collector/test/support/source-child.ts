/**
 * Node arguments that let a plain `node` child process run the collector's TypeScript sources
 * (`../writer-child-hooks.mjs`: `.js` imports resolve to `.ts`, workspace packages to their
 * sources): `spawn(process.execPath, [...SOURCE_HOOKS_ARGS, script, ...args])`.
 */
export const SOURCE_HOOKS_ARGS: readonly string[] = [
  '--import',
  `data:text/javascript,import { register } from 'node:module'; register(${JSON.stringify(
    new URL('../writer-child-hooks.mjs', import.meta.url).href,
  )});`,
];
