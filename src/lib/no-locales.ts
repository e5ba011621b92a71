// Stands in for zod's translated error messages (wrangler.toml [alias]): the service answers in English only,
// and the 64 locale tables would be a third of the bundle.
export {};
