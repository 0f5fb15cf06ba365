import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { diag } from '@opentelemetry/api';
import { mayPatchVersion } from './sdk-versions.js';

/** Patches one loaded copy of a provider SDK (an ESM namespace or CJS exports); true when it patched. */
export type ModulePatcher = (moduleExports: unknown) => boolean;

export interface PatchTarget {
  /** The package name an app imports (`openai`, `@anthropic-ai/sdk`). */
  readonly packageName: string;
  readonly patch: ModulePatcher;
}

export interface PatchOutcome {
  readonly packageName: string;
  /** Absolute file of the copy: the CJS `require` entry or the ESM `import` entry. */
  readonly file: string;
  readonly format: 'commonjs' | 'module';
  readonly patched: boolean;
  /** Set when the copy was left alone because this version is outside the supported range. */
  readonly unsupportedVersion?: string;
}

export interface PatchResult {
  /** Copies patched (or found already patched) synchronously. */
  readonly outcomes: PatchOutcome[];
  /** Copies that could only be loaded with `import()` (an ESM graph with top-level await); settles, never rejects. */
  readonly pending: Promise<PatchOutcome[]>;
}

type ExportsTarget =
  string | null | readonly ExportsTarget[] | { readonly [key: string]: ExportsTarget };

/** The conditions Node's ESM resolver uses for `import` in Node, in its own matching order (object key order). */
const IMPORT_CONDITIONS = new Set(['node', 'import', 'module-sync', 'node-addons', 'default']);

function pickImportTarget(target: ExportsTarget | undefined): string | undefined {
  if (target === undefined || target === null) return undefined;
  if (typeof target === 'string') return target;
  if (Array.isArray(target)) {
    for (const entry of target as readonly ExportsTarget[]) {
      const picked = pickImportTarget(entry);
      if (picked !== undefined) return picked;
    }
    return undefined;
  }
  for (const [condition, value] of Object.entries(target)) {
    if (!IMPORT_CONDITIONS.has(condition)) continue;
    const picked = pickImportTarget(value);
    if (picked !== undefined) return picked;
  }
  return undefined;
}

interface PackageJson {
  name?: string;
  version?: string;
  exports?: ExportsTarget | { readonly '.': ExportsTarget };
  module?: string;
}

/** Finds the package root of `packageName` above a resolved file of it. */
function findPackageRoot(
  file: string,
  packageName: string,
): { root: string; json: PackageJson } | undefined {
  let directory = dirname(file);
  for (;;) {
    try {
      const json = JSON.parse(readFileSync(join(directory, 'package.json'), 'utf8')) as PackageJson;
      if (json.name === packageName) return { root: directory, json };
    } catch {
      // no package.json here (or not ours): keep walking up
    }
    const parent = dirname(directory);
    if (parent === directory) return undefined;
    directory = parent;
  }
}

/**
 * The file that `import(packageName)` loads, given the file `require(packageName)` loads.
 * Dual packages such as openai and @anthropic-ai/sdk ship separate ESM and CJS builds, each with
 * its own classes, so an app on either side is only instrumented when both copies are patched.
 */
export function resolveImportEntry(packageName: string, requireEntry: string): string | undefined {
  const found = findPackageRoot(requireEntry, packageName);
  if (found === undefined) return undefined;
  const { exports } = found.json;
  let target: ExportsTarget | undefined;
  if (
    exports !== undefined &&
    exports !== null &&
    typeof exports === 'object' &&
    !Array.isArray(exports) &&
    '.' in exports
  ) {
    target = (exports as { readonly '.': ExportsTarget })['.'];
  } else if (
    exports !== undefined &&
    exports !== null &&
    typeof exports === 'object' &&
    !Array.isArray(exports) &&
    Object.keys(exports).some((key) => key.startsWith('.'))
  ) {
    return undefined; // subpath map without '.': not importable by bare name
  } else {
    target = exports as ExportsTarget | undefined;
  }
  const picked = pickImportTarget(target);
  if (picked === undefined) return requireEntry; // no exports map: import() loads the same CJS file
  return resolve(found.root, picked);
}

/**
 * Whether the copy of `target` that `requireEntry` belongs to may be patched: its `package.json`
 * version inside the supported range (one `diag` warning per version outside it). When not, the
 * outcome saying so is returned instead of `undefined`.
 */
