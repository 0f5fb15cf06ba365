/** The gateway's access layer: virtual keys, budgets, rate limits and alerts. */
export { createAccess } from './access.js';
export type { AccessLayer, AccessOptions } from './access.js';
export { collectorAlertStats } from './alerts.js';
export type { AlertStatsFetcher } from './alerts.js';
export type { BudgetWindowStatus } from './budgets.js';
export { AccessConfigSchema, parseAccessConfig } from './config.js';
export type { AccessConfig, AccessConfigInput } from './config.js';
export { generateGatewayKey, hashGatewayKey } from './keys.js';
export type { AccessLogger } from './logger.js';
// The state file's name and the budget windows: what a test (or an operator) finds on disk.
export { STATE_FILE_NAME } from './state-file.js';
export { windowOf } from './windows.js';
export type { AlertPayload, DeliveryResult } from './webhooks.js';
