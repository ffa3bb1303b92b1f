// Two builds into the Python package: `--mode client` makes client.js (the iframe's page
// script, CSS included, one classic script), `--mode widget` makes widget.js (the
// anywidget module that hosts it) and `--mode viewer` makes viewer.js (the page of
// `rudder view`). All are committed; .ci/run checks they are current.
import {defineConfig} from "vite";

const entries = {
  client: {entry: "src/client.ts", formats: ["iife"] as const, name: "rudderClient"},
  widget: {entry: "src/widget.ts", formats: ["es"] as const, name: "rudderWidget"},
  viewer: {entry: "src/viewer.ts", formats: ["iife"] as const, name: "rudderViewer"},
};

export default defineConfig(({mode}) => {
  if (mode === "test") return {test: {environment: "node", include: ["test/**/*.test.ts"]}};
  const build = entries[mode as keyof typeof entries];
  if (build === undefined) throw new Error(`build with --mode client, widget or viewer, not ${mode}`);
  return {
    build: {
      outDir: "../src/rudder/visual/static",
      emptyOutDir: false,
      target: "es2022",
      minify: true,
      lib: {
        entry: build.entry,
        name: build.name,
        formats: [...build.formats],
        fileName: () => `${mode}.js`,
      },
    },
  };
});