function unsupportedCopy(target: PatchTarget, requireEntry: string): PatchOutcome | undefined {
  const version = findPackageRoot(requireEntry, target.packageName)?.json.version;
  if (mayPatchVersion(target.packageName, version)) return undefined;
  return {
    packageName: target.packageName,
    file: requireEntry,
    format: 'commonjs',
    patched: false,
    unsupportedVersion: version ?? '',
  };
}

/** Each target's CJS entry as the app resolves it from each directory (none for an SDK it lacks). */
function* installedCopies(
  targets: readonly PatchTarget[],
  fromDirectories: readonly string[],
): Generator<{ target: PatchTarget; requireFromApp: NodeJS.Require; requireEntry: string }> {
  for (const target of targets) {
    for (const directory of fromDirectories) {
      const requireFromApp = createRequire(join(directory, '__modelmaxx_resolve__.js'));
      let requireEntry: string;
      try {
        requireEntry = requireFromApp.resolve(target.packageName);
      } catch {
        continue; // the app does not have this SDK (from here)
      }
      yield { target, requireFromApp, requireEntry };
    }
  }
}

function isRequireAsyncModule(error: unknown): boolean {
  return (
    typeof error === 'object' &&
    error !== null &&
    (error as { code?: unknown }).code === 'ERR_REQUIRE_ASYNC_MODULE'
  );
}

function applyPatch(
  target: PatchTarget,
  file: string,
  format: PatchOutcome['format'],
  moduleExports: unknown,
): PatchOutcome {
  let patched = false;
  try {
    patched = target.patch(moduleExports);
  } catch (error) {
    diag.error(`modelmaxx: could not patch ${target.packageName} (${file})`, error);
  }
  return { packageName: target.packageName, file, format, patched };
}

/**
 * Resolves each target from the given directories (the app's working directory and its main
 * script's directory), loads both its CJS and its ESM copy and patches them. Packages the app
 * does not have are skipped; nothing here throws.
 *
 * ESM copies are loaded with `require()` (Node >= 22.12 loads ES modules synchronously and
 * shares them with `import`), so CJS entry points need no top-level await; a copy whose graph
 * has top-level await falls back to `import()` and lands in `pending`.
 */
export function patchInstalledModules(
  targets: readonly PatchTarget[],
  fromDirectories: readonly string[],
): PatchResult {
  const outcomes: PatchOutcome[] = [];
  const later: Promise<PatchOutcome | undefined>[] = [];
  const seen = new Set<string>();
  for (const { target, requireFromApp, requireEntry } of installedCopies(
    targets,
    fromDirectories,
  )) {
    // Both copies of one package resolve through its CJS entry: seen once, checked once.
    if (seen.has(requireEntry)) continue;
    const unsupported = unsupportedCopy(target, requireEntry);
    if (unsupported !== undefined) {
      seen.add(requireEntry);
      outcomes.push(unsupported);
      continue; // neither copy is loaded or patched
    }
    seen.add(requireEntry);
    try {
      outcomes.push(applyPatch(target, requireEntry, 'commonjs', requireFromApp(requireEntry)));
    } catch (error) {
      diag.warn(`modelmaxx: could not load ${requireEntry}`, error);
    }
    const importEntry = resolveImportEntry(target.packageName, requireEntry);
    if (importEntry === undefined || seen.has(importEntry)) continue;
    seen.add(importEntry);
    try {
      outcomes.push(applyPatch(target, importEntry, 'module', requireFromApp(importEntry)));
    } catch (error) {
      if (!isRequireAsyncModule(error)) {
        diag.warn(`modelmaxx: could not load ${importEntry}`, error);
        continue;
      }
      later.push(
        import(pathToFileURL(importEntry).href).then(
          (namespace: unknown) => applyPatch(target, importEntry, 'module', namespace),
          (importError: unknown) => {
            diag.warn(`modelmaxx: could not import ${importEntry}`, importError);
            return undefined;
          },
        ),
      );
    }
  }
  const pending = Promise.all(later).then((settled) =>
    settled.filter((outcome): outcome is PatchOutcome => outcome !== undefined),
  );
  return { outcomes, pending };
}

/** The global callback the appended line of a provider SDK's entry file calls once it has run. */
const ON_LOAD_KEY = Symbol.for('modelmaxx.instrument.onLoad');
type OnLoad = (url: string, moduleExports: unknown) => void;
type GlobalWithOnLoad = typeof globalThis & { [ON_LOAD_KEY]?: OnLoad };

