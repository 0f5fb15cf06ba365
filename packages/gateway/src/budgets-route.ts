/**
 * `GET /v1/budgets`: where the caller's budgets stand now, so an app or an operator can see what
 * is left before a 429 says so. A caller sees the budgets that apply to it only (global ones, its
 * key's, its key's user and team, and the feature or end user it names with `?feature=` /
 * `x-modelmaxx-feature` and `?user=`), never another key's or team's. With a budget sync,
 * `spent_usd` includes the other replicas' spend as last synced (`others_usd`).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Principal } from './access/types.js';
import type { GatewayContext } from './context.js';
import { header, sendError, sendJson } from './http.js';

export const BUDGETS_PATH = '/v1/budgets';

/** Rounds USD to a pico-dollar: float sums drift below that. */
const usd = (value: number) => Math.round(value * 1e12) / 1e12;

export function listBudgets(
  context: GatewayContext,
  request: IncomingMessage,
  response: ServerResponse,
  principal: Principal,
): void {
  request.resume();
  if (request.method !== 'GET') {
    sendError(response, undefined, 405, 'invalid_request_error', `use GET ${BUDGETS_PATH}`, {
      allow: 'GET',
    });
    return;
  }
  const query = new URL(request.url ?? '/', 'http://gateway').searchParams;
  const feature = query.get('feature') ?? header(request, 'x-modelmaxx-feature');
  const user = query.get('user') ?? undefined;
  const windows = context.access.budgetsOf?.(principal, feature, user) ?? [];
  const data = windows.map((window) => ({
    object: 'budget',
    name: window.budget,
    scope: window.scope,
    subject: window.subject,
    mode: window.mode,
    period: window.period,
    limit_usd: window.limitUsd,
    // This gateway's spend and the other replicas' (a budget sync's, also apart as others_usd).
    spent_usd: usd(window.spentUsd),
    others_usd: usd(window.othersUsd),
    reserved_usd: usd(window.reservedUsd),
    remaining_usd: usd(Math.max(0, window.limitUsd - window.spentUsd - window.reservedUsd)),
    window_start: window.start,
    resets_at: window.resetsAt,
  }));
  sendJson(response, 200, JSON.stringify({ object: 'list', data }));
}
