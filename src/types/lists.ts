// Lists a caller names things in (a broadcast's groups, a filter's roles and users): never empty, bounded, no entry twice.
import { z } from 'zod';

/** 1 to `max` entries of `item`, all different: an entry's second mention is the issue, at its index. */
export function distinctList<T extends z.ZodType<string>>(item: T, max: number) {
  return z
    .array(item)
    .min(1)
    .max(max)
    .superRefine((entries, ctx) => {
      const seen = new Set<string>();
      entries.forEach((entry, i) => {
        if (seen.has(entry)) ctx.addIssue({ code: 'custom', path: [i], message: `"${entry}" is listed twice` });
        seen.add(entry);
      });
    })
    .meta({ uniqueItems: true });
}
