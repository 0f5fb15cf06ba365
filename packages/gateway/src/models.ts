/**
 * `GET /v1/models`: the policies (`route:<name>`), the configured models, the upstreams' exact
 * model names and the policies' candidates, in OpenAI's list shape, or Anthropic's when the
 * request carries `anthropic-version`.
 */
import { resolveModel } from './config.js';
import type { GatewayConfig } from './config.js';
import type { PolicyState } from './targets.js';
import { ROUTE_PREFIX } from './targets.js';

/** Every model id the gateway answers for, with who serves it, each once. */
function modelIds(
  config: GatewayConfig,
  policies: ReadonlyMap<string, PolicyState>,
): Map<string, string> {
  const owners = new Map<string, string>();
  const add = (id: string, ownedBy: string) => {
    if (!owners.has(id)) owners.set(id, ownedBy);
  };
  for (const name of policies.keys()) add(`${ROUTE_PREFIX}${name}`, 'modelmaxx');
  for (const [model, upstream] of config.models) add(model, upstream);
  for (const upstream of config.upstreams.values()) {
    for (const pattern of upstream.models) {
      if (!pattern.includes('*')) add(pattern, upstream.name);
    }
  }
  for (const state of policies.values()) {
    for (const candidate of state.policy.candidates) {
      // The upstream that serves it (a candidate without `client` by the resolution rules: the
      // router schema's `provider` defaults to openai, which is no upstream's name for Claude).
      const upstream =
        candidate.client ??
        resolveModel(config, candidate.model, candidate.provider === 'anthropic')?.upstream.name;
      add(candidate.model, upstream ?? candidate.provider);
    }
  }
  return owners;
}

function modelObject(id: string, ownedBy: string, created: number, anthropicShape: boolean) {
  if (anthropicShape) {
    const createdAt = new Date(created * 1000).toISOString();
    return { type: 'model', id, display_name: id, created_at: createdAt };
  }
  return { id, object: 'model', created, owned_by: ownedBy };
}

/**
 * `GET /v1/models/{id}` (the SDKs' `models.retrieve`): a listed model, or any model an upstream
 * serves by the resolution rules (patterns, `upstream/model`, the only upstream); undefined when
 * no upstream would serve it.
 */
export function modelRetrieved(
  config: GatewayConfig,
  policies: ReadonlyMap<string, PolicyState>,
  id: string,
  now: number,
  anthropicShape: boolean,
): string | undefined {
  const created = Math.floor(now / 1000);
  const listed = modelIds(config, policies).get(id);
  const ownedBy =
    listed ?? (id.startsWith(ROUTE_PREFIX) ? undefined : resolveModel(config, id)?.upstream.name);
  return ownedBy === undefined
    ? undefined
    : JSON.stringify(modelObject(id, ownedBy, created, anthropicShape));
}

export function modelList(
  config: GatewayConfig,
  policies: ReadonlyMap<string, PolicyState>,
  now: number,
  anthropicShape: boolean,
): string {
  const created = Math.floor(now / 1000);
  const ids = [...modelIds(config, policies)];
  if (anthropicShape) {
    return JSON.stringify({
      data: ids.map(([id, ownedBy]) => modelObject(id, ownedBy, created, true)),
      has_more: false,
      first_id: ids[0]?.[0] ?? null,
      last_id: ids.at(-1)?.[0] ?? null,
    });
  }
  return JSON.stringify({
    object: 'list',
    data: ids.map(([id, ownedBy]) => modelObject(id, ownedBy, created, false)),
  });
}
