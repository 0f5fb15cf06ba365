#!/usr/bin/env node
/* global process, console */
// `pnpm release:pack`: builds the workspace and writes one npm tarball per public package into
// dist-packages/ (or the directory given with --out), then checks every tarball the way an outside
// `npm install` would see it: one shared version, no `workspace:` ranges, no build info or tests,
// every `exports` / `bin` target present, a README. Exits non-zero (naming the problem) otherwise.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** The published packages, dependencies first. llm-sim ships because the CLI's `demo` runs it. */
export const PUBLIC_PACKAGES = [
  'packages/semconv',
  'packages/pricing',
  'packages/instrument',
  'packages/llm-sim',
  'packages/router',
  'packages/gateway',
  'collector',
  'packages/cli',
];

function parseArgs(argv) {
  const args = { out: join(ROOT, 'dist-packages'), build: true };
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    if (arg === '--out') args.out = resolve(argv[++i] ?? '');
    else if (arg === '--no-build') args.build = false;
    else if (arg === '--help' || arg === '-h') {
      console.log(
        'usage: pnpm release:pack [--out <dir>] [--no-build]\n' +
          '  --out <dir>   where the tarballs go (default: dist-packages/)\n' +
          '  --no-build    skip `tsc -b` (the dist/ folders are already built)',
      );
      process.exit(0);
    } else {
      console.error(`release-pack: unknown argument ${arg} (see --help)`);
      process.exit(2);
    }
  }
  return args;
}

function readJson(file) {
  return JSON.parse(readFileSync(file, 'utf8'));
}

