// Lets a plain `node` child process run the collector's TypeScript sources:
// `./x.js` imports resolve to `./x.ts` (Node strips the types itself), and
// workspace packages resolve through their `@modelmaxx/source` export condition.
export async function resolve(specifier, context, nextResolve) {
  const conditions = [...(context.conditions ?? []), '@modelmaxx/source'];
  try {
    return await nextResolve(specifier, { ...context, conditions });
  } catch (error) {
    if (specifier.startsWith('.') && specifier.endsWith('.js')) {
      return nextResolve(specifier.slice(0, -3) + '.ts', { ...context, conditions });
    }
    throw error;
  }
}
