// Polling a view's data while it is on screen: `load()` fetches, `show(data)` draws; the
// view's error line shows why a load failed and is hidden again by the next success; a
// load answered after the user navigated away is dropped; the next load follows 5 s after
// the last (RabbitMQ's UI refresh), and navigation (`ctx.stop`) ends it. Used by the
// overview and the single-object pages (queue, exchange, connection, topology).
import { POLL_MS } from "./chart.js";

/**
 * Returns `refresh`: call it for the first load, and again to reload at once (after a
 * form changed something). `describe(e)` words a failure (default: the API's reason);
 * `onStop()` undoes what the view set up beyond the timer (a resize listener).
 */
export function poller(ctx, error, { load, show, describe = (e) => e.message, onStop = () => {} }) {
  let stopped = false;
  let timer = null;
  ctx.stop = () => {
    stopped = true;
    clearTimeout(timer);
    onStop();
  };
  const refresh = async () => {
    clearTimeout(timer);
    try {
      const data = await load();
      if (stopped) return;
      error.hidden = true;
      show(data);
    } catch (e) {
      if (stopped) return;
      error.textContent = describe(e);
      error.hidden = false;
    }
    if (!stopped) timer = setTimeout(refresh, POLL_MS);
  };
  return refresh;
}
