import { describe, expect, it } from 'vitest';
import { runCli } from '../src/main.js';

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(args, {
    stdout: (text) => {
      stdout += text;
    },
    stderr: (text) => {
      stderr += text;
    },
    env: {},
  });
  return { code, stdout, stderr };
}

describe('modelmaxx demo arguments', () => {
  it('is listed in the usage', async () => {
    const { code, stdout } = await cli(['--help']);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^ {2}demo {2,}simulated traffic/m);
    expect(stdout).toContain('--requests N (default 300)');
  });

  it.each([
    [['--requests', '0'], '--requests takes a positive whole number'],
    [['--requests', 'many'], '--requests takes a positive whole number'],
    [['--seed', '1.5'], '--seed takes a whole number'],
    [
      ['--url', 'not a url'],
      '--url takes a collector URL such as http://127.0.0.1:4318; got "not a url"',
    ],
    [['--bogus'], "Unknown option '--bogus'"],
  ])('refuses %j with a usage error', async (args, message) => {
    const { code, stdout, stderr } = await cli(['demo', ...args]);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toContain(`modelmaxx demo: ${message}`);
  });
});
