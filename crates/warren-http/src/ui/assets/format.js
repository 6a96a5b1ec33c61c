// Numbers as an operator reads them.
export function num(n) {
  if (n === undefined || n === null) return "–";
  return Number(n).toLocaleString("en-US");
}

export function rate(n) {
  if (n === undefined || n === null) return "–";
  const v = Number(n);
  return `${v >= 100 ? Math.round(v).toLocaleString("en-US") : v.toFixed(1)}/s`;
}

export function bytes(n) {
  if (n === undefined || n === null) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = Number(n);
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

/** `x.y.z` read out of an object, undefined when any step is missing. */
export function dig(obj, path) {
  return path.split(".").reduce((o, k) => (o == null ? undefined : o[k]), obj);
}
