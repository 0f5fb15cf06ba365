/** Task classifier: the app's own task label, else cheap features of the request. Pure. */

export interface RequestFeatures {
  readonly chars: number;
  readonly turns: number;
  readonly hasCode: boolean;
  readonly hasMath: boolean;
  readonly hasTools: boolean;
  readonly wantsJson: boolean;
  readonly multipleChoice: boolean;
}

/** The part of a chat request the classifier looks at. */
export interface ClassifiableRequest {
  readonly messages?: readonly { readonly role?: string; readonly content?: unknown }[];
  readonly tools?: readonly unknown[] | null;
  readonly response_format?: { readonly type?: string } | null;
  /** The app's task label (`modelmaxx.task`), if any. */
  readonly task?: string | undefined;
}

const CODE_PATTERN =
  /```|\bdef \w+\(|\bfunction\b|\bclass \w+|=>|#include|\bimport \w|\bwrite a (python )?function\b/i;
const MATH_PATTERN =
  /\d\s*[-+*/^=]\s*\d|\b(solve|equation|integral|derivative|how many|calculate|sum of)\b/i;
const CHOICE_PATTERN = /(^|\n)\s*\(?[A-D]\)\s+\S/;

function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    let text = '';
    for (const part of content) {
      if (part !== null && typeof part === 'object' && 'text' in part) {
        const value = (part as { text?: unknown }).text;
        if (typeof value === 'string') text += value;
      }
    }
    return text;
  }
  return '';
}

export function extractFeatures(request: ClassifiableRequest): RequestFeatures {
  const messages = request.messages ?? [];
  let chars = 0;
  let turns = 0;
  let last = '';
  for (const message of messages) {
    const text = textOf(message.content);
    chars += text.length;
    if (message.role === 'user') {
      turns += 1;
      last = text;
    }
  }
  return {
    chars,
    turns,
    hasCode: CODE_PATTERN.test(last),
    hasMath: MATH_PATTERN.test(last),
    hasTools: (request.tools?.length ?? 0) > 0,
    wantsJson:
      request.response_format?.type === 'json_object' ||
      request.response_format?.type === 'json_schema',
    multipleChoice: CHOICE_PATTERN.test(last),
  };
}

/** Class names from features, coarse on purpose: each class needs enough traffic to learn. */
export function classOfFeatures(features: RequestFeatures): string {
  if (features.hasTools) return 'tools';
  if (features.wantsJson) return 'json';
  if (features.hasCode) return 'code';
  if (features.multipleChoice) return 'choice';
  if (features.hasMath) return 'math';
  if (features.turns > 3) return 'conversation';
  return features.chars > 4000 ? 'long' : 'chat';
}

/** The app's label when given (`modelmaxx.task`), otherwise a class from request features. */
export function classifyRequest(request: ClassifiableRequest): string {
  if (request.task !== undefined && request.task !== '') return request.task;
  return classOfFeatures(extractFeatures(request));
}
