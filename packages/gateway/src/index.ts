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
  AccessConfigSchema,
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
