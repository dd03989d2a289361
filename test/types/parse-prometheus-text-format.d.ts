/** The package ships no types: what the metrics test uses of it. */
declare module "parse-prometheus-text-format" {
  const parse: (text: string) => ReadonlyArray<unknown>
  export default parse
}
