/**
 * A config that serves the files under `site` on `127.0.0.1:port` (tcp -> http -> http-filesystem
 * -> filesystem): a kgate that needs no broker, for tests of the process itself.
 */
export function staticSiteYaml(name: string, port: number, site: string): string {
  return [
    `name: ${name}`,
    'bindings:',
    '  tcp:',
    '    type: tcp',
    '    kind: server',
    `    options: { host: 127.0.0.1, port: ${port} }`,
    '    exit: http',
    '  http: { type: http, kind: server, exit: files }',
    '  files:',
    '    type: http-filesystem',
    '    kind: proxy',
    '    routes:',
    '      - when: [{ path: "/{path}" }]',
    '        exit: site',
    '        with: { path: "${params.path}" }',
    `  site: { type: filesystem, kind: server, options: { location: ${JSON.stringify(site)} } }`,
    '',
  ].join('\n');
}
