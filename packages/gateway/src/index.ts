/** `@modelmaxx/gateway`: an OpenAI- and Anthropic-compatible gateway over the router engine. */
export type {
  Admission,
  AdmissionRequest,
  Authentication,
  GatewayAccess,
  Principal,
  Settlement,
} from './access/types.js';
