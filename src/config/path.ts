export type Path = ReadonlyArray<PropertyKey>;

/** `["accounts", 1, "appKey"]` → `accounts[1].appKey`, the form every config message starts with. */
export function formatPath(path: Path): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? String(part) : `.${String(part)}`;
  }
  return out === '' ? '(top level)' : out;
}
