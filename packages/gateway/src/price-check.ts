/**
 * Start-up warnings about prices. A model the catalog has no price for is recorded without a
 * cost and counts $0 against every budget, so a hard budget does not stop its calls; an operator
 * should hear that before the first call, not from a bill. Checked: the models the config names
 * exactly (upstreams' `models` without wildcards, the `models` map, the policies' candidates),
 * each priced as its calls will be (the upstream's provider), and `MODELMAXX_PRICES`'s problems.
 */
import { costOf } from '@modelmaxx/pricing';
import { resolveModel } from './config.js';
import type { GatewayConfig, Upstream } from './config.js';
import { providerOf } from './targets.js';
import { defaultCatalog, priceOverrideErrors } from './telemetry.js';

/** The configured models (name and upstream) to price, each once. */
function configuredModels(
  config: GatewayConfig,
): Iterable<{ readonly model: string; readonly upstream: Upstream }> {
  const models = new Map<string, { model: string; upstream: Upstream }>();
  const add = (model: string, upstream: Upstream | undefined) => {
    if (upstream === undefined || model.includes('*')) return;
    const key = `${upstream.name}\u0000${model}`;
    if (!models.has(key)) models.set(key, { model, upstream });
  };
  for (const upstream of config.upstreams.values()) {
    for (const model of upstream.models) add(model, upstream);
  }
  for (const [model, upstream] of config.models) add(model, config.upstreams.get(upstream));
  for (const policy of config.policies.values()) {
    for (const candidate of policy.candidates) {
      if (candidate.client !== undefined) {
        add(candidate.model, config.upstreams.get(candidate.client));
        continue;
      }
      const resolved = resolveModel(config, candidate.model, candidate.provider === 'anthropic');
      if (resolved !== undefined) add(resolved.model, resolved.upstream);
    }
  }
  return models.values();
}

/** One line per problem: `MODELMAXX_PRICES`'s, then each configured model without a price. */
export function priceWarnings(config: GatewayConfig): string[] {
  const warnings = [...priceOverrideErrors()];
  const catalog = defaultCatalog();
  for (const { model, upstream } of configuredModels(config)) {
    const provider = providerOf(upstream);
    const usage = { inputTokens: 1000, outputTokens: 1000 };
    if (costOf({ provider, model, usage }, { catalog }).known) continue;
    warnings.push(
      `no price for model "${model}" (upstream "${upstream.name}", provider ${provider}): its calls are recorded without a cost and count $0 against budgets, so a hard budget does not stop them; give its price in a MODELMAXX_PRICES file (docs/operating.md), 0 if you pay nothing per token`,
    );
  }
  return warnings;
}
