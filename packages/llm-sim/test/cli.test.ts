import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_SIM_MODELS } from '../src/index.js';
import { USAGE, loadModelsFile, parseCliArgs, runCli } from '../src/cli.js';

const directory = mkdtempSync(join(tmpdir(), 'llm-sim-cli-'));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

describe('cli', () => {
  it('parses options with realistic defaults', () => {
    expect(parseCliArgs([])).toEqual({
      port: 8787,
      host: '127.0.0.1',
      seed: 1,
      latencyScale: 1,
      failureScale: 1,
      timeoutHoldMs: 30_000,
    });
    expect(parseCliArgs(['--port', '0', '--seed', '9', '--latency-scale', '0.5'])).toMatchObject({
      port: 0,
      seed: 9,
      latencyScale: 0.5,
    });
    expect(parseCliArgs(['--help'])).toBe('help');
    expect(() => parseCliArgs(['--latency-scale', 'fast'])).toThrow(/latency-scale/);
    expect(() => parseCliArgs(['--bogus'])).toThrow();
  });

  it('loads a models file of patches and new models', () => {
    const file = join(directory, 'models.json');
    writeFileSync(
      file,
      JSON.stringify([
        { name: 'gpt-4o', failure: { rate429: 0.5 } },
        { name: 'my-model', provider: 'acme', quality: { arithmetic: { easy: 0.1 } } },
      ]),
    );
    const models = loadModelsFile(file);
    const base = DEFAULT_SIM_MODELS.find((model) => model.name === 'gpt-4o');
    expect(models[0]).toEqual({ ...base, failure: { ...base?.failure, rate429: 0.5 } });
    expect(models[1]).toMatchObject({ name: 'my-model', provider: 'acme', kind: 'chat' });
    expect(models[1]?.quality.arithmetic.easy).toBe(0.1);
    expect(models[1]?.responseModel).toBeUndefined();
  });

  it('starts the simulator and prints its URLs', async () => {
    const lines: string[] = [];
    const result = await runCli(['--port', '0', '--latency-scale', '0'], (line) =>
      lines.push(line),
    );
    expect(lines).toHaveLength(0 + 1);
    try {
      expect(lines[0]).toContain(`llm-sim listening on ${result?.sim.url}`);
      expect(lines[0]).toContain(`OpenAI base URL:    ${result?.sim.openaiBaseURL}`);
      const response = await fetch(`${result?.sim.openaiBaseURL}/models`);
      expect(response.status).toBe(200);
    } finally {
      await result?.sim.close();
    }
    const help: string[] = [];
    expect(await runCli(['-h'], (line) => help.push(line))).toBeUndefined();
    expect(help).toEqual([USAGE]);
  });

  it('runs as bin/llm-sim.js and shuts down on SIGTERM', async () => {
    const bin = fileURLToPath(new URL('../bin/llm-sim.js', import.meta.url));
    const child = spawn(process.execPath, [bin, '--port', '0', '--latency-scale', '0'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.setEncoding('utf8');
    const url = await new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (data: string) => {
        output += data;
        const match = /listening on (http:\/\/\S+)/.exec(output);
        if (match?.[1]) resolve(match[1]);
      });
      child.once('exit', (code) => reject(new Error(`exited early with ${code}: ${output}`)));
    });
    const response = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'gpt-4o-mini',
        messages: [{ role: 'user', content: 'What is 2 + 2?' }],
      }),
    });
    expect(response.status).toBe(200);
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(output).toContain('llm-sim stopped');
  });
});
