/** What a schema filler asks for a value: the property name and the JSON type wanted. */
export type ValueHint = (key: string, type: string) => unknown;

type SchemaNode = Record<string, unknown>;

/** Where the filler is in the schema: the root (for `$ref`), the property name and the depth. */
interface FillAt {
  root: unknown;
  key: string;
  depth: number;
}

/** Fills a JSON value that satisfies a (subset of) JSON Schema, preferring values from `hint`. */
export function jsonFromSchema(schema: unknown, hint: ValueHint): unknown {
  return fill(schema, hint, { root: schema, key: '', depth: 0 });
}

function fill(schema: unknown, hint: ValueHint, at: FillAt): unknown {
  if (typeof schema !== 'object' || schema === null || at.depth > 8)
    return hint(at.key, 'string') ?? null;
  const node = schema as SchemaNode;
  const deeper = (child: unknown, key = at.key): unknown =>
    fill(child, hint, { root: at.root, key, depth: at.depth + 1 });
  if (typeof node['$ref'] === 'string') return deeper(resolveRef(at.root, node['$ref']));
  if ('const' in node) return node['const'];
  if (Array.isArray(node['enum']) && node['enum'].length > 0) {
    const wanted = hint(at.key, 'enum');
    return node['enum'].includes(wanted) ? wanted : node['enum'][0];
  }
  const variants = (node['anyOf'] ?? node['oneOf']) as unknown[] | undefined;
  if (Array.isArray(variants) && variants.length > 0) {
    const nonNull = variants.find(
      (variant) => (variant as { type?: unknown } | null)?.type !== 'null',
    );
    return deeper(nonNull ?? variants[0]);
  }
  if (Array.isArray(node['allOf']) && node['allOf'].length > 0) return deeper(node['allOf'][0]);
  const type = typeOf(node);
  switch (type) {
    case 'object': {
      const out: Record<string, unknown> = {};
      const properties = (node['properties'] ?? {}) as Record<string, unknown>;
      for (const [name, child] of Object.entries(properties)) out[name] = deeper(child, name);
      return out;
    }
    case 'array': {
      // One item near the root; none deeper down (ends recursive schemas) unless minItems asks.
      const minItems = typeof node['minItems'] === 'number' ? node['minItems'] : 0;
      const count = Math.max(minItems, at.depth > 3 ? 0 : 1);
      return Array.from({ length: count }, () => deeper(node['items']));
    }
    case 'integer':
    case 'number':
      return numberIn(node, type, hint(at.key, type));
    case 'boolean':
      return typeof hint(at.key, 'boolean') === 'boolean' ? hint(at.key, 'boolean') : true;
    case 'null':
      return null;
    default:
      return stringIn(node, hint(at.key, 'string'));
  }
}

/** Follows a local `$ref` (`#/$defs/Name`) from the root schema. */
function resolveRef(root: unknown, ref: string): unknown {
  const path = ref.replace(/^#\/?/, '').split('/').filter(Boolean);
  let target: unknown = root;
  for (const part of path) target = (target as Record<string, unknown> | undefined)?.[part];
  return target;
}

/** The node's type: the first non-null of a type list; `object` when it only has properties. */
function typeOf(node: SchemaNode): unknown {
  let type = node['type'];
  if (Array.isArray(type)) type = type.find((entry) => entry !== 'null') ?? type[0];
  if (type === undefined && typeof node['properties'] === 'object') type = 'object';
  return type;
}

function numberKeyword(node: SchemaNode, name: string): number | undefined {
  const value = node[name];
  return typeof value === 'number' ? value : undefined;
}

/** The hinted number, kept inside the node's bounds. */
function numberIn(node: SchemaNode, type: 'integer' | 'number', wanted: unknown): number {
  let value = typeof wanted === 'number' ? wanted : Number(wanted);
  const minimum = numberKeyword(node, 'minimum');
  const maximum = numberKeyword(node, 'maximum');
  const exclusiveMinimum = numberKeyword(node, 'exclusiveMinimum');
  const exclusiveMaximum = numberKeyword(node, 'exclusiveMaximum');
  if (!Number.isFinite(value)) value = minimum ?? 1;
  if (type === 'integer') value = Math.round(value);
  const step = type === 'integer' ? 1 : 0.001;
  if (minimum !== undefined && value < minimum) value = minimum;
  if (exclusiveMinimum !== undefined && value <= exclusiveMinimum) value = exclusiveMinimum + step;
  if (maximum !== undefined && value > maximum) value = maximum;
  if (exclusiveMaximum !== undefined && value >= exclusiveMaximum) value = exclusiveMaximum - step;
  return type === 'integer' ? Math.ceil(value) : value;
}

const FORMAT_EXAMPLES: Record<string, string> = {
  'date-time': '2025-01-01T00:00:00Z',
  date: '2025-01-01',
  uuid: '00000000-0000-4000-8000-000000000000',
  uri: 'https://example.com/',
  url: 'https://example.com/',
};

/** The hinted string, or an example of the node's format, within its length bounds. */
function stringIn(node: SchemaNode, known: unknown): string {
  const format = node['format'];
  if (format === 'email')
    return typeof known === 'string' && known.includes('@') ? known : 'user@example.com';
  if (typeof format === 'string' && Object.hasOwn(FORMAT_EXAMPLES, format))
    return FORMAT_EXAMPLES[format] as string;
  let text = known === undefined || known === null ? 'example' : String(known);
  const minLength = numberKeyword(node, 'minLength');
  const maxLength = numberKeyword(node, 'maxLength');
  if (minLength !== undefined && text.length < minLength) text = text.padEnd(minLength, 'x');
  if (maxLength !== undefined && text.length > maxLength) text = text.slice(0, maxLength);
  return text;
}

/** Values for tool arguments and structured output taken from the prompt (numbers, places, the query). */
export function promptHint(userText: string): ValueHint {
  return (key, type) => {
    const lower = key.toLowerCase();
    if (type === 'number' || type === 'integer') {
      const number = userText.match(/-?\d+(?:\.\d+)?/);
      return number ? Number(number[0]) : 1;
    }
    if (type !== 'string') return undefined;
    if (/city|location|place|town|country|destination|origin|address/.test(lower)) {
      const capitalized = userText.match(/(?<=\s)[A-Z][a-z]+/g);
      return capitalized?.[capitalized.length - 1] ?? 'Paris';
    }
    if (/unit/.test(lower)) return 'celsius';
    if (/query|search|text|input|prompt|question|q$/.test(lower)) return userText.slice(0, 80);
    return 'example';
  };
}
