// Vite turns `import css from "./x.css?inline"` into the stylesheet as a string.
declare module "*.css?inline" {
  const css: string;
  export default css;
}
