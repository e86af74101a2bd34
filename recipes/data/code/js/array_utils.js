export const chunk = (items, size) => {
  const out = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
};

export const groupBy = (items, key) =>
  items.reduce((groups, item) => {
    const k = typeof key === "function" ? key(item) : item[key];
    (groups[k] ||= []).push(item);
    return groups;
  }, {});

export const unique = (items) => [...new Set(items)];

export function zip(...arrays) {
  const length = Math.min(...arrays.map((a) => a.length));
  return Array.from({ length }, (_, i) => arrays.map((a) => a[i]));
}
