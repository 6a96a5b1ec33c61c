// A tiny element builder: h("td.num", {title}, child, ...). Text is always set as text
// (never parsed as HTML), so names from the broker cannot inject markup.
export function h(tag, attrs, ...children) {
  const [name, ...classes] = tag.split(".");
  const el = document.createElement(name || "div");
  if (classes.length) el.className = classes.join(" ");
  if (attrs && (typeof attrs !== "object" || attrs instanceof Node || Array.isArray(attrs))) {
    children.unshift(attrs);
    attrs = null;
  }
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k in el && typeof v !== "string") el[k] = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

/** Replace `el`'s children. */
export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

/** A paragraph showing an error (or nothing). */
export function errorLine() {
  const p = h("p.error", { role: "alert", hidden: true });
  return {
    el: p,
    show(e) {
      p.textContent = e instanceof Error ? e.message : String(e);
      p.hidden = false;
    },
    clear() {
      p.textContent = "";
      p.hidden = true;
    },
  };
}
