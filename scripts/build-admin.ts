// `yarn build:admin` (part of `yarn build` and `yarn dev`): bundles the admin console, src/admin/main.tsx with Preact,
// uPlot and their style, into dist/admin (admin.js, admin.css) with esbuild, which the internal listener serves at
// /admin. The console imports only types from the server's modules: the build fails if anything but src/admin,
// Preact and uPlot reaches the bundle (no zod, no Node code).
import { join, relative } from 'node:path';
import { build } from 'esbuild';
import { ADMIN_ASSETS } from '../src/http/adminConsole';

const root = join(__dirname, '..');

/** Where `yarn build` writes the console, and where the gateway looks for it by default. */
export const ADMIN_OUT_DIR = join(root, 'dist', 'admin');

/** What the bundle may contain, as paths from the project root (node_modules may be a link to another checkout's). */
const ALLOWED_INPUTS = [/^src\/admin\//, /(^|\/)node_modules\/(preact|uplot)\//];

/** Bundles the console into `outDir`; resolves with the bundle's sizes in bytes. */
export async function buildAdmin(outDir: string = ADMIN_OUT_DIR): Promise<{ script: number; style: number }> {
  const result = await build({
    entryPoints: { [ADMIN_ASSETS.script.replace(/\.js$/, '')]: join(root, 'src', 'admin', 'main.tsx') },
    bundle: true,
    outdir: outDir,
    format: 'iife',
    platform: 'browser',
    target: ['chrome111', 'firefox111', 'safari16.4'],
    jsx: 'automatic',
    jsxImportSource: 'preact',
    minify: true,
    legalComments: 'none',
    metafile: true,
    logLevel: 'warning',
  });
  const strays = Object.keys(result.metafile.inputs)
    .map((input) => relative(root, join(root, input)))
    .filter((input) => !ALLOWED_INPUTS.some((allowed) => allowed.test(input)));
  if (strays.length > 0) throw new Error(`the admin console bundles modules it must only import types from: ${strays.join(', ')}`);
  const size = (name: string) => Object.entries(result.metafile.outputs).find(([path]) => path.endsWith(`/${name}`))?.[1].bytes ?? 0;
  return { script: size(ADMIN_ASSETS.script), style: size(ADMIN_ASSETS.style) };
}

if (require.main === module) {
  buildAdmin().then(
    ({ script, style }) => console.log(`build-admin: ${relative(root, ADMIN_OUT_DIR)}/${ADMIN_ASSETS.script} ${(script / 1024).toFixed(1)} KiB, ${ADMIN_ASSETS.style} ${(style / 1024).toFixed(1)} KiB`),
    (err: unknown) => {
      console.error(`build-admin: ${err instanceof Error ? err.message : String(err)}`);
      process.exit(1);
    },
  );
}
