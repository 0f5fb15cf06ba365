/* global document, sessionStorage, location, history, fetch, URL */
/**
 * The dashboard's plumbing: element lookup, table cells, and the API client
 * with the read token (from `?token=` once or the form the page shows on 401,
 * kept in sessionStorage and sent as a Bearer header).
 */

export const TOKEN_KEY = 'modelmaxx.readToken';

export const $ = (id) => {
  const element = document.getElementById(id);
  if (element === null) throw new Error(`missing #${id}`);
  return element;
};

/** The API answered 401: the read token is missing or wrong. */
export class AuthError extends Error {}

/** A table cell holding `text` (as text, never as HTML). */
export function cell(text, className) {
  const td = document.createElement('td');
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

/** Takes `?token=` from the address (once) into sessionStorage. */
export function takeTokenFromUrl() {
  const url = new URL(location.href);
  const token = url.searchParams.get('token');
  if (token === null) return;
  if (token !== '') sessionStorage.setItem(TOKEN_KEY, token);
  url.searchParams.delete('token');
  // Drop it from the address bar and history.
  history.replaceState(null, '', url.pathname + url.search + url.hash);
}

/** GET `path` as JSON with the read token; throws `AuthError` on 401. */
export async function api(path) {
  const headers = { accept: 'application/json' };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token !== null) headers.authorization = `Bearer ${token}`;
  const response = await fetch(path, { headers, cache: 'no-store' });
  if (response.status === 401) throw new AuthError('the read token is missing or wrong');
  let body;
  try {
    body = await response.json();
  } catch {
    throw new Error(`${path}: HTTP ${response.status} (not JSON)`);
  }
  if (!response.ok) {
    const message = typeof body?.error === 'string' ? body.error : JSON.stringify(body?.errors);
    throw new Error(`${path}: HTTP ${response.status}: ${message}`);
  }
  return body;
}
