/**
 * While `pg` loads, give Node 20 the `navigator` global that Node 21+ has. pg asks whether it
 * runs in a Cloudflare Worker when it loads; without `navigator` it finds out by constructing a
 * fetch `Response`, which makes Node load its whole fetch implementation (undici): about 35 ms
 * of every dbward command that opens PostgreSQL. Evaluated before `pg` (see pg-driver.ts) and
 * removed right after it, so nothing else ever sees it.
 */
const g = globalThis as { navigator?: unknown };
const added = g.navigator === undefined;
if (added) {
  Object.defineProperty(globalThis, 'navigator', {
    value: { userAgent: `Node.js/${process.versions.node.split('.')[0]}` },
    configurable: true,
    writable: true,
  });
}

/** Undo the shim (if this module added it). */
export function removeNavigatorShim(): void {
  if (added) delete g.navigator;
}