/** Every file name in a tarball (npm tarballs put everything under `package/`). */
function tarEntries(tarball) {
  return execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8', maxBuffer: 64 << 20 })
    .split('\n')
    .filter((line) => line !== '' && !line.endsWith('/'))
    .map((line) => line.replace(/^package\//, ''));
}

function tarFile(tarball, name) {
  return execFileSync('tar', ['-xzOf', tarball, `package/${name}`], {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
}

/** Every file an `exports` map points at. */
function exportTargets(value, found = []) {
  if (typeof value === 'string') found.push(value);
  else if (Array.isArray(value)) for (const item of value) exportTargets(item, found);
  else if (value !== null && typeof value === 'object') {
    for (const item of Object.values(value)) exportTargets(item, found);
  }
  return found;
}

/** `exports` without the workspace-only `@modelmaxx/source` condition: what publishConfig must say. */
function withoutSourceCondition(value) {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
  const out = {};
  for (const [key, item] of Object.entries(value)) {
    if (key !== '@modelmaxx/source') out[key] = withoutSourceCondition(item);
  }
  return out;
}

const DEPENDENCY_FIELDS = ['dependencies', 'optionalDependencies', 'peerDependencies'];

/** Problems of one packed tarball, as sentences; empty when it is fine. */
export function checkTarball(tarball, expected) {
  const problems = [];
  const entries = tarEntries(tarball);
  const has = new Set(entries);
  const manifest = JSON.parse(tarFile(tarball, 'package.json'));
  if (manifest.name !== expected.name) problems.push(`name is ${manifest.name}`);
  if (manifest.version !== expected.version) {
    problems.push(`version ${manifest.version}, not the shared ${expected.version}`);
  }
  for (const field of DEPENDENCY_FIELDS) {
    for (const [dep, range] of Object.entries(manifest[field] ?? {})) {
      if (String(range).startsWith('workspace:')) problems.push(`${field}.${dep} is ${range}`);
      if (dep.startsWith('@modelmaxx/') && range !== expected.version) {
        problems.push(`${field}.${dep} is ${range}, not ${expected.version}`);
      }
    }
  }
  const manifestText = JSON.stringify(manifest);
  if (manifestText.includes('@modelmaxx/source')) {
    problems.push('package.json still has the workspace-only @modelmaxx/source condition');
  }
  for (const target of exportTargets(manifest.exports)) {
    if (!has.has(target.replace(/^\.\//, ''))) problems.push(`exports target ${target} missing`);
  }
  for (const field of ['main', 'types']) {
    if (manifest[field] !== undefined && !has.has(manifest[field].replace(/^\.\//, ''))) {
      problems.push(`${field} ${manifest[field]} missing`);
    }
  }
  for (const target of Object.values(manifest.bin ?? {})) {
    if (!has.has(target.replace(/^\.\//, ''))) problems.push(`bin ${target} missing`);
  }
  if (!has.has('README.md')) problems.push('no README.md');
  if (manifest.engines?.node === undefined) problems.push('no engines.node');
  for (const entry of entries) {
    if (entry.endsWith('.tsbuildinfo')) problems.push(`ships build info ${entry}`);
    if (/(^|\/)test\//.test(entry) || /\.test\.[cm]?[jt]s$/.test(entry)) {
      problems.push(`ships test file ${entry}`);
    }
  }
  // Source maps point at ../src/*.ts: those sources must be in the tarball too.
  for (const entry of entries.filter((name) => name.endsWith('.map'))) {
    const map = JSON.parse(tarFile(tarball, entry));
    for (const source of map.sources ?? []) {
      const file = join(dirname(entry), source);
      if (!has.has(file)) problems.push(`${entry} points at ${file}, not shipped`);
    }
  }
  return { problems, manifest, entries };
}

function main() {
  const args = parseArgs(process.argv.slice(2));
  const manifests = PUBLIC_PACKAGES.map((dir) => ({
    dir,
    json: readJson(join(ROOT, dir, 'package.json')),
  }));
  const versions = new Set(manifests.map(({ json }) => json.version));
  if (versions.size !== 1) {
    const list = manifests.map(({ json }) => `${json.name}@${json.version}`).join(', ');
    console.error(`release-pack: the public packages must share one version; found ${list}`);
    process.exit(1);
  }
  const [version] = versions;
  const failures = [];
  for (const { dir, json } of manifests) {
    const expected = withoutSourceCondition(json.exports);
    if (JSON.stringify(json.publishConfig?.exports) !== JSON.stringify(expected)) {
      failures.push(
        `${dir}/package.json: publishConfig.exports must be exports without "@modelmaxx/source"`,
      );
    }
    if (json.private === true) failures.push(`${dir}/package.json is private`);
  }
  if (failures.length > 0) {
    for (const failure of failures) console.error(`release-pack: ${failure}`);
    process.exit(1);
  }

  if (args.build) {
    // Only the published projects (not the test projects): what goes into the tarballs.
    console.log(`release-pack: building (tsc -b ${PUBLIC_PACKAGES.join(' ')})`);
    try {
      execFileSync('pnpm', ['-s', 'tsc', '-b', ...PUBLIC_PACKAGES], {
        cwd: ROOT,
        stdio: 'inherit',
      });
    } catch {
      console.error('release-pack: the build failed (errors above); no tarballs written');
      process.exit(1);
    }
  }
  rmSync(args.out, { recursive: true, force: true });
  mkdirSync(args.out, { recursive: true });

  for (const { dir, json } of manifests) {
    try {
      execFileSync('pnpm', ['pack', '--pack-destination', args.out], {
        cwd: join(ROOT, dir),
        stdio: ['ignore', 'ignore', 'inherit'],
      });
    } catch {
      console.error(`release-pack: pnpm pack failed in ${dir} (errors above)`);
      process.exit(1);
    }
    const fileName = `${json.name.replace(/^@/, '').replace('/', '-')}-${version}.tgz`;
    const tarball = join(args.out, fileName);
    const { problems, entries } = checkTarball(tarball, { name: json.name, version });
    if (problems.length > 0) {
      for (const problem of problems) failures.push(`${json.name}: ${problem}`);
    }
    console.log(`release-pack: ${relative(process.cwd(), tarball)} (${entries.length} files)`);
  }
  const written = readdirSync(args.out).filter((name) => name.endsWith('.tgz'));
  if (written.length !== manifests.length) {
    failures.push(`expected ${manifests.length} tarballs in ${args.out}, found ${written.length}`);
  }
  if (failures.length > 0) {
    for (const failure of failures) console.error(`release-pack: ${failure}`);
    process.exit(1);
  }
  console.log(`release-pack: ${manifests.length} packages at version ${version} in ${args.out}`);
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main();
}
