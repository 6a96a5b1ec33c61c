// The management API as the UI uses it: fetch with the session's basic auth, JSON in and
// out, and errors carrying the API's `reason` so every form can show it.
import * as session from "./session.js";

export class ApiError extends Error {
  constructor(status, reason) {
    super(reason);
    this.status = status;
  }
}

/** Called on 401 (credentials no longer valid): the app shows the login form. */
let onUnauthorized = () => {};
export function setUnauthorizedHandler(f) {
  onUnauthorized = f;
}

export const enc = encodeURIComponent;

/** A request to `path` (e.g. `/api/queues/%2F`), with `extra` headers; resolves to parsed
 * JSON or null. */
export async function request(method, path, body, auth = session.token(), extra = {}) {
  const headers = { Accept: "application/json", ...extra };
  if (auth) headers.Authorization = `Basic ${auth}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
    });
  } catch (e) {
    throw new ApiError(0, `The broker cannot be reached: ${e.message}`);
  }
  const text = await response.text();
  let json = null;
  if (text) {
    try {
      json = JSON.parse(text);
    } catch {
      json = null;
    }
  }
  if (!response.ok) {
    const reason = (json && (json.reason || json.error)) || `${response.status} ${response.statusText}`;
    // 401 is also "not an administrator" for a valid user: only a failed whoami ends the
    // session (another 401 is checked against whoami, whose own 401 lands here).
    if (response.status === 401 && auth && auth === session.token()) {
      if (path === "/api/whoami") onUnauthorized();
      else request("GET", "/api/whoami").catch(() => {});
    }
    throw new ApiError(response.status, reason);
  }
  return json;
}

export const get = (path) => request("GET", path);
export const put = (path, body) => request("PUT", path, body ?? {});
export const post = (path, body) => request("POST", path, body ?? {});
export const del = (path, extra) => request("DELETE", path, undefined, session.token(), extra);
