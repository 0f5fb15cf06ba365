import { Random, hashParts } from './random.js';

/** The task kinds the simulator recognises and can check. */
export type TaskKind = 'arithmetic' | 'reverse' | 'count' | 'json';
export type TaskDifficulty = 'easy' | 'hard';

export const TASK_KINDS: readonly TaskKind[] = ['arithmetic', 'reverse', 'count', 'json'];
export const TASK_DIFFICULTIES: readonly TaskDifficulty[] = ['easy', 'hard'];

/** A checkable task: `answer` is the canonical correct answer as a string (JSON text for `json`). */
export interface SimTask {
  kind: TaskKind;
  difficulty: TaskDifficulty;
  prompt: string;
  answer: string;
}

export interface GenerateTaskOptions {
  kind?: TaskKind;
  difficulty?: TaskDifficulty;
  /** Seed of the task family (default 0). */
  seed?: number;
  /** Index within the family: the same (kind, difficulty, seed, index) gives the same task. */
  index?: number;
}

const SHORT_WORDS = [
  'apple',
  'river',
  'stone',
  'cloud',
  'tiger',
  'piano',
  'lemon',
  'table',
  'ocean',
  'bread',
  'chair',
  'grape',
  'light',
  'mouse',
  'plant',
  'sugar',
  'train',
  'water',
  'zebra',
  'honey',
];
const LONG_WORDS = [
  'strawberry',
  'mississippi',
  'encyclopedia',
  'hippopotamus',
  'constellation',
  'thermometer',
  'kaleidoscope',
  'photosynthesis',
  'bureaucracy',
  'onomatopoeia',
  'parallelogram',
  'refrigerator',
  'accommodation',
  'entrepreneur',
  'questionnaire',
  'rhododendron',
];
const NAMES = [
  'Alice',
  'Bruno',
  'Chen',
  'Dana',
  'Emeka',
  'Fatima',
  'Goran',
  'Hana',
  'Ines',
  'Jonas',
];
const CITIES = [
  'Paris',
  'Lagos',
  'Osaka',
  'Lima',
  'Oslo',
  'Quito',
  'Hanoi',
  'Perth',
  'Dakar',
  'Turin',
];

/**
 * Generates a checkable task. Deterministic in (kind, difficulty, seed, index); kind and difficulty
 * default to values drawn from the same seed.
 */
export function generateTask(options: GenerateTaskOptions = {}): SimTask {
  const seed = options.seed ?? 0;
  const index = options.index ?? 0;
  const pre = new Random(hashParts('task-kind', seed, index));
  const kind = options.kind ?? pre.pick(TASK_KINDS);
  const difficulty = options.difficulty ?? pre.pick(TASK_DIFFICULTIES);
  const random = new Random(hashParts('task', kind, difficulty, seed, index));
  let prompt: string;
  switch (kind) {
    case 'arithmetic': {
      if (difficulty === 'easy') {
        const op = random.pick(['*', '+', '-'] as const);
        const a = op === '*' ? random.int(12, 99) : random.int(100, 999);
        const b = op === '*' ? random.int(12, 99) : random.int(100, 999);
        prompt = `What is ${a} ${op} ${b}?`;
      } else {
        const a = random.int(12, 99);
        const b = random.int(12, 99);
        const c = random.int(100, 999);
        const d = random.int(3, 9);
        const e = random.int(100, 999);
        prompt = `What is (${a} * ${b} + ${c}) * ${d} - ${e}?`;
      }
      break;
    }
    case 'reverse': {
      const word = random.pick(difficulty === 'easy' ? SHORT_WORDS : LONG_WORDS);
      prompt = `Reverse the word "${word}".`;
      break;
    }
    case 'count': {
      const word = random.pick(difficulty === 'easy' ? SHORT_WORDS : LONG_WORDS);
      const letters = [...new Set(word)];
      // Prefer a letter that occurs more than once for hard tasks (the classic failure).
      const repeated = letters.filter((letter) => word.split(letter).length > 2);
      const letter = random.pick(difficulty === 'hard' && repeated.length > 0 ? repeated : letters);
      prompt = `How many times does the letter "${letter}" appear in "${word}"?`;
      break;
    }
    case 'json': {
      const name = random.pick(NAMES);
      const age = random.int(19, 88);
      if (difficulty === 'easy') {
        prompt = `Extract the name and age as JSON from: "${name} is ${age} years old."`;
      } else {
        const city = random.pick(CITIES);
        const email = `${name.toLowerCase()}.${random.int(1, 99)}@example.com`;
        prompt = `Extract the name, age, city and email as JSON from: "${name} (${age}) lives in ${city}; reach them at ${email}."`;
      }
      break;
    }
  }
  const task = recognizeTask(prompt);
  if (!task) throw new Error(`generated an unrecognisable prompt: ${prompt}`);
  return task;
}

