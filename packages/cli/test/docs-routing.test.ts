/**
 * docs/routing.md runs as printed: its policies pass the router's schema, its wiring code runs
 * (real openai and @anthropic-ai/sdk clients against llm-sim, stats from a real collector), and
 * its replay command runs on the RouterBench data in ../shared/data (skipped, visibly, where that
 * folder is absent).
 */
import { execFile } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCollector } from '@modelmaxx/collector';
import type { RunningCollector } from '@modelmaxx/collector';
import { startLlmSim } from '@modelmaxx/llm-sim';
import type { LlmSim } from '@modelmaxx/llm-sim';
import { parsePolicy } from '@modelmaxx/router';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const guide = readFileSync(join(ROOT, 'docs', 'routing.md'), 'utf8');
const SHARED = join(ROOT, '..', 'shared');
const HAS_DATA = existsSync(join(SHARED, 'data', 'routerbench', 'mbpp_train.csv'));
const ROUTER_BIN = join(ROOT, 'packages', 'router', 'bin', 'modelmaxx-router.js');
// Where the wiring's imports (openai, @anthropic-ai/sdk, @modelmaxx/*) resolve from.
const APP_MODULES = join(ROOT, 'test', 'node_modules');

/** The fenced blocks of one language, with the `##` section they are in. */
function blocks(language: string): { section: string; code: string }[] {
  const found: { section: string; code: string }[] = [];
  let section = '';
  const pattern = new RegExp(`^(#{2,3}) (.+)$|^\`\`\`${language}\\n([\\s\\S]*?)^\`\`\`$`, 'gm');
  for (const match of guide.matchAll(pattern)) {
    if (match[2] !== undefined) section = match[2];
    else if (match[3] !== undefined) found.push({ section, code: match[3] });
  }
  return found;
}

const policyJson = blocks('json').find((block) => block.section === 'A policy')?.code;
const replayJson = blocks('json').find(
  (block) => block.section === 'Before going live: replay',
)?.code;
const wiring = blocks('ts').find((block) => block.section === 'Wiring it up')?.code;
const replayCommand = blocks('sh').find(
  (block) => block.section === 'Before going live: replay',
)?.code;

function run(
  command: string,
  args: string[],
  options: { cwd: string; env?: Record<string, string> },
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      command,
      args,
      { cwd: options.cwd, env: { ...process.env, ...options.env }, timeout: 120_000 },
      (error, stdout, stderr) => {
        resolve({ code: error === null ? 0 : Number(error.code), stdout, stderr });
      },
    );
  });
}

describe('docs/routing.md', () => {
  let workDir: string;

  beforeAll(() => {
    workDir = mkdtempSync(join(tmpdir(), 'mm-docs-routing-'));
  });
  afterAll(() => {
    rmSync(workDir, { recursive: true, force: true });
  });

  it('has the policy, the wiring, the replay policy and the replay command', () => {
    expect(policyJson).toBeDefined();
    expect(wiring).toBeDefined();
    expect(replayJson).toBeDefined();
    expect(replayCommand).toBeDefined();
  });

  it("the guide's policies pass the router's schema", () => {
    const policy = parsePolicy(JSON.parse(policyJson!));
    expect(policy.name).toBe('support');
    expect(policy.candidates.map((candidate) => candidate.provider)).toContain('anthropic');
    expect(parsePolicy(JSON.parse(replayJson!)).name).toBe('support-replay');
  });

  describe('the wiring runs as printed', () => {
    let sim: LlmSim;
    let collector: RunningCollector;
    let dataDir: string;

    beforeAll(async () => {
      sim = await startLlmSim({ latencyScale: 0 });
      dataDir = mkdtempSync(join(tmpdir(), 'mm-docs-routing-data-'));
      collector = await startCollector({ config: { port: 0, dataDir } });
    }, 60_000);
    afterAll(async () => {
      await collector?.close();
      await sim?.close();
      rmSync(dataDir, { recursive: true, force: true });
    });

    it('with a client for every provider of the policy, the routed call answers', async () => {
      const app = join(workDir, 'app');
      mkdirSync(join(app, 'policies'), { recursive: true });
      writeFileSync(join(app, 'policies', 'support.json'), policyJson!);
      writeFileSync(join(app, 'app.mts'), wiring!);
      symlinkSync(APP_MODULES, join(app, 'node_modules'), 'dir');
      const result = await run(process.execPath, ['app.mts'], {
        cwd: app,
        env: {
          OPENAI_API_KEY: 'sk-test',
          ANTHROPIC_API_KEY: 'sk-ant-test',
          OPENAI_BASE_URL: sim.openaiBaseURL,
          ANTHROPIC_BASE_URL: sim.anthropicBaseURL,
          MODELMAXX_URL: collector.url,
          MODELMAXX_READ_TOKEN: '',
          NODE_OPTIONS: '',
        },
      });
      expect(result.stderr).not.toMatch(/Error|no client/);
      expect(result.code).toBe(0);
      // `completion.model, content`: one of the policy's models answered.
      expect(result.stdout).toMatch(/^(gpt-4o-mini|claude-haiku-4-5|gpt-4o)\S* \S/);
    }, 120_000);
  });

  it.skipIf(!HAS_DATA)(
    'the replay command runs on ../shared/data/routerbench (skipped when that folder is absent)',
    async () => {
      // The command as printed, run from a checkout's root with ../shared next to it; only
      // `pnpm exec modelmaxx-router` becomes this workspace's binary.
      const checkout = join(workDir, 'checkout');
      mkdirSync(join(checkout, 'policies'), { recursive: true });
      symlinkSync(SHARED, join(workDir, 'shared'), 'dir');
      writeFileSync(join(checkout, 'policies', 'support-replay.json'), replayJson!);
      const command = replayCommand!
        .trim()
        .replace('pnpm exec modelmaxx-router', `"${process.execPath}" "${ROUTER_BIN}"`);
      expect(command).toContain('../shared/data/routerbench/*_train.csv');
      const result = await run('sh', ['-c', command], { cwd: checkout });
      // Only the per-file notes of rows skipped for a missing score (RouterBench's ARC files
      // have 20 + 8) may reach stderr; no warning or error.
      const stderrLines = result.stderr.split('\n').filter((line) => line !== '');
      for (const line of stderrLines) expect(line).toMatch(/^note: \S+\.csv: \d+ rows? skipped /);
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(/test 945 prompts/);
      expect(result.stdout).toMatch(/^\| router /m);
      const decisions = readFileSync(join(checkout, 'decisions.jsonl'), 'utf8').trim().split('\n');
      expect(decisions).toHaveLength(945);
      const models = new Set(
        decisions.map((line) => (JSON.parse(line) as { model: string }).model),
      );
      const candidates = parsePolicy(JSON.parse(replayJson!)).candidates.map((c) => c.model);
      for (const model of models) expect(candidates).toContain(model);
    },
    120_000,
  );
});
