/** `@modelmaxx/gateway`: an OpenAI- and Anthropic-compatible gateway over the router engine. */
export type {
  Admission,
  AdmissionRequest,
  Authentication,
  GatewayAccess,
  Principal,
  Settlement,
} from './access/types.js';
export {
  GatewayConfigError,
  GatewayConfigSchema,
  baseUrlWarnings,
  UPSTREAM_KINDS,
  kindOfName,
  parseUpstreamFlag,
  readConfigFile,
  resolveConfig,
  resolveModel,
  upstreamKeyEnv,
} from './config.js';
export type {
  GatewayConfig,
  GatewayConfigInput,
  ResolveConfigOptions,
  ResolvedModel,
  Upstream,
  UpstreamKind,
} from './config.js';
export { assertSafeToBind, createGateway, isLoopbackHost } from './gateway.js';
export type {
  Gateway,
  GatewayLogger,
  GatewayMetrics,
  GatewayOptions,
  SpanExporterInWorker,
} from './gateway.js';
export { openAccess } from './open-access.js';
export { priceWarnings } from './price-check.js';
export {
  ATTR_MODELMAXX_COST_CATALOG_USD,
  ATTR_MODELMAXX_COST_DISAGREEMENT,
  ATTR_MODELMAXX_GATEWAY_APP,
  ATTR_MODELMAXX_GATEWAY_KEY_ID,
  ATTR_MODELMAXX_GATEWAY_TEAM,
  ATTR_MODELMAXX_GATEWAY_UPSTREAM,
} from './telemetry.js';
// The access layer (virtual keys, budgets, rate limits, alerts): src/access/.
export {
  AccessConfigSchema,
  collectorAlertStats,
  createAccess,
  generateGatewayKey,
  hashGatewayKey,
  parseAccessConfig,
} from './access/index.js';
export type {
  AccessConfig,
  AccessLayer,
  AccessLogger,
  AccessOptions,
  AlertPayload,
  AlertStatsFetcher,
  BudgetWindowStatus,
  DeliveryResult,
} from './access/index.js';