const ARITHMETIC = /what is ([\d\s+\-*/().]+?)\s*\?/i;
const REVERSE = /reverse the word "([A-Za-z]+)"/i;
const COUNT = /how many times does the letter "([A-Za-z])" appear in "([^"]+)"/i;
const JSON_EXTRACT = /extract the ([a-z, ]+?) as json from: "([^"]+)"/i;
const JSON_EASY = /^(\w+) is (\d+) years old\.?$/;
const JSON_HARD = /^(\w+) \((\d+)\) lives in (\w+); reach them at (\S+?)\.?$/;

/** Recognises a task in a prompt (anywhere in the text); undefined when it is not one of ours. */
export function recognizeTask(prompt: string): SimTask | undefined {
  let match = ARITHMETIC.exec(prompt);
  if (match?.[1] !== undefined) {
    const expression = match[1].trim();
    const value = evaluateExpression(expression);
    if (value !== undefined) {
      const operators = expression.match(/[+\-*/]/g)?.length ?? 0;
      return {
        kind: 'arithmetic',
        difficulty: operators >= 2 ? 'hard' : 'easy',
        prompt,
        answer: String(value),
      };
    }
  }
  match = REVERSE.exec(prompt);
  if (match?.[1] !== undefined) {
    const word = match[1];
    return {
      kind: 'reverse',
      difficulty: word.length >= 8 ? 'hard' : 'easy',
      prompt,
      answer: [...word].reverse().join(''),
    };
  }
  match = COUNT.exec(prompt);
  if (match?.[1] !== undefined && match[2] !== undefined) {
    const letter = match[1].toLowerCase();
    const text = match[2].toLowerCase();
    return {
      kind: 'count',
      difficulty: text.length >= 8 ? 'hard' : 'easy',
      prompt,
      answer: String(text.split(letter).length - 1),
    };
  }
  match = JSON_EXTRACT.exec(prompt);
  if (match?.[2] !== undefined) {
    const sentence = match[2];
    const easy = JSON_EASY.exec(sentence);
    if (easy?.[1] !== undefined && easy[2] !== undefined) {
      return {
        kind: 'json',
        difficulty: 'easy',
        prompt,
        answer: JSON.stringify({ name: easy[1], age: Number(easy[2]) }),
      };
    }
    const hard = JSON_HARD.exec(sentence);
    if (
      hard?.[1] !== undefined &&
      hard[2] !== undefined &&
      hard[3] !== undefined &&
      hard[4] !== undefined
    ) {
      return {
        kind: 'json',
        difficulty: 'hard',
        prompt,
        answer: JSON.stringify({
          name: hard[1],
          age: Number(hard[2]),
          city: hard[3],
          email: hard[4],
        }),
      };
    }
  }
  return undefined;
}

/** Evaluates + - * / and parentheses over integers; undefined on anything else. */
export function evaluateExpression(expression: string): number | undefined {
  const tokens = expression.match(/\d+(?:\.\d+)?|[+\-*/()]/g);
  if (!tokens || tokens.join('') !== expression.replace(/\s+/g, '')) return undefined;
  let position = 0;
  const peek = (): string | undefined => tokens[position];
  const parsePrimary = (): number => {
    const token = tokens[position++];
    if (token === '(') {
      const value = parseSum();
      if (tokens[position++] !== ')') throw new SyntaxError('expected )');
      return value;
    }
    if (token === '-') return -parsePrimary();
    if (token === undefined || !/^\d/.test(token)) throw new SyntaxError('expected a number');
    return Number(token);
  };
  const parseProduct = (): number => {
    let value = parsePrimary();
    while (peek() === '*' || peek() === '/') {
      const op = tokens[position++];
      const right = parsePrimary();
      value = op === '*' ? value * right : value / right;
    }
    return value;
  };
  const parseSum = (): number => {
    let value = parseProduct();
    while (peek() === '+' || peek() === '-') {
      const op = tokens[position++];
      const right = parseProduct();
      value = op === '+' ? value + right : value - right;
    }
    return value;
  };
  try {
    const value = parseSum();
    if (position !== tokens.length || !Number.isFinite(value)) return undefined;
    return Math.round(value * 1e6) / 1e6;
  } catch {
    return undefined;
  }
}

