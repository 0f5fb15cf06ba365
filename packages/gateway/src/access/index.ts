/** The gateway's access layer: virtual keys, budgets, rate limits and alerts. */
export { createAccess } from './access.js';
export type { AccessLayer, AccessOptions } from './access.js';
export { AlertEngine, collectorAlertStats } from './alerts.js';
export type { AlertStatsFetcher, BudgetCrossing, StatsQueryArgs } from './alerts.js';
export type { BudgetWindowStatus } from './budgets.js';
export {
  AccessConfigSchema,
  AlertRuleSchema,
  AlertsSchema,
  BudgetSchema,
  GatewayKeySchema,
  RateLimitSchema,
  parseAccessConfig,
} from './config.js';
export type {
  AccessConfig,
  AccessConfigInput,
  AlertRuleConfig,
  AlertsConfig,
  BudgetConfig,
  GatewayKeyConfig,
  RateLimitConfig,
} from './config.js';
export { KeyRing, generateGatewayKey, hashGatewayKey } from './keys.js';
export type { NewGatewayKey } from './keys.js';
export type { AccessLogger } from './logger.js';
export { STATE_FILE_NAME } from './state-file.js';
export { WebhookSender } from './webhooks.js';
export type { AlertPayload, DeliveryResult } from './webhooks.js';
export { windowOf } from './windows.js';