interface LoadHookResult {
  format?: string | null | undefined;
  source?: string | ArrayBuffer | ArrayBufferView | null | undefined;
  shortCircuit?: boolean | undefined;
}
type RegisterHooks = (hooks: {
  load: (
    url: string,
    context: object,
    nextLoad: (url: string, context?: object) => LoadHookResult,
  ) => LoadHookResult;
}) => unknown;

function sourceText(source: LoadHookResult['source']): string | undefined {
  if (source === null || source === undefined) return undefined;
  if (typeof source === 'string') return source;
  if (source instanceof ArrayBuffer) return Buffer.from(source).toString('utf8');
  return Buffer.from(source.buffer, source.byteOffset, source.byteLength).toString('utf8');
}

/**
 * Patches each copy of the targets when the app loads it, instead of loading every copy at
 * start-up: a synchronous `module.registerHooks` load hook appends one line to the SDK's entry
 * file that hands its exports to us once it has run (`module.exports` for the CJS build, a
 * namespace import of itself for the ESM build). Copies the app never loads cost nothing.
 *
 * Only for `register` (the hook must be in place before the app's module graph loads) and only
 * on Node >= 24, where `registerHooks` runs without an experimental warning; returns false when it
 * did not register a hook, and the caller then patches eagerly. CJS copies already in the
 * require cache are patched right away.
 */
export function patchOnLoad(
  targets: readonly PatchTarget[],
  fromDirectories: readonly string[],
  registerHooks: RegisterHooks | undefined,
): { registered: boolean; outcomes: PatchOutcome[] } {
  const outcomes: PatchOutcome[] = [];
  if (registerHooks === undefined) return { registered: false, outcomes };
  const byUrl = new Map<
    string,
    { target: PatchTarget; file: string; format: PatchOutcome['format'] }
  >();
  for (const { target, requireFromApp, requireEntry } of installedCopies(
    targets,
    fromDirectories,
  )) {
    const unsupported = unsupportedCopy(target, requireEntry);
    if (unsupported !== undefined) {
      if (!outcomes.some((outcome) => outcome.file === requireEntry)) outcomes.push(unsupported);
      continue; // no load hook for it: the app loads it untouched
    }
    byUrl.set(pathToFileURL(requireEntry).href, {
      target,
      file: requireEntry,
      format: 'commonjs',
    });
    const importEntry = resolveImportEntry(target.packageName, requireEntry);
    if (importEntry !== undefined && importEntry !== requireEntry) {
      byUrl.set(pathToFileURL(importEntry).href, { target, file: importEntry, format: 'module' });
    }
    const cached = requireFromApp.cache[requireEntry];
    if (cached?.loaded === true) {
      outcomes.push(applyPatch(target, requireEntry, 'commonjs', cached.exports));
    }
  }
  if (byUrl.size === 0) return { registered: true, outcomes };
  (globalThis as GlobalWithOnLoad)[ON_LOAD_KEY] = (url, moduleExports) => {
    const entry = byUrl.get(url);
    if (entry !== undefined) {
      outcomes.push(applyPatch(entry.target, entry.file, entry.format, moduleExports));
    }
  };
  try {
    registerHooks({
      load(url, context, nextLoad) {
        const result = nextLoad(url, context);
        if (!byUrl.has(url)) return result;
        try {
          const source = sourceText(result.source);
          if (source === undefined) {
            diag.warn(`modelmaxx: no source for ${url}; it is not instrumented`);
            return result;
          }
          const key = 'Symbol.for("modelmaxx.instrument.onLoad")';
          const appended =
            result.format === 'module'
              ? `\nimport * as __modelmaxxSelf from ${JSON.stringify(url)};\nglobalThis[${key}]?.(${JSON.stringify(url)}, __modelmaxxSelf);\n`
              : `\n;globalThis[${key}]?.(${JSON.stringify(url)}, module.exports);\n`;
          return { ...result, source: source + appended };
        } catch (error) {
          diag.error(`modelmaxx: could not prepare ${url} for instrumentation`, error);
          return result;
        }
      },
    });
  } catch (error) {
    diag.warn('modelmaxx: module hooks unavailable; patching at start-up instead', error);
    return { registered: false, outcomes };
  }
  return { registered: true, outcomes };
}
