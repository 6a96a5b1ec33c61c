// The logged-in user for this browser tab: the basic-auth token lives in sessionStorage
// (gone when the tab closes), never in a URL.
const KEY = "warren.auth";
const VHOST = "warren.vhost";

export function token() {
  return sessionStorage.getItem(KEY);
}

export function save(username, password) {
  const bytes = new TextEncoder().encode(`${username}:${password}`);
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  sessionStorage.setItem(KEY, btoa(binary));
}

export function clear() {
  sessionStorage.removeItem(KEY);
  sessionStorage.removeItem(VHOST);
}

/** The vhost chosen in the top bar ("" for all). */
export function vhost() {
  return sessionStorage.getItem(VHOST) ?? "";
}

export function setVhost(name) {
  sessionStorage.setItem(VHOST, name);
}