/** The reply text a model gives for a task, given the answer it settled on. */
export function replyForTask(task: SimTask, answer: string): string {
  switch (task.kind) {
    case 'arithmetic':
      return `The answer is ${answer}.`;
    case 'reverse':
      return `The word reversed is "${answer}".`;
    case 'count': {
      const match = COUNT.exec(task.prompt);
      return `The letter "${match?.[1] ?? '?'}" appears ${answer} times.`;
    }
    case 'json':
      return answer;
  }
}

/** A plausible wrong answer, deterministic in `salt`. */
export function wrongAnswer(task: SimTask, salt: number): string {
  const random = new Random(salt);
  switch (task.kind) {
    case 'arithmetic': {
      const value = Number(task.answer);
      const deltas = [1, -1, 10, -10, 2, 100, -100, 9];
      return String(value + random.pick(deltas));
    }
    case 'count': {
      const value = Number(task.answer);
      return String(value === 0 ? 1 : value + random.pick([1, -1, 1]));
    }
    case 'reverse': {
      const letters = [...task.answer];
      if (letters.length < 2) return `${task.answer}${task.answer}`;
      // Swap two adjacent letters that differ; fall back to dropping one.
      for (let attempt = 0; attempt < 8; attempt++) {
        const index = random.int(0, letters.length - 2);
        if (letters[index] !== letters[index + 1]) {
          const copy = letters.slice();
          [copy[index], copy[index + 1]] = [copy[index + 1] as string, copy[index] as string];
          return copy.join('');
        }
      }
      return letters.slice(1).join('');
    }
    case 'json': {
      const value = JSON.parse(task.answer) as Record<string, unknown>;
      const mistake = random.int(0, 2);
      if (mistake === 0) value['age'] = Number(value['age']) + 1;
      else if (mistake === 1) delete value['name'];
      else value['age'] = String(value['age']);
      return JSON.stringify(value);
    }
  }
}

/** Scalar and object forms of a task's answer, used to fill structured (JSON) output. */
export function answerHint(task: SimTask, answer: string): Record<string, unknown> {
  if (task.kind === 'json') {
    try {
      return JSON.parse(answer) as Record<string, unknown>;
    } catch {
      return {};
    }
  }
  const value = task.kind === 'reverse' ? answer : Number(answer);
  return { answer: value, result: value, value, reversed: value, count: value };
}

/**
 * Whether `text` answers the task correctly. Accepts a task or a prompt string (recognised with
 * `recognizeTask`; an unrecognised prompt is never answered correctly). JSON replies are read
 * field by field; prose replies by their last number (arithmetic, count) or last quoted word.
 */
export function checkAnswer(task: SimTask | string, text: string | null | undefined): boolean {
  const resolved = typeof task === 'string' ? recognizeTask(task) : task;
  if (!resolved || typeof text !== 'string') return false;
  const parsed = parseJsonLoose(text);
  if (resolved.kind === 'json') {
    if (!isRecord(parsed)) return false;
    const expected = JSON.parse(resolved.answer) as Record<string, unknown>;
    return Object.entries(expected).every(([key, value]) => {
      const actual = parsed[key];
      return typeof value === 'number' ? actual === value : actual === value;
    });
  }
  if (isRecord(parsed)) {
    return Object.values(parsed).some((value) => scalarMatches(resolved, value));
  }
  if (resolved.kind === 'reverse') {
    const quoted = [...text.matchAll(/"([^"]*)"/g)].map((match) => match[1]);
    const candidate =
      quoted.length > 0 ? quoted[quoted.length - 1] : text.trim().split(/\s+/).pop();
    return candidate?.replace(/[.!]$/, '').toLowerCase() === resolved.answer.toLowerCase();
  }
  const numbers = text.match(/-?\d+(?:\.\d+)?/g);
  const last = numbers?.[numbers.length - 1];
  return last !== undefined && Number(last) === Number(resolved.answer);
}

function scalarMatches(task: SimTask, value: unknown): boolean {
  if (task.kind === 'reverse') {
    return typeof value === 'string' && value.toLowerCase() === task.answer.toLowerCase();
  }
  return (
    (typeof value === 'number' || typeof value === 'string') &&
    Number(value) === Number(task.answer)
  );
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function parseJsonLoose(text: string): unknown {
  const trimmed = text.trim().replace(/^```(?:json)?\s*|\s*```$/g, '');
  if (!trimmed.startsWith('{')) return undefined;
  try {
    return JSON.parse(trimmed) as unknown;
  } catch {
    return undefined;
  }
}
