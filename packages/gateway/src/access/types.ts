/**
 * The seam between the gateway's request pipeline and its access layer (virtual keys, budgets,
 * rate limits, alerts). The pipeline calls, per request:
 *
 * 1. `authenticate(authorizationHeader)` — who is calling (or why not);
 * 2. `admit(request)` — may this request run now, on which candidates; reserves its
 *    estimated cost, so that concurrent requests cannot all pass a hard limit at once;
 * 3. `settle(admission, usage)` exactly once when the upstream call is over (success, error or
 *    abort) — records the actual spend and releases the reservation.
 *
 * Without gateway keys configured (loopback only), `authenticate` returns an anonymous
 * principal and `admit` applies only the budgets and limits that count by no key or team
 * (global, feature, and user ones, which then count the request's `endUser`).
 */
import type { BudgetWindowStatus } from './budgets.js';

/** Who a request is from: a gateway key's metadata. */
export interface Principal {
  /** The key's id (never the key itself); `anonymous` when the gateway runs without keys. */
  readonly keyId: string;
  readonly team?: string;
  readonly user?: string;
  readonly app?: string;
}

export type Authentication =
  | { readonly ok: true; readonly principal: Principal }
  | { readonly ok: false; readonly status: 401 | 403; readonly message: string };

export interface AdmissionRequest {
  readonly principal: Principal;
  /** `modelmaxx.feature` of the request (header `x-modelmaxx-feature` or metadata). */
  readonly feature?: string;
  /** The end user the app names (OpenAI's `user` field or `x-modelmaxx-user`), if any. */
  readonly endUser?: string;
  /** The models the request may go to, in the router's order of preference (one for a real model). */
  readonly candidates: readonly string[];
  /** Upper-bound cost estimate in USD for each candidate (from the catalog, max_tokens and input size). */
  readonly estimatedCostUsd: Readonly<Record<string, number>>;
  /** Estimated tokens (input + max output) for tokens-per-minute limits. */
  readonly estimatedTokens: number;
  /** Request time, ms since the epoch. */
  readonly at: number;
}

export type Admission =
  | {
      readonly ok: true;
      /** Opaque handle for `settle`. */
      readonly id: string;
      /** The candidates to use, possibly reordered or narrowed to cheaper ones (steer mode). */
      readonly candidates: readonly string[];
      /** Soft-threshold warnings to log and return as a response header. */
      readonly warnings: readonly string[];
      /** Why the candidates were steered, when they were. */
      readonly steered?: string;
    }
  | {
      readonly ok: false;
      readonly status: 429;
      /** Which budget or limit, and when it resets (ISO 8601). */
      readonly error: {
        readonly type: 'budget_exceeded' | 'rate_limited';
        readonly message: string;
        readonly budget?: string;
        readonly resetsAt?: string;
        /**
         * Machine-readable fields the 429 body's error object carries (`budget` or `rate_limit`,
         * snake_case as in the providers' bodies): which budget or limit, and when it resets.
         */
        readonly fields?: Readonly<Record<string, unknown>>;
      };
      readonly retryAfterSeconds: number;
    };

export interface Settlement {
  /** The model that answered (or was last tried). */
  readonly model: string;
  readonly costUsd: number;
  readonly inputTokens: number;
  readonly outputTokens: number;
  readonly ok: boolean;
}

export interface GatewayAccess {
  /**
   * True when gateway keys are configured and every request must present one. The gateway
   * refuses to listen beyond loopback unless this is true (absent reads as false).
   */
  readonly keyed?: boolean;
  /**
   * The `service.instance.id` the gateway's spans carry: a budget sync leaves this instance's
   * spend out of the other replicas' (absent: the gateway makes one up).
   */
  readonly instanceId?: string;
  authenticate(authorization: string | undefined): Authentication;
  admit(request: AdmissionRequest): Promise<Admission>;
  settle(admission: Extract<Admission, { ok: true }>, settlement: Settlement): void;
  /**
   * The budgets that apply to this caller (and `feature` / end user, when given), each where it
   * stands in its current window (`GET /v1/budgets`); absent: the layer has no budgets.
   */
  budgetsOf?(
    principal: Principal,
    feature: string | undefined,
    endUser: string | undefined,
  ): BudgetWindowStatus[];
  close(): Promise<void>;
}
