// Layer direction (see DESIGN.md): domain <- store, channels <- engine <- api, mcp, cli.
// Nothing imports upward; channels never touch the database.
const layer = (name) => `^src/${name}/`;
module.exports = {
  forbidden: [
    { name: 'domain-is-pure', severity: 'error', from: { path: layer('domain') }, to: { path: '^src/(store|channels|engine|api|mcp|cli)/' } },
    { name: 'store-below-engine', severity: 'error', from: { path: layer('store') }, to: { path: '^src/(channels|engine|api|mcp|cli)/' } },
    { name: 'channels-no-db', severity: 'error', from: { path: layer('channels') }, to: { path: '^src/(store|engine|api|mcp|cli)/' } },
    { name: 'engine-below-api', severity: 'error', from: { path: layer('engine') }, to: { path: '^src/(api|mcp|cli)/' } },
    { name: 'api-not-cli-or-mcp', severity: 'error', from: { path: layer('api') }, to: { path: '^src/(cli)/' } },
    { name: 'mcp-not-api-or-cli', severity: 'error', from: { path: layer('mcp') }, to: { path: '^src/(api|cli)/' } },
    { name: 'no-circular', severity: 'error', from: {}, to: { circular: true } },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    exclude: { path: '\\.test\\.ts$' },
  },
};
