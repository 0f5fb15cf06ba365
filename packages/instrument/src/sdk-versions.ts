import { diag } from '@opentelemetry/api';

/**
 * The provider SDK versions the instrumentation is tested with (`.ci/run`'s SDK matrix runs the
 * instrument's SDK tests against the oldest and the newest of each range). `register` / `auto`
 * leave a copy outside its range unpatched, with one `diag` warning. The same ranges are the
 * optional `peerDependencies` of this package (a test keeps them equal).
 */
export interface SupportedSdkRange {
  readonly packageName: string;
  /** The oldest tested version. */
  readonly oldest: string;
  /** The first major not supported (yet). */
  readonly belowMajor: number;
}

export const SUPPORTED_SDK_RANGES: readonly SupportedSdkRange[] = [
  { packageName: 'openai', oldest: '6.0.0', belowMajor: 8 },
  { packageName: '@anthropic-ai/sdk', oldest: '0.117.1', belowMajor: 2 },
];

/** `>=6.0.0 <8`: the npm range form, as in `peerDependencies`. */
export function rangeText(range: SupportedSdkRange): string {
  return `>=${range.oldest} <${range.belowMajor}`;
}

export function supportedRangeOf(packageName: string): SupportedSdkRange | undefined {
  return SUPPORTED_SDK_RANGES.find((range) => range.packageName === packageName);
}

type Triple = readonly [number, number, number];

/** `major.minor.patch` of a semver string (a pre-release or build suffix is ignored); undefined if it is none. */
export function parseVersion(version: string): Triple | undefined {
  const match = /^v?(\d+)\.(\d+)\.(\d+)(?:[-+].*)?$/.exec(version.trim());
  if (match === null) return undefined;
  return [Number(match[1]), Number(match[2]), Number(match[3])];
}

function compare(a: Triple, b: Triple): number {
  return a[0] - b[0] || a[1] - b[1] || a[2] - b[2];
}

/** Whether `version` is inside `range` (an unparsable version is not). */
export function versionInRange(version: string, range: SupportedSdkRange): boolean {
  const parsed = parseVersion(version);
  const oldest = parseVersion(range.oldest);
  if (parsed === undefined || oldest === undefined) return false;
  return compare(parsed, oldest) >= 0 && parsed[0] < range.belowMajor;
}

/** Versions warned about already (shared by every copy of this package: one warning per version). */
const warned = ((globalThis as Record<symbol, unknown>)[
  Symbol.for('modelmaxx.instrument.unsupportedSdkWarned')
] ??= new Set<string>()) as Set<string>;

/**
 * Whether the zero-code set-up may patch this copy of `packageName` (its `package.json` version
 * given, undefined when unreadable). Outside the supported range it warns once per version, through
 * `diag`, naming the version and the range, and returns false. Packages without a declared range
 * (custom patch targets) and copies whose version cannot be read or parsed are patched as before.
 */
export function mayPatchVersion(packageName: string, version: string | undefined): boolean {
  const range = supportedRangeOf(packageName);
  if (range === undefined || version === undefined || parseVersion(version) === undefined) {
    return true;
  }
  if (versionInRange(version, range)) return true;
  const key = `${packageName}@${version}`;
  if (!warned.has(key)) {
    warned.add(key);
    diag.warn(
      `modelmaxx: ${packageName} ${version} is outside the supported range ${rangeText(range)}; ` +
        `its calls are not instrumented (upgrade ${packageName}, or see the supported versions in ` +
        'the @modelmaxx/instrument README)',
    );
  }
  return false;
}
