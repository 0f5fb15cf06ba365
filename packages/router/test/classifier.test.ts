import { describe, expect, it } from 'vitest';
import { classifyRequest, extractFeatures } from '../src/classifier.js';
import { normalizeAnswer } from '../src/answer.js';

const user = (content: string) => ({ role: 'user', content });

describe('task classifier', () => {
  it('uses the app task label when given', () => {
    expect(classifyRequest({ task: 'support-triage', messages: [user('def f(): pass')] })).toBe(
      'support-triage',
    );
  });

  it('classifies from request features otherwise', () => {
    expect(
      classifyRequest({ messages: [user('Write a python function to reverse a list.')] }),
    ).toBe('code');
    expect(classifyRequest({ messages: [user('What is 17 * 23?')] })).toBe('math');
    expect(classifyRequest({ messages: [user('hi')], tools: [{ type: 'function' }] })).toBe(
      'tools',
    );
    expect(
      classifyRequest({
        messages: [user('list fruits')],
        response_format: { type: 'json_object' },
      }),
    ).toBe('json');
    expect(classifyRequest({ messages: [user('Pick one.\nA) red\nB) blue')] })).toBe('choice');
    expect(
      classifyRequest({
        messages: [user('a'), { role: 'assistant', content: 'b' }, user('c'), user('d'), user('e')],
      }),
    ).toBe('conversation');
    expect(classifyRequest({ messages: [user('Tell me about the sea.')] })).toBe('chat');
    expect(classifyRequest({ messages: [user('x'.repeat(5000))] })).toBe('long');
  });

  it('reads text parts of multi-part content', () => {
    expect(
      extractFeatures({ messages: [{ role: 'user', content: [{ type: 'text', text: 'abc' }] }] }),
    ).toEqual({
      chars: 3,
      turns: 1,
      hasCode: false,
      hasMath: false,
      hasTools: false,
      wantsJson: false,
      multipleChoice: false,
    });
  });
});

describe('answer normalization', () => {
  it('finds comparable answers and gives up on free text', () => {
    expect(normalizeAnswer('B\n')).toBe('B');
    expect(normalizeAnswer('A) Ian')).toBe('A');
    expect(normalizeAnswer('The answer is C because')).toBe('C');
    expect(normalizeAnswer(' 1,024 ')).toBe('1024');
    expect(normalizeAnswer('The answer is 1,776.')).toBe('1776');
    expect(normalizeAnswer('The word reversed is "olleh".')).toBe('the word reversed is "olleh"');
    expect(normalizeAnswer('Paris.')).toBe('paris');
    expect(normalizeAnswer('Here is a function:\n```python\ndef f(): pass\n```')).toBeUndefined();
    expect(normalizeAnswer('')).toBeUndefined();
  });
});
