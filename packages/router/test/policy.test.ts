import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PolicyError, loadPolicyFile, parsePolicy } from '../src/policy.js';

describe('policy', () => {
  it('fills defaults for a minimal policy', () => {
    const policy = parsePolicy({ candidates: [{ model: 'gpt-4o-mini' }] });
    expect(policy.name).toBe('auto');
    expect(policy.candidates).toEqual([{ model: 'gpt-4o-mini', provider: 'openai' }]);
    expect(policy.goal).toEqual({ qualityMargin: 0.02 });
    expect(policy.fallback).toEqual({ maxAttempts: 3, cooldownMs: 30_000, timeoutMs: 60_000 });
  });

  it('lists every problem of a bad policy with its path', () => {
    let caught: unknown;
    try {
      parsePolicy({
        candidates: [{ model: 'a' }, { model: 'a', provider: 'groq' }],
        exploration: 2,
        fallback: { chain: ['zzz'] },
      });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(PolicyError);
    const error = caught as PolicyError;
    expect(error.issues).toEqual([
      'candidates.1.provider: Invalid option: expected one of "openai"|"anthropic"',
      'exploration: Too big: expected number to be <=0.5',
    ]);
    expect(error.message).toContain('invalid policy:');
  });

  it('rejects duplicate candidates and unknown fallback models', () => {
    expect(() =>
      parsePolicy({ candidates: [{ model: 'a' }, { model: 'a' }], fallback: { chain: ['b'] } }),
    ).toThrow(PolicyError);
    try {
      parsePolicy({ candidates: [{ model: 'a' }, { model: 'a' }], fallback: { chain: ['b'] } });
    } catch (error) {
      expect((error as PolicyError).issues).toEqual([
        'candidates.1.model: candidate "a" is listed twice',
        'fallback.chain.0: fallback model "b" is not a candidate of this policy',
      ]);
    }
  });

  it('checks cascade voters and escalation model against the candidates', () => {
    try {
      parsePolicy({
        candidates: [{ model: 'a' }, { model: 'b' }],
        cascade: { enabled: true, voters: ['a', 'x'] },
      });
      expect.unreachable();
    } catch (error) {
      expect((error as PolicyError).issues).toEqual([
        'cascade.voters.1: cascade voter "x" is not a candidate of this policy',
        'cascade: give both cascade.voters and cascade.escalateTo, or neither',
      ]);
    }
  });

  it('loads a JSON policy file and reports bad JSON clearly', () => {
    const dir = mkdtempSync(join(tmpdir(), 'router-policy-'));
    const good = join(dir, 'good.json');
    writeFileSync(good, JSON.stringify({ name: 'p', candidates: [{ model: 'm' }] }));
    expect(loadPolicyFile(good).name).toBe('p');
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{ nope');
    expect(() => loadPolicyFile(bad)).toThrow(`policy file ${bad} is not valid JSON`);
    expect(() => loadPolicyFile(join(dir, 'missing.json'))).toThrow('cannot read policy file');
    const empty = join(dir, 'empty.json');
    writeFileSync(empty, JSON.stringify({ candidates: [] }));
    expect(() => loadPolicyFile(empty)).toThrow('a policy needs at least one candidate model');
  });
});
